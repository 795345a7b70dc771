//go:build linux

package stdiojson

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// oldStdout holds the *os.File that was os.Stdout, so that it is never
// finalized (which would close fd 1, now a copy of stderr, and free the number).
// They are written and never read on purpose.
//
//lint:ignore U1000 kept reachable only so that their finalizers never run
var oldStdout, oldStdin *os.File

// takeStdout moves the protocol stream off file descriptor 1: it returns a
// private, close-on-exec duplicate of fd 1, then points fd 1 and os.Stdout at
// stderr, so stray writes to stdout end up in the log.
func takeStdout() (*os.File, error) {
	fd, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, err
	}
	if err := unix.Dup3(2, 1, 0); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Keep the old *os.File for fd 1 reachable: its finalizer would close fd 1.
	oldStdout = os.Stdout
	os.Stdout = os.Stderr
	return pollable(fd, "stdiojson-protocol"), nil
}

// pollable returns an *os.File for fd that the Go runtime's poller serves if fd
// is a pipe or socket: blocked reads and writes then park the goroutine instead
// of holding a thread in a system call (which, with the thread's P, would delay
// the handlers until sysmon retakes it), and SetReadDeadline works. The O_NONBLOCK
// flag is set on the pipe's open file description, which the worker alone holds.
func pollable(fd int, name string) *os.File {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		if t := st.Mode & unix.S_IFMT; t == unix.S_IFIFO || t == unix.S_IFSOCK {
			_ = unix.SetNonblock(fd, true)
		}
	}
	return os.NewFile(uintptr(fd), name)
}

// takeStdin returns stdin as a pollable file when it is a pipe or socket.
func takeStdin() *os.File {
	oldStdin = os.Stdin
	f := pollable(0, "/dev/stdin")
	os.Stdin = f
	return f
}

// watchParent asks Linux to send SIGTERM to this process when its parent dies.
func watchParent() error {
	return unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0)
}
