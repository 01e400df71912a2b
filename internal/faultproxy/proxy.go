package faultproxy

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Fault is what the proxy does to the bytes it forwards, in each direction of every connection.
type Fault struct {
	Latency time.Duration // each chunk read is delivered this much later
	Rate    int           // bytes per second per direction and connection; 0 is no cap
	Hold    bool          // a black hole: nothing is delivered while it holds; what was held goes on after
}

// Proxy listens on a loopback port and forwards each connection to its target.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	fault Fault
	wake  chan struct{} // closed when the fault changes, for pumps waiting out a Hold
	pairs map[*pair]struct{}
	done  bool
}

// pair is one proxied connection.
type pair struct {
	client, server net.Conn
	silent         bool // half-open: everything is dropped, nothing is closed
}

// Start listens on 127.0.0.1 (a free port) and forwards to target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, wake: make(chan struct{}), pairs: map[*pair]struct{}{}}
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is Addr's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Set replaces the fault (the zero Fault forwards as fast as it can); it applies to open connections too.
func (p *Proxy) Set(f Fault) {
	p.mu.Lock()
	p.fault = f
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
}

// Reset ends every open connection with a TCP reset, both ways.
func (p *Proxy) Reset() {
	for _, pr := range p.take(false) {
		for _, c := range []net.Conn{pr.client, pr.server} {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
		}
	}
}

// HalfOpen makes every open connection half-open: from now on nothing is delivered on it either way, and it is
// not closed (as when a host vanishes). New connections are not affected.
func (p *Proxy) HalfOpen() {
	p.mu.Lock()
	for pr := range p.pairs {
		pr.silent = true
	}
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
}

// Open is the number of connections open through the proxy.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
	_ = p.ln.Close()
	for _, pr := range p.take(true) {
		_ = pr.client.Close()
		_ = pr.server.Close()
	}
}

// take returns the open pairs and forgets them; all includes the silent ones.
func (p *Proxy) take(all bool) []*pair {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*pair
	for pr := range p.pairs {
		if all || !pr.silent {
			out = append(out, pr)
			delete(p.pairs, pr)
		}
	}
	return out
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.open(c)
	}
}

func (p *Proxy) open(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	pr := &pair{client: c, server: s}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		_ = c.Close()
		_ = s.Close()
		return
	}
	p.pairs[pr] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(pr, c, s) }()
	go func() { defer wg.Done(); p.pump(pr, s, c) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.pairs, pr)
	p.mu.Unlock()
}

// pump copies src to dst through the fault until either side ends; then it closes both (a half-open pair's
// stay open).
func (p *Proxy) pump(pr *pair, src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.deliver(pr, dst, buf[:n]) {
			err = errors.New("closed")
		}
		if err != nil {
			p.mu.Lock()
			silent := pr.silent
			p.mu.Unlock()
			if !silent {
				_ = src.Close()
				_ = dst.Close()
			}
			return
		}
	}
}

// deliver writes b to dst as the fault allows; false when dst is gone.
func (p *Proxy) deliver(pr *pair, dst net.Conn, b []byte) bool {
	for {
		p.mu.Lock()
		f, silent, wake := p.fault, pr.silent, p.wake
		p.mu.Unlock()
		if silent {
			return true // dropped
		}
		if !f.Hold {
			if f.Latency > 0 {
				time.Sleep(f.Latency)
			}
			if f.Rate > 0 {
				time.Sleep(time.Duration(len(b)) * time.Second / time.Duration(f.Rate))
			}
			_, err := dst.Write(b)
			return err == nil
		}
		<-wake
	}
}
