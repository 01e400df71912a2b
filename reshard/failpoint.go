package reshard

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Failpoints, for tests: PGSHARD_FAILPOINT=reshard-copy:N kills the process (SIGKILL, so nothing is tidied
// up) once N rows are copied; reshard-stream:N once N changes are applied.
var failCopyAt, failStreamAt = failpoint("reshard-copy"), failpoint("reshard-stream")

func failpoint(name string) int64 {
	v, ok := strings.CutPrefix(os.Getenv("PGSHARD_FAILPOINT"), name+":")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

var copiedRows atomic.Int64

// maybeDie kills the process when a failpoint's count is reached.
func maybeDie(at, now int64, what string) {
	if at > 0 && now >= at {
		fmt.Fprintf(os.Stderr, "failpoint: killed after %d %s\n", now, what)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
