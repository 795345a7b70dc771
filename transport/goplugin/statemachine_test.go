package goplugin

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/robust"
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

// TestStateMachineRobust runs the state machine over robust around go-plugin:
// gateway drops and SIGKILLed children must heal by themselves.
func TestStateMachineRobust(t *testing.T) {
	dial := func(ctx context.Context) (broker.Broker, error) {
		c, err := Start(ctx, WithCommand(os.Args[0], argChild, "ibkr"))
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
		Checks: 5,
		Steps:  15,
	})
}
