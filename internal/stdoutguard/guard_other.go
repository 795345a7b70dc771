//go:build !linux

package stdoutguard

import "os"

// oldStdout keeps the original os.Stdout reachable so that its finalizer never
// closes the descriptor Take returned.
//
//lint:ignore U1000 kept reachable only so that its finalizer never runs
var oldStdout *os.File

// Take returns the descriptor of the original stdout and points os.Stdout at
// stderr. Unlike on Linux, writes straight to file descriptor 1 are not diverted.
func Take() (fd int, err error) {
	oldStdout = os.Stdout
	os.Stdout = os.Stderr
	return int(oldStdout.Fd()), nil
}

// Pollable returns an *os.File for fd.
func Pollable(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }
