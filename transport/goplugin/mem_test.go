package goplugin

import (
	"fmt"
	"strconv"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/internal/testbroker"
)

// memBroker is the module's steerable test broker (internal/testbroker) with
// this package's data: two accounts, three generated positions and every default
// summary tag. Tests steer it with AccountSummary tags ("block", "err:CODE:IB",
// "event", "panic", "positions:N", "print", ...; see the testbroker package).
type memBroker struct {
	*testbroker.Broker
}

var memAccounts = []string{"DU111", "DU222"}

func newMemBroker() *memBroker {
	var sums []broker.AccountSummary
	for _, a := range memAccounts {
		vals := make(map[string]broker.SummaryValue, len(broker.DefaultSummaryTags))
		for i, tag := range broker.DefaultSummaryTags {
			vals[tag] = broker.SummaryValue{Value: strconv.Itoa(1000*i) + ".05", Currency: "USD"}
		}
		sums = append(sums, broker.AccountSummary{Account: a, Values: vals})
	}
	return &memBroker{testbroker.New(fakes.Script{ServerVersion: 193, Accounts: memAccounts, Positions: genPositions(3),
		Summary: sums, Instruments: fakes.DefaultInstruments()}, genPositions)}
}

// genPositions returns n deterministic positions with exact, fractional and
// negative decimals.
func genPositions(n int) []broker.Position {
	out := make([]broker.Position, n)
	for i := range out {
		out[i] = broker.Position{
			Account: memAccounts[i%len(memAccounts)],
			Contract: broker.Contract{
				ConID: int64(265598 + i), Symbol: "SYM" + strconv.Itoa(i), SecType: "STK",
				Strike: broker.MustDecimal(fmt.Sprintf("%d.125", i)), Exchange: "NASDAQ",
				Currency: "USD", LocalSymbol: "SYM" + strconv.Itoa(i), TradingClass: "NMS",
			},
			Quantity: broker.MustDecimal(fmt.Sprintf("-%d.0000000000000000000001", i+1)),
			AvgCost:  broker.MustDecimal(fmt.Sprintf("%d.25", 100+i)),
		}
	}
	return out
}

// syncBuffer is a log buffer safe for concurrent writers that tests can wait on.
type syncBuffer = testbroker.LogBuffer
