package stdiojson

import (
	"syscall"

	"github.com/brokerkit/brokerkit/internal/childproc"
)

// sysProcAttr puts the worker in its own process group, so that a Ctrl-C meant
// for the host does not kill it behind the host's back (the host stops it with
// Close), and has Linux send it SIGTERM if the host dies.
func sysProcAttr() *syscall.SysProcAttr {
	return childproc.SysProcAttr(syscall.SIGTERM, true)
}
