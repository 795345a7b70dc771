package robust_test

import (
	"context"
	"testing"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/robust/internal/chaostest"
)

// TestStateMachineInProcess runs the conformance state machine over robust
// around the in-process adapter: after a gateway drop the model expects robust
// to serve again by itself.
func TestStateMachineInProcess(t *testing.T) {
	chaostest.StateMachine(t, func(context.Context) (broker.Broker, error) { return ibkr.New(), nil }, false, 12, 20)
}
