package conformance_test

import (
	"fmt"

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
	// ChildCrash
}
