package benchkit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; it is 100 on every Linux the kernel
// ABI allows (sysconf(_SC_CLK_TCK)).
const clockTicks = 100

// ProcCPU returns the CPU time (user + system, all threads, live and exited) the process has used so far.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return ParseStatCPU(string(b))
}

// ParseStatCPU reads utime and stime (fields 14 and 15) from the text of /proc/<pid>/stat. The command name (field
// 2) is in parentheses and may hold spaces and parentheses itself, so the fields are counted from the last ')'.
func ParseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc stat format: %.60q", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat format: %.60q", stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc stat format: %.60q", stat)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// MachineCPU returns, from the "cpu" line of /proc/stat, the CPU time all cores spent busy (everything but idle and
// iowait, stolen time included) and their total time. Interrupt and softirq time counts as busy: the kernel
// charges most of it (the benchmark's own loopback traffic) to the processes it interrupted, whose utime+stime
// therefore include it too.
func MachineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected /proc/stat format: %.60q", line)
	}
	var sum, used int64
	// user nice system idle iowait irq softirq steal [guest guest_nice, already counted in user and nice]
	for i, s := range f[1:9] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("unexpected /proc/stat format: %.60q", line)
		}
		sum += v
		if i != 3 && i != 4 { // idle, iowait
			used += v
		}
	}
	tick := time.Second / clockTicks
	return time.Duration(used) * tick, time.Duration(sum) * tick, nil
}

// TreeCPU returns the CPU time of the process root, of its live children, and of its exited children it waited
// for (cutime+cstime). For the postmaster this is all of Postgres: backends that ended are reaped by it. The
// children are read before root, so that a child reaped during the scan is counted twice (its last tick) rather
// than missed; call it when no backend is exiting (see WaitChildren) for an exact figure.
func TreeCPU(root int) time.Duration {
	var total time.Duration
	for _, c := range Children(root) {
		total += c.CPU
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", root)); err == nil {
		if f := statFields(string(b)); len(f) >= 15 {
			for _, s := range f[11:15] { // utime, stime, cutime, cstime
				v, _ := strconv.ParseInt(s, 10, 64)
				total += time.Duration(v) * time.Second / clockTicks
			}
		}
	}
	return total
}

// Child is a live child process and its CPU time so far.
type Child struct {
	Pid int
	CPU time.Duration // utime+stime
}

// Children lists the live children of parent (zombies included) with their CPU time.
func Children(parent int) []Child {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Child
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == parent {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := statFields(string(b))
		if len(f) < 15 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != parent {
			continue
		}
		var cpu time.Duration
		for _, s := range f[11:13] {
			v, _ := strconv.ParseInt(s, 10, 64)
			cpu += time.Duration(v) * time.Second / clockTicks
		}
		out = append(out, Child{pid, cpu})
	}
	return out
}

// statFields splits /proc/<pid>/stat after the command name: f[0] is field 3 (state), f[1] the ppid.
func statFields(stat string) []string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(stat[i+1:])
}

// WaitChildren waits (up to limit) until parent has at most n children again: after a direct run, the backends
// of the clients that just disconnected take a moment to exit and be reaped, and their CPU time reaches the
// postmaster's cutime only then.
func WaitChildren(parent, n int, limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if len(Children(parent)) <= n {
			return
		}
	}
}
