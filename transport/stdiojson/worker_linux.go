//go:build linux

package stdiojson

import (
	"os"

	"github.com/brokerkit/brokerkit/internal/stdoutguard"
)

// oldStdin holds the *os.File that was os.Stdin, so that it is never
// finalized (which would close fd 0). It is written and never read on purpose.
//
//lint:ignore U1000 kept reachable only so that its finalizer never runs
var oldStdin *os.File

// takeStdout moves the protocol stream off file descriptor 1 (see
// stdoutguard.Take) and returns it pollable: the worker alone holds the pipe.
func takeStdout() (*os.File, error) {
	fd, err := stdoutguard.Take()
	if err != nil {
		return nil, err
	}
	return stdoutguard.Pollable(fd, "stdiojson-protocol"), nil
}

// takeStdin returns stdin as a pollable file when it is a pipe or socket.
func takeStdin() *os.File {
	oldStdin = os.Stdin
	f := stdoutguard.Pollable(0, "/dev/stdin")
	os.Stdin = f
	return f
}
