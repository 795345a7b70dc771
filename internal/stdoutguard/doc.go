// Package stdoutguard keeps a process's own output apart from stray writes to
// standard output. Take moves the output stream off file descriptor 1 to a
// private duplicate and points fd 1 and os.Stdout at stderr, so that whatever a
// library prints (scmhub/ibapi prints undecodable integer tokens it received
// from the gateway) ends up in the log, never in the program's output.
//
// The stdiojson worker protects its protocol stream this way, and the command
// line its tables and JSON documents.
package stdoutguard
