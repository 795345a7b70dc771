package stdiojson

import (
	"syscall"

	"github.com/brokerkit/brokerkit/internal/childproc"
)

// sysProcAttr puts the worker in its own process group, so that a Ctrl-C meant
// for the host does not kill it behind the host's back (the host stops it with
// Close), and has Linux send it SIGKILL if the host dies: the one signal a
// stopped (SIGSTOP) or wedged worker cannot leave pending. (The TWS API has no
// goodbye message: a killed worker's socket closes as a Disconnect's would.)
func sysProcAttr() *syscall.SysProcAttr {
	return childproc.SysProcAttr(syscall.SIGKILL, true)
}
