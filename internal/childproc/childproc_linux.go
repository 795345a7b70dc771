//go:build linux

package childproc

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// SysProcAttr returns the attributes a host starts a child with: the kernel
// sends the child sig when the host thread that forked it exits; ownGroup also
// puts the child in its own process group, so that a Ctrl-C meant for the host
// does not reach it behind the host's back.
func SysProcAttr(sig syscall.Signal, ownGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: ownGroup, Pdeathsig: sig}
}

// SetParentDeathSignal asks the kernel, from inside the child, to send it sig
// when its parent dies (prctl PR_SET_PDEATHSIG). The caller then checks that its
// parent did not die before the call.
func SetParentDeathSignal(sig syscall.Signal) error {
	return unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0)
}
