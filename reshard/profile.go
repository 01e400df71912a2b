package reshard

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startStreamProfile writes a CPU profile of the streaming phase (until the cutover begins) to the file
// named by PGSHARD_STREAM_CPUPROFILE, when set (PGSHARD_CPUPROFILE profiles the whole run): the apply path's cost, measured where it runs. The returned
// function stops it; it does nothing when no profile was asked for.
func startStreamProfile(prog *progress) func() {
	path := os.Getenv("PGSHARD_STREAM_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		prog.logf("PGSHARD_STREAM_CPUPROFILE: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		prog.logf("PGSHARD_STREAM_CPUPROFILE: %v", err)
		return func() {}
	}
	stopped := false
	return func() {
		if stopped {
			return
		}
		stopped = true
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			prog.logf("PGSHARD_STREAM_CPUPROFILE: %v", err)
			return
		}
		prog.logf("%s", fmt.Sprintf("CPU profile of the streaming phase written to %s", path))
	}
}
