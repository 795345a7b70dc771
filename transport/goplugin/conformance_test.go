package goplugin

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
)

// TestConformance runs the conformance kit against the IBKR adapter served by a
// go-plugin child (the re-executed test binary), one child per case.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t conformance.TB, env conformance.Env) broker.Broker {
		log, _ := testLogger(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := Start(ctx, WithCommand(os.Args[0], argChild, "ibkr"), WithLogger(log))
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}, conformance.Features{TimeoutSlack: 3 * time.Second, Crash: crashChild})
}

// crashChild kills the Client's child process with SIGKILL.
func crashChild(t conformance.TB, b broker.Broker) {
	conformance.KillPID(t, b.(*Client).Pid())
}
