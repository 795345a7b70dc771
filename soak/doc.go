// Package soak holds brokerkit's soak test: calls through package robust over
// every transport while a chaos loop kills workers, freezes them (SIGSTOP),
// drops the gateway and makes it lose answers or send broken handshake
// replies, with the process's goroutines, file descriptors, memory, child
// processes and CLOSE_WAIT sockets sampled throughout; it fails on a wrong
// answer or on growth.
//
// The package has no API; its content is soak_test.go. A short run (a few
// seconds) is part of every `go test ./...`; `make soak SOAK=5m` runs it long:
//
//	go test -run=TestSoak -count=1 -timeout=0 -v ./soak/ -args -soak=5m
package soak
