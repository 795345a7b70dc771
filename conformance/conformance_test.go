package conformance_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newAdapter(t conformance.TB, _ conformance.Env) broker.Broker {
	a := ibkr.New()
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// TestRunAdapter runs the whole kit over the in-process adapter: it must pass.
func TestRunAdapter(t *testing.T) {
	conformance.Run(t, newAdapter, conformance.Features{})
}

// TestRecordSkipsWithReason: ChildCrash called without Features.Crash skips,
// saying which field is missing.
func TestRecordSkipsWithReason(t *testing.T) {
	res := conformance.Record(conformance.Case{Name: "ChildCrash", Test: conformance.TestChildCrash}, newAdapter, conformance.Features{})
	if !res.Skipped || res.Failed() || !strings.Contains(res.Reason, "Features.Crash") {
		t.Fatalf("ChildCrash without Features.Crash: %+v, want a skip naming Features.Crash", res)
	}
}

// hangs blocks Ping until released, whatever its context or Close do: a
// Broker that hangs a case.
type hangs struct {
	broker.Broker
	release chan struct{}
}

func (b hangs) Ping(ctx context.Context) error {
	<-b.release
	return ctx.Err()
}

// TestRecordHang: a case that hangs is recorded as Hung with every
// goroutine's stack, after CaseTimeout, without a panic.
func TestRecordHang(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c := conformance.Case{Name: "Ping", Test: conformance.TestPing}
	const timeout = time.Second
	start := time.Now()
	res := conformance.Record(c, func(t conformance.TB, env conformance.Env) broker.Broker {
		return hangs{newAdapter(t, env), release}
	}, conformance.Features{CaseTimeout: timeout})
	if !res.Hung || !res.Failed() || !strings.Contains(res.Stacks, "goroutine ") {
		t.Fatalf("a hanging case: %+v, want Hung with stacks", res)
	}
	if d := time.Since(start); d < timeout || d > timeout+2*conformance.CallTimeout {
		t.Errorf("Record returned after %v, want about Features.CaseTimeout (%v)", d, timeout)
	}
}

// TestQuoteCasesSkipWithoutCapability: a Broker without broker.QuoteStreamer
// skips every quote stream case, naming the capability.
func TestQuoteCasesSkipWithoutCapability(t *testing.T) {
	for _, c := range conformance.Cases() {
		if !strings.HasPrefix(c.Name, "QuoteStream") {
			continue
		}
		res := conformance.Record(c, func(t conformance.TB, env conformance.Env) broker.Broker {
			return struct{ broker.Broker }{newAdapter(t, env)}
		}, conformance.Features{})
		if !res.Skipped || res.Failed() || !strings.Contains(res.Reason, "broker.QuoteStreamer") {
			t.Errorf("%s over a Broker without QuoteStreamer: %+v, want a skip naming it", c.Name, res)
		}
	}
}
