package ibkr

import (
	"fmt"
	"runtime/debug"

	"github.com/brokerkit/brokerkit/broker"
)

// Goroutines and panics.
//
// scmhub/ibapi v0.10.47 indexes gateway fields unchecked in places no recover of
// its own covers: EClient.Connect reads the handshake reply's second field
// without looking (a one-field or empty reply is an index out of range). Every
// goroutine the adapter starts that calls into scmhub therefore runs its body
// through guard, so that a panic becomes an error of that session, never a dead
// process: the Connect goroutine, and every request made through scmhub's
// methods (from server version 201; session.send), whichever goroutine sends it. The goroutines scmhub starts itself are covered as follows: its
// decoder recovers and ends the session (counted by decoderPanics); its scanner,
// requester and watcher only move bytes and call the adapter's own callbacks,
// which do not panic.

// errPanic wraps a recovered panic as a protocol error: the gateway said
// something the client library could not handle.
type errPanic struct {
	value any
	stack []byte
}

func (e *errPanic) Error() string { return fmt.Sprintf("scmhub panicked: %v", e.value) }

// Unwrap makes a recovered panic match broker.ErrProtocol.
func (e *errPanic) Unwrap() error { return broker.ErrProtocol }

// guard runs f and returns the panic it raised, if any, as an error matching
// broker.ErrProtocol.
func guard(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &errPanic{value: r, stack: debug.Stack()}
		}
	}()
	f()
	return nil
}
