package conformance_test

import (
	"fmt"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
)

// The cases Run runs, each also exported to rerun alone
// (conformance.TestPositions(t, newBroker, features)).
func ExampleCases() {
	for _, c := range conformance.Cases() {
		fmt.Println(c.Name)
	}
	// Output:
	// Connect
	// InvalidParams
	// Positions
	// AccountSummary
	// AccountUpdates
	// AccountUpdatesStream
	// Executions
	// Orders
	// OrderPlace
	// OrderLimitFill
	// OrderCancel
	// OrderReadOnly
	// OrderKeyReuse
	// OrderReject
	// OrderCancelMid
	// Ping
	// NotConnected
	// Reconnect
	// AlreadyConnected
	// ClientIDInUse
	// StalledHandshake
	// CloseBeforeHandshake
	// Unreachable
	// Cancellation
	// Concurrent
	// GatewayDrop
	// Notices
	// Close
	// CancelledContext
	// CancelMidCall
	// ExpiredDeadline
	// SubscribeCancel
	// CloseInFlight
	// SlowSubscriber
	// ChildCrash
	// ContractDetails
	// Snapshot
	// HistoricalBars
	// MarketDataCancel
	// Pacing
	// QuoteStream
	// QuoteStreamCancel
	// QuoteStreamErrors
	// QuoteStreamClose
	// QuoteStreamSlowSubscriber
	// QuoteStreamLost
}

// Record runs one case outside of any *testing.T and reports what it saw: a
// harness decides what a failure means, and a case that does not apply says why.
func ExampleRecord() {
	newBroker := func(t conformance.TB, env conformance.Env) broker.Broker {
		a := ibkr.New()
		t.Cleanup(func() { _ = a.Close() })
		return a
	}
	for _, c := range conformance.Cases() {
		if c.Name != "Ping" && c.Name != "ChildCrash" {
			continue
		}
		res := conformance.Record(c, newBroker, conformance.Features{})
		fmt.Printf("%s: failed %v, skipped %v (%s)\n", c.Name, res.Failed(), res.Skipped, res.Reason)
	}
	// Output:
	// Ping: failed false, skipped false ()
	// ChildCrash: failed false, skipped true (Features.Crash is nil: this Broker declares no child process to crash)
}
