package stdiojson

import (
	"context"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
)

func init() {
	workerModes["ibkr"] = func() broker.Broker { return ibkr.New() }
}

// startIBKR starts the test binary as a worker serving the IBKR adapter.
func startIBKR(t conformance.TB) *Client {
	t.Helper()
	log, _ := testLogger(t)
	ctx, cancel := context.WithTimeout(t.Context(), hangBound)
	defer cancel()
	c, err := Start(ctx, WithSelf(), WithLogger(log), WithEnv(envTestMode+"=ibkr", noRaceExitSleep))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConformance runs the conformance kit over stdiojson: each case gets a
// fresh worker process serving the IBKR adapter, against the case's fake gateway.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t conformance.TB, env conformance.Env) broker.Broker {
		return startIBKR(t)
	}, conformance.Features{TimeoutSlack: 2 * time.Second, Crash: crashChild})
}

// crashChild kills the Client's child process with SIGKILL.
func crashChild(t conformance.TB, b broker.Broker) {
	conformance.KillPID(t, b.(*Client).Pid())
}
