package goplugin

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
)

// TestMarketDataMatchesInProcess: the market data operations answer through
// gRPC exactly what the served Broker answers in process, errors included.
func TestMarketDataMatchesInProcess(t *testing.T) {
	mem := newMemBroker()
	c, _ := inProcessPair(t, mem)
	ctx := context.Background()
	aapl := broker.Contract{Symbol: "AAPL", SecType: "STK", Currency: "USD"}
	if _, err := c.Snapshot(ctx, aapl); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("Snapshot before Connect = %v", err)
	}
	connect(t, c)
	wantD, _ := mem.ContractDetails(ctx, broker.Contract{Symbol: "AAPL"})
	gotD, err := c.ContractDetails(ctx, broker.Contract{Symbol: "AAPL"})
	if err != nil || len(gotD) != 2 {
		t.Fatalf("ContractDetails = %v, %v", gotD, err)
	}
	if diff := cmp.Diff(wantD, gotD); diff != "" {
		t.Errorf("ContractDetails (-in-process +goplugin):\n%s", diff)
	}
	if _, err := c.ContractDetails(ctx, broker.Contract{Symbol: "NOPE"}); !errors.Is(err, broker.ErrNotFound) || broker.IBCode(err) != 200 {
		t.Errorf("unknown symbol = %v", err)
	}
	got, err := c.Snapshot(ctx, aapl)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := mem.Snapshot(ctx, aapl)
	want.Time, want.LastTime = got.Time, got.LastTime
	if diff := cmp.Diff(want, got); diff != "" || got.Last.String() != "189.5" || got.LastTime.IsZero() {
		t.Errorf("Snapshot (-in-process +goplugin):\n%s", diff)
	}
	if err := c.SetMarketDataType(ctx, broker.MarketDataDelayed); err != nil {
		t.Fatal(err)
	}
	if q, err := c.Snapshot(ctx, broker.Contract{Symbol: "IBM", SecType: "STK"}); err != nil || q.DataType != broker.MarketDataDelayed {
		t.Errorf("delayed snapshot = %+v, %v", q, err)
	}
	if err := c.SetMarketDataType(ctx, 0); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("type 0 = %v", err)
	}
	r := broker.BarsRequest{End: time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC), Duration: "1 W", BarSize: "1 day"}
	wantBars, _ := mem.HistoricalBars(ctx, aapl, r)
	bars, err := c.HistoricalBars(ctx, aapl, r)
	if err != nil || len(bars) == 0 {
		t.Fatalf("HistoricalBars = %d bars, %v", len(bars), err)
	}
	if diff := cmp.Diff(wantBars, bars); diff != "" {
		t.Errorf("HistoricalBars (-in-process +goplugin):\n%s", diff)
	}
	if _, err := c.ContractDetails(ctx, broker.Contract{Symbol: "AAPL", Strike: broker.MustDecimal("1")}); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("strike crosses: %v", err)
	}
}
