package goplugin

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
)

// TestStateMachine runs the conformance state machine over go-plugin: each
// rapid check starts one child (the re-executed test binary serving the IBKR
// adapter) and drives it through connects, drops, bursts, slow replies and
// generated scripts.
func TestStateMachine(t *testing.T) {
	conformance.RunStateMachine(t, func(t conformance.TB, env conformance.Env) broker.Broker {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		c, err := Start(ctx, WithCommand(os.Args[0], argChild, "ibkr"))
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}, conformance.StateMachineFeatures{
		Features: conformance.Features{
			TimeoutSlack: 3 * time.Second,
			Crash:        func(t conformance.TB, b broker.Broker) { conformance.KillPID(t, b.(*Client).Pid()) },
		},
		Checks: 10,
		Steps:  15,
	})
}
