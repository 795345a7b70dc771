package stdiojson

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
)

// TestStateMachine runs the conformance state machine over stdiojson: each
// rapid check starts one worker process (the re-executed test binary serving
// the IBKR adapter) and drives it through connects, drops, bursts, slow
// replies and generated scripts.
func TestStateMachine(t *testing.T) {
	conformance.RunStateMachine(t, func(t conformance.TB, env conformance.Env) broker.Broker {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		c, err := Start(ctx, WithSelf(), WithEnv(envTestMode+"=ibkr", noRaceExitSleep), WithLogger(hclog.NewNullLogger()))
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}, conformance.StateMachineFeatures{
		Features: conformance.Features{
			TimeoutSlack: 2 * time.Second,
			Crash:        func(t conformance.TB, b broker.Broker) { conformance.KillPID(t, b.(*Client).Pid()) },
		},
		Checks: 15,
		Steps:  15,
	})
}
