package faultproxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// echo starts a server that echoes what it reads.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func start(t *testing.T) (*Proxy, net.Conn) {
	t.Helper()
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return p, c
}

// roundTrip sends n bytes and reads them back; it returns how long that took, or the error.
func roundTrip(c net.Conn, n int, within time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(start.Add(within))
	if _, err := c.Write(make([]byte, n)); err != nil {
		return 0, err
	}
	_, err := io.ReadFull(c, make([]byte, n))
	return time.Since(start), err
}

func TestFaults(t *testing.T) {
	p, c := start(t)
	if d, err := roundTrip(c, 10, time.Second); err != nil || d > 100*time.Millisecond {
		t.Fatalf("no fault: %v %v", d, err)
	}
	p.Set(Fault{Latency: 100 * time.Millisecond})
	if d, err := roundTrip(c, 10, 2*time.Second); err != nil || d < 200*time.Millisecond {
		t.Fatalf("100 ms latency each way: round trip %v %v", d, err)
	}
	p.Set(Fault{Rate: 100 << 10})
	if d, err := roundTrip(c, 50<<10, 5*time.Second); err != nil || d < 450*time.Millisecond {
		t.Fatalf("100 kB/s each way, 50 kB there and back: %v %v", d, err)
	}
	p.Set(Fault{Hold: true})
	if _, err := roundTrip(c, 10, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a black hole answered: %v", err)
	}
	p.Set(Fault{})
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(c, make([]byte, 10)); err != nil {
		t.Fatalf("what the black hole held did not come once it ended: %v", err)
	}
	p.HalfOpen()
	if _, err := roundTrip(c, 10, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a half-open connection answered, or was closed: %v", err)
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := roundTrip(c2, 10, time.Second); err != nil {
		t.Fatalf("a new connection after HalfOpen: %v", err)
	}
	p.Reset()
	_ = c2.SetDeadline(time.Now().Add(time.Second))
	if _, err := c2.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after Reset: %v, want a connection reset", err)
	}
	if p.Open() != 1 {
		t.Fatalf("%d connections open, want the half-open one", p.Open())
	}
}
