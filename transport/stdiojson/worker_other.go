//go:build !linux

package stdiojson

import "os"

// takeStdout keeps the protocol on the original stdout and points os.Stdout at
// stderr. Unlike on Linux, writes straight to file descriptor 1 are not diverted.
func takeStdout() (*os.File, error) {
	proto := os.Stdout
	os.Stdout = os.Stderr
	return proto, nil
}

// takeStdin returns os.Stdin.
func takeStdin() *os.File { return os.Stdin }
