// Package childproc holds the child-process plumbing both transports share: the
// worker's GOMAXPROCS, the parent-death signal a host asks the kernel for when it
// starts a child, and the one a child re-arms itself with prctl. It imports
// nothing of ours.
package childproc

import (
	"os"
	"runtime"
	"strconv"
)

// EnvProcs sets GOMAXPROCS for a worker child process (default 1; see SetProcs).
// One variable governs the children of both transports.
const EnvProcs = "BROKERKIT_WORKER_GOMAXPROCS"

// SetProcs gives the calling child process one P unless EnvProcs asks for more.
// A worker does little CPU work per request and mostly waits on its pipes or
// socket to the host and on the gateway's socket; with a single P, handing a
// request from a reader goroutine to its handler never wakes a second OS thread,
// which on a small machine costs more than the call itself (and the host's CPU,
// which the worker shares).
func SetProcs() {
	n, err := strconv.Atoi(os.Getenv(EnvProcs))
	if err != nil || n < 1 {
		n = 1
	}
	runtime.GOMAXPROCS(n)
}
