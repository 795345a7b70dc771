package conformance_test

import (
	"fmt"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/fakes"
)

// ExpectedSummary is the model of AccountSummary: the requested tags each
// account holds, accounts in the order the gateway first names them.
func ExampleExpectedSummary() {
	s := fakes.Script{Summary: []broker.AccountSummary{
		{Account: "DU2", Values: map[string]broker.SummaryValue{"NetLiquidation": {Value: "100.5", Currency: "USD"}}},
		{Account: "DU1", Values: map[string]broker.SummaryValue{"Cushion": {Value: "0.9"}}},
	}}
	for _, a := range conformance.ExpectedSummary(s, "Cushion", "NetLiquidation") {
		fmt.Println(a.Account, a.Values)
	}
	fmt.Println(len(conformance.ExpectedSummary(s, "BuyingPower")))
	// Output:
	// DU2 map[NetLiquidation:{100.5 USD}]
	// DU1 map[Cushion:{0.9 }]
	// 0
}

// The generators draw data inside what the TWS API carries exactly; Example
// shows one value of each.
func ExampleGenScript() {
	s := conformance.GenScript().Example(1)
	fmt.Println(s.Validate() == nil, len(s.Accounts) >= 1)
	q := conformance.GenQuantity().Example(2)
	fmt.Println(len(q.String()) <= len("-99999999999.9999999"))
	// Output:
	// true true
	// true
}
