package benchkit

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses: fields are counted from the last ')'.
	stat := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 75 3 4 20 0 9 0 123 456 789"
	got, err := ParseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want { // (250+75) ticks of 10 ms
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := ParseStatCPU("garbage"); err == nil {
		t.Fatal("no error for garbage")
	}
}

func TestOwnProcess(t *testing.T) {
	// Burn CPU until utime+stime (10 ms ticks) moves past 0; a busy machine may take a while to give us the ticks.
	var cpu time.Duration
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if cpu, err = ProcCPU(os.Getpid()); err != nil || cpu > 0 {
			break
		}
	}
	if err != nil || cpu <= 0 {
		t.Fatalf("ProcCPU(self) = %v, %v", cpu, err)
	}
	if kb, err := ProcStatusKB(os.Getpid(), "VmHWM"); err != nil || kb <= 0 {
		t.Fatalf("VmHWM of self = %v, %v", kb, err)
	}
	if busy, total, err := MachineCPU(); err != nil || busy <= 0 || total < busy {
		t.Fatalf("MachineCPU() = %v, %v, %v", busy, total, err)
	}
}
