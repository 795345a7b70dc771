//go:build !race

package robust_test

import (
	"testing"

	"github.com/brokerkit/brokerkit/robust/internal/chaostest"
)

// TestOrdersPropertyInProcess: exactly-once PlaceOrder over the in-process
// adapter and the fake gateway, through connection drops before the ack
// (DropNextOrder, Faults.DropAfterOrder, DropConnections at once or once the
// order is in the book), late acks and stalls (chaostest.OrdersProperty), 100
// checks (more: -rapid.checks=N).
//
// Built without -race, like the adapter's own tests against the fake gateway
// (see the Makefile): its drops land in the middle of the adapter's connects,
// and scmhub/ibapi v0.10.47 races on tearing down a session whose Connect has
// not returned (under -race, once in a few runs, even "sync: unlock of
// unlocked mutex" in EClient.Connect). Over stdiojson the same property runs
// with -race, the adapter in the child (robust/internal/stdiojsontest).
func TestOrdersPropertyInProcess(t *testing.T) {
	chaostest.OrdersProperty(t, dialInProcess, false, 100)
}
