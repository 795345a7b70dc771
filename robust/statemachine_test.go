package robust_test

import (
	"context"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/robust"
)

// stateMachineOptions: two attempts per call with quick backoff, so that the
// model's predicted errors (not connected, refused client id, stalled
// handshake) arrive promptly, and no breaker. The periodic health
// check is off: recovery after a drop must come from the inner Broker's
// connection-lost event alone (and a ping racing a dropped socket is a known
// data race inside scmhub, see adapters/ibkr's package doc).
func stateMachineOptions() []robust.Option {
	return []robust.Option{
		robust.WithMaxAttempts(2),
		robust.WithBackoff(robust.Backoff{Base: 5 * time.Millisecond, Max: 50 * time.Millisecond}),
		robust.WithHealthCheck(time.Hour, 3*time.Second, 2),
		// The breaker is off because the model does not predict it: after ten
		// failed attempts (two refused Connects and a stalled one suffice) it
		// opens and rejects the next Connect with ErrCircuitOpen. (Calls without
		// a session still say ErrNotConnected: TestOpenBreakerStillSaysNotConnected.)
		robust.WithBreaker(0, 0),
	}
}

// TestStateMachineInProcess runs the conformance state machine over robust
// around the in-process adapter: after a gateway drop the model expects robust
// to serve again by itself.
func TestStateMachineInProcess(t *testing.T) {
	conformance.RunStateMachine(t, func(t conformance.TB, env conformance.Env) broker.Broker {
		b := robust.New(func(context.Context) (broker.Broker, error) { return ibkr.New(), nil }, stateMachineOptions()...)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}, conformance.StateMachineFeatures{
		Features: conformance.Features{Reconnects: true},
		Checks:   12,
		Steps:    20,
	})
}
