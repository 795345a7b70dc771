// Package stdiojsontest runs robust over the stdiojson transport: the conformance
// kit, kill -9 loops and a stalled handshake, with this test binary as the worker.
package stdiojsontest

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/robust"
	"github.com/brokerkit/brokerkit/robust/internal/chaostest"
	"github.com/brokerkit/brokerkit/transport/stdiojson"
)

// TestMain doubles as the worker: a child started WithSelf serves the in-process
// adapter (go-plugin's helperProcess pattern).
func TestMain(m *testing.M) {
	stdiojson.MaybeRunWorker(func() broker.Broker { return ibkr.New() })
	goleak.VerifyTestMain(m)
}

func dial(ctx context.Context) (broker.Broker, error) { return dialWith(ctx) }

// dialWith starts a worker with opts after the defaults.
func dialWith(ctx context.Context, opts ...stdiojson.Option) (broker.Broker, error) {
	return stdiojson.Dialer(append([]stdiojson.Option{stdiojson.WithSelf(), stdiojson.WithLogger(hclog.NewNullLogger())}, opts...)...)(ctx)
}

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t conformance.TB, env conformance.Env) broker.Broker {
		b := robust.New(dial, chaostest.ConformanceOptions()...)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}, chaostest.ConformanceFeatures)
}

func TestKillLoop(t *testing.T)        { chaostest.KillLoop(t, "stdiojson", dial) }
func TestKillDuringCalls(t *testing.T) { chaostest.KillDuringCalls(t, dial) }

// TestQuoteStreamKill9: a quote stream survives kill -9 of the worker, with a
// gap marker and no value of the dead worker's subscription after it.
func TestQuoteStreamKill9(t *testing.T) { chaostest.QuoteStreamKill(t, dial) }

// TestQuoteStreamIB: IB 1101 re-subscribes through the worker on the same
// session, after a gap marker; 1102 changes nothing.
func TestQuoteStreamIB(t *testing.T)    { chaostest.QuoteStreamIB(t, dial) }
func TestStalledHandshake(t *testing.T) { chaostest.StalledHandshake(t, "stdiojson", dial) }

// TestFreezeLoop stops workers with SIGSTOP; each is killed and replaced.
func TestFreezeLoop(t *testing.T) {
	const grace = 500 * time.Millisecond
	chaostest.FreezeLoop(t, "stdiojson", func(ctx context.Context) (broker.Broker, error) {
		return dialWith(ctx, stdiojson.WithGracePeriod(grace))
	}, grace)
}

// TestStateMachine runs the conformance state machine over robust around this
// transport, killing workers among its actions.
func TestStateMachine(t *testing.T) { chaostest.StateMachine(t, dial, true, 8, 15) }

// TestKillDuringPlace kills the worker with SIGKILL mid-PlaceOrder at random
// points: exactly one order per key, each caller gets its id
// (chaostest.KillDuringPlace; more rounds: BROKERKIT_ORDER_KILLS).
func TestKillDuringPlace(t *testing.T) { chaostest.KillDuringPlace(t, "stdiojson", dial) }

// TestOrdersProperty: chaostest.OrdersProperty with kill -9 of the worker
// among the faults, 12 checks (more: -rapid.checks=N).
func TestOrdersProperty(t *testing.T) { chaostest.OrdersProperty(t, dial, true, 12) }
