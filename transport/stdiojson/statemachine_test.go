package stdiojson

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/robust"
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

// TestStateMachineRobust runs the state machine over robust around stdiojson:
// gateway drops and SIGKILLed workers must heal by themselves.
func TestStateMachineRobust(t *testing.T) {
	dial := func(ctx context.Context) (broker.Broker, error) {
		c, err := Start(ctx, WithSelf(), WithEnv(envTestMode+"=ibkr", noRaceExitSleep), WithLogger(hclog.NewNullLogger()))
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	conformance.RunStateMachine(t, func(t conformance.TB, env conformance.Env) broker.Broker {
		b := robust.New(dial,
			robust.WithMaxAttempts(3),
			robust.WithBackoff(robust.Backoff{Base: 5 * time.Millisecond, Max: 50 * time.Millisecond}),
			robust.WithHealthCheck(time.Hour, 3*time.Second, 2),
			// No breaker: the model does not predict when an open breaker
			// rejects a Connect (see robust/statemachine_test.go).
			robust.WithBreaker(0, 0))
		t.Cleanup(func() { _ = b.Close() })
		return b
	}, conformance.StateMachineFeatures{
		Features: conformance.Features{
			Reconnects: true,
			Crash: func(t conformance.TB, b broker.Broker) {
				conformance.KillPID(t, b.(*robust.Broker).Stats().WorkerPID)
			},
		},
		Checks: 8,
		Steps:  15,
	})
}
