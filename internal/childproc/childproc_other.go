//go:build !unix

package childproc

import "syscall"

// SysProcAttr returns nil: neither process groups nor a parent-death signal exist here.
func SysProcAttr(syscall.Signal, bool) *syscall.SysProcAttr { return nil }

// SetParentDeathSignal does nothing here: the child's other watches (its input
// ending, polling its parent pid) are all it has.
func SetParentDeathSignal(syscall.Signal) error { return nil }
