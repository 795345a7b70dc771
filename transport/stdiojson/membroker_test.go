package stdiojson

import (
	"strconv"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/internal/testbroker"
)

// memBroker is the module's steerable test broker (internal/testbroker) with
// this package's data: two accounts, n positions and every default summary tag.
// Its Connect fails for client ids 326 (an *broker.APIError with that code) and
// 502 (ErrGatewayUnreachable), and tests steer it from the far side of a pipe
// with AccountSummary tags ("wait:NAME", "release:NAME", "stdout:TEXT",
// "ibcode:N", "event:KIND", "panic", "exit:N", ...; see the testbroker package).
type memBroker struct {
	*testbroker.Broker
}

func newMemBroker(nPositions int) *memBroker {
	accounts := []string{"DU111111", "DU222222"}
	var sums []broker.AccountSummary
	for i, a := range accounts {
		vals := map[string]broker.SummaryValue{}
		for _, tag := range broker.DefaultSummaryTags {
			vals[tag] = broker.SummaryValue{Value: strconv.Itoa(100000*(i+1)) + ".25", Currency: "USD"}
		}
		sums = append(sums, broker.AccountSummary{Account: a, Values: vals})
	}
	return &memBroker{testbroker.New(fakes.Script{ServerVersion: 176, Accounts: accounts,
		Positions: makePositions(nPositions), Summary: sums, Instruments: fakes.DefaultInstruments()}, makePositions)}
}

// makePositions returns n deterministic positions with exact decimals that a
// float64 could not carry.
func makePositions(n int) []broker.Position {
	out := make([]broker.Position, n)
	for i := range out {
		out[i] = broker.Position{
			Account: []string{"DU111111", "DU222222"}[i%2],
			Contract: broker.Contract{
				ConID: int64(100000 + i), Symbol: "SYM" + strconv.Itoa(i), SecType: "STK",
				Exchange: "SMART", Currency: "USD", LocalSymbol: "SYM" + strconv.Itoa(i), TradingClass: "NMS",
			},
			Quantity: broker.MustDecimal(strconv.Itoa(i%997-400) + ".000000000000000000" + strconv.Itoa(i%10+1)),
			AvgCost:  broker.MustDecimal("123456789012345678." + strconv.Itoa(1000+i)),
		}
		if i%5 == 0 {
			out[i].Contract.SecType, out[i].Contract.Right = "OPT", "C"
			out[i].Contract.Strike = broker.MustDecimal("187.5")
			out[i].Contract.Expiry, out[i].Contract.Multiplier = "20270115", "100"
		}
	}
	return out
}

// accounts and positions return what m serves, for assertions.
func (m *memBroker) accounts() []string           { return m.Script().Accounts }
func (m *memBroker) positions() []broker.Position { return m.Script().Positions }

func (m *memBroker) isConnected() bool { return m.Connected() }

// syncBuffer is a log buffer safe for concurrent writers that tests can wait on.
type syncBuffer = testbroker.LogBuffer

// testLogger returns a logger into a buffer that is printed if the test fails.
func testLogger(t interface {
	Cleanup(func())
	Failed() bool
	Logf(string, ...any)
}) (hclog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: "test", Output: buf, Level: hclog.Trace}), buf
}
