package benchkit

import (
	"os"
	"strings"
)

// CPUModel is the first "model name" of /proc/cpuinfo ("" when unknown).
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// MemTotalKB is the machine's memory (MemTotal of /proc/meminfo) in KiB, 0 when unknown.
func MemTotalKB() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	v, _ := StatusKB(string(b), "MemTotal")
	return v
}

// Kernel is the running kernel's release.
func Kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}
