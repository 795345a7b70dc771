package robust_test

import (
	"context"
	"testing"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/robust"
	"github.com/brokerkit/brokerkit/robust/internal/chaostest"
)

func dialInProcess(context.Context) (broker.Broker, error) { return ibkr.New(), nil }

// TestConformanceInProcess runs the kit over robust around the in-process adapter.
func TestConformanceInProcess(t *testing.T) {
	conformance.Run(t, func(t conformance.TB, env conformance.Env) broker.Broker {
		b := robust.New(dialInProcess, chaostest.ConformanceOptions()...)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}, inProcessFeatures())
}

// inProcessFeatures are chaostest's, less the crash: the in-process adapter has no child.
func inProcessFeatures() conformance.Features {
	f := chaostest.ConformanceFeatures
	f.Crash = nil
	return f
}
