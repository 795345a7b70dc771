//go:build linux

package stdoutguard

import (
	"os"

	"golang.org/x/sys/unix"
)

// oldStdout holds the *os.File that was os.Stdout, so that it is never
// finalized (which would close fd 1, now a copy of stderr, and free the number).
// It is written and never read on purpose.
//
//lint:ignore U1000 kept reachable only so that its finalizer never runs
var oldStdout *os.File

// Take moves the output stream off file descriptor 1: it returns a private,
// close-on-exec duplicate of fd 1, then points fd 1 and os.Stdout at stderr, so
// stray writes to stdout end up in the log. The caller wraps the descriptor
// with os.NewFile, or with Pollable if it alone holds the pipe. Take changes
// process-wide state: call it once, from main.
func Take() (fd int, err error) {
	fd, err = unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return -1, err
	}
	if err := unix.Dup3(2, 1, 0); err != nil {
		unix.Close(fd)
		return -1, err
	}
	// Keep the old *os.File for fd 1 reachable: its finalizer would close fd 1.
	oldStdout = os.Stdout
	os.Stdout = os.Stderr
	return fd, nil
}

// Pollable returns an *os.File for fd that the Go runtime's poller serves if fd
// is a pipe or socket: blocked reads and writes then park the goroutine instead
// of holding a thread in a system call (which, with the thread's P, would delay
// other goroutines until sysmon retakes it), and deadlines work. The O_NONBLOCK
// flag is set on the fd's open file description, which other processes sharing
// it also see: use it only on a pipe or socket this process alone holds.
func Pollable(fd int, name string) *os.File {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		if t := st.Mode & unix.S_IFMT; t == unix.S_IFIFO || t == unix.S_IFSOCK {
			_ = unix.SetNonblock(fd, true)
		}
	}
	return os.NewFile(uintptr(fd), name)
}
