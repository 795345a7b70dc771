//go:build unix && !linux

package childproc

import "syscall"

// SysProcAttr returns the attributes a host starts a child with: ownGroup puts
// the child in its own process group, so that a Ctrl-C meant for the host does
// not reach it behind the host's back. There is no parent-death signal outside
// Linux; sig is ignored.
func SysProcAttr(_ syscall.Signal, ownGroup bool) *syscall.SysProcAttr {
	if !ownGroup {
		return nil
	}
	return &syscall.SysProcAttr{Setpgid: true}
}

// SetParentDeathSignal does nothing outside Linux: the child's other watches
// (its input ending, polling its parent pid) are all it has.
func SetParentDeathSignal(syscall.Signal) error { return nil }
