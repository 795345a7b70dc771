//go:build unix && !linux

package stdiojson

import "syscall"

// sysProcAttr puts the worker in its own process group, so that a Ctrl-C meant
// for the host does not kill it behind the host's back (the host stops it with
// Close).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
