// Counting of sockets, file descriptors and gateway requests for the promptness cases.

package conformance

import (
	"os"
	"runtime"
	"time"

	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/broker"
)

// openSockets counts the gateway's connections that are still open.
func openSockets(env Env) int {
	n := 0
	for _, c := range env.Gateway.Connections() {
		if !c.Closed {
			n++
		}
	}
	return n
}

// SocketBound is how soon after a Broker lets go of a connection (Disconnect,
// a failed Connect, Close) the gateway must see it closed.
const SocketBound = 2 * time.Second

// waitSockets waits up to SocketBound until the gateway holds exactly want
// open connections.
func waitSockets(t TB, env Env, want int, when string) {
	t.Helper()
	deadline := time.Now().Add(SocketBound)
	for {
		n := openSockets(env)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the gateway holds %d open connections after %v, want %d", when, n, SocketBound, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allRequests counts every request the gateway has read, START_API included,
// plus every connection that got as far as a handshake.
func allRequests(env Env) int {
	n := 0
	for _, c := range env.Gateway.Connections() {
		n += len(c.Requests) + c.DroppedRequests
		if c.ClientVersionMax > 0 {
			n++
		}
	}
	return n
}

// fdCount returns the number of open file descriptors of this process, or -1
// where /proc/self/fd does not exist.
func fdCount() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// leakCheck snapshots goroutines and file descriptors; the returned function
// closes b and env's gateway and fails t if b left a connection to the
// gateway open, or ends the case if goroutines or file descriptors grew
// (further checks would start from a polluted baseline).
func leakCheck(t TB) func(b broker.Broker, env Env, when string) {
	before := goleak.IgnoreCurrent()
	fds := fdCount()
	return func(b broker.Broker, env Env, when string) {
		t.Helper()
		if err := b.Close(); err != nil {
			t.Errorf("%s: Close: %v", when, err)
		}
		waitSockets(t, env, 0, when+", after Close")
		if err := env.Gateway.Close(); err != nil {
			t.Errorf("%s: close the gateway: %v", when, err)
		}
		if err := goleak.Find(before); err != nil {
			t.Fatalf("%s: goroutines left after Close: %v", when, err)
		}
		if fds < 0 {
			return
		}
		deadline := time.Now().Add(time.Second)
		for n := fdCount(); n > fds; n = fdCount() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d file descriptors open a second after Close, %d before", when, n, fds)
			}
			runtime.GC() // finalizers close what was dropped
			time.Sleep(10 * time.Millisecond)
		}
	}
}
