package bench

import (
	"strconv"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// newMemBroker returns a broker.Broker that answers from memory at once, so
// that what a benchmark through a transport measures is the transport alone.
// Its account summary is empty.
func newMemBroker(nPositions int) *fakes.Memory {
	return fakes.NewMemory(fakes.Script{ServerVersion: 193, Accounts: benchAccounts, Positions: benchPositions(nPositions)})
}

var benchAccounts = []string{"DU111111", "DU222222"}

// benchPositions returns n positions with the kind of decimals a gateway sends;
// every fifth is an option, with a strike, expiry and multiplier.
func benchPositions(n int) []broker.Position {
	out := make([]broker.Position, n)
	for i := range out {
		sym := "SYM" + strconv.Itoa(i)
		out[i] = broker.Position{
			Account: benchAccounts[i%len(benchAccounts)],
			Contract: broker.Contract{
				ConID: int64(100000 + i), Symbol: sym, SecType: "STK",
				Exchange: "SMART", Currency: "USD", LocalSymbol: sym, TradingClass: "NMS",
			},
			Quantity: broker.MustDecimal(strconv.Itoa(i%997-400) + ".5"),
			AvgCost:  broker.MustDecimal(strconv.Itoa(1000+i) + ".125"),
		}
		if i%5 == 0 {
			c := &out[i].Contract
			c.SecType, c.Right, c.Strike, c.Expiry, c.Multiplier = "OPT", "C", broker.MustDecimal("187.5"), "20271217", "100"
		}
	}
	return out
}
