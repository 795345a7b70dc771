package robust

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// TestMarketDataOpsRetryOutagesNotAnswers: the market data operations go
// through the inner Broker, are retried after an outage, and are attempted
// once when the gateway's answer is "not found", "not subscribed" or a pacing
// refusal (a retry would be refused again, or make the pacing worse).
func TestMarketDataOpsRetryOutagesNotAnswers(t *testing.T) {
	f := &farm{}
	b, _, _ := newTest(t, f, WithMaxAttempts(3), WithRand(func() float64 { return 0 }))
	connect(t, b)
	s := f.get(t, 0)
	ctx := context.Background()
	s.fail(broker.OpSnapshot, broker.ErrUnavailable)
	if q, err := b.Snapshot(ctx, stubAAPL); err != nil || q.Bid.String() != "101" || s.count(broker.OpSnapshot) != 1 {
		t.Errorf("snapshot after an outage: %+v %v, %d attempts", q, err, s.count(broker.OpSnapshot))
	}
	s = f.get(t, 1) // the outage replaced the session
	if d, err := b.ContractDetails(ctx, stubAAPL); err != nil || len(d) != 1 || d[0].LongName != "APPLE INC" {
		t.Errorf("contract details: %+v %v", d, err)
	}
	end := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	if bars, err := b.HistoricalBars(ctx, stubAAPL, broker.BarsRequest{End: end}); err != nil || len(bars) != 1 || !bars[0].Time.Equal(end) {
		t.Errorf("bars: %+v %v", bars, err)
	}
	if err := b.SetMarketDataType(ctx, broker.MarketDataDelayed); err != nil || s.count(broker.OpSetMarketDataType) != 1 {
		t.Errorf("set market data type: %v", err)
	}
	for _, c := range []struct {
		op    broker.Op
		cause error
		call  func() error
	}{
		{broker.OpContractDetails, &broker.APIError{ReqID: 3, Code: 200, Message: "No security definition has been found"},
			func() error { _, err := b.ContractDetails(ctx, stubAAPL); return err }},
		{broker.OpSnapshot, &broker.APIError{ReqID: 3, Code: 354, Message: "Requested market data is not subscribed."},
			func() error { _, err := b.Snapshot(ctx, stubAAPL); return err }},
		{broker.OpHistoricalBars, broker.ErrPacing,
			func() error { _, err := b.HistoricalBars(ctx, stubAAPL, broker.BarsRequest{}); return err }},
	} {
		before := s.count(c.op)
		s.fail(c.op, c.cause)
		if err := c.call(); !errors.Is(err, c.cause) {
			t.Errorf("%s: %v, want %v", c.op, err, c.cause)
		}
		if n := s.count(c.op) - before; n != 1 {
			t.Errorf("%s: %d attempts on %v, want 1", c.op, n, c.cause)
		}
	}
}
