package stdiojson

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
)

// TestClientMarketData: the market data operations cross the worker with
// exact decimals and times, and their errors come back as the same sentinels
// and IB codes.
func TestClientMarketData(t *testing.T) {
	c, _ := startMem(t, 0)
	ctx := ctxBound(t)
	want := newMemBroker(0)
	aapl := broker.Contract{Symbol: "AAPL", SecType: "STK", Currency: "USD"}
	if _, err := c.Snapshot(ctx, aapl); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("Snapshot before Connect: %v", err)
	}
	for _, b := range []broker.Broker{c, want} {
		if _, err := b.Connect(ctx, broker.ConnectParams{Port: 4002, ClientID: 7}); err != nil {
			t.Fatal(err)
		}
	}
	gotD, err := c.ContractDetails(ctx, broker.Contract{Symbol: "AAPL"})
	wantD, _ := want.ContractDetails(ctx, broker.Contract{Symbol: "AAPL"})
	if err != nil || len(gotD) != 2 {
		t.Fatalf("ContractDetails: %v %+v", err, gotD)
	}
	if diff := cmp.Diff(wantD, gotD); diff != "" {
		t.Errorf("ContractDetails (-want +got):\n%s", diff)
	}
	if _, err := c.ContractDetails(ctx, broker.Contract{Symbol: "NOPE"}); !errors.Is(err, broker.ErrNotFound) || broker.IBCode(err) != 200 {
		t.Errorf("unknown symbol: %v", err)
	}
	if _, err := c.ContractDetails(ctx, broker.Contract{}); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("no contract: %v", err)
	}
	q, err := c.Snapshot(ctx, aapl)
	if err != nil {
		t.Fatal(err)
	}
	wq, _ := want.Snapshot(ctx, aapl)
	wq.Time, wq.LastTime = q.Time, q.LastTime
	if diff := cmp.Diff(wq, q); diff != "" || q.Bid.String() != "189.49" || q.Volume.String() != "45210034.5" {
		t.Errorf("Snapshot (-want +got):\n%s", diff)
	}
	ibm := broker.Contract{Symbol: "IBM", SecType: "STK"}
	if _, err := c.Snapshot(ctx, ibm); !errors.Is(err, broker.ErrNotSubscribed) || broker.IBCode(err) != 10089 {
		t.Errorf("delayed-only: %v", err)
	}
	if err := c.SetMarketDataType(ctx, broker.MarketDataDelayedFrozen); err != nil {
		t.Fatal(err)
	}
	if q, err := c.Snapshot(ctx, ibm); err != nil || q.DataType != broker.MarketDataDelayedFrozen {
		t.Errorf("delayed-frozen snapshot: %v %+v", err, q)
	}
	if err := c.SetMarketDataType(ctx, 9); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("type 9: %v", err)
	}
	r := broker.BarsRequest{End: time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC), Duration: "2 D", BarSize: "1 hour", WhatToShow: "MIDPOINT"}
	bars, err := c.HistoricalBars(ctx, aapl, r)
	wantBars, _ := want.HistoricalBars(context.Background(), aapl, r)
	if err != nil || len(bars) == 0 {
		t.Fatalf("HistoricalBars: %v, %d bars", err, len(bars))
	}
	if diff := cmp.Diff(wantBars, bars); diff != "" {
		t.Errorf("HistoricalBars (-want +got):\n%s", diff)
	}
	if _, err := c.HistoricalBars(ctx, aapl, broker.BarsRequest{Duration: "1 D"}); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("no bar size: %v", err)
	}
}

// TestServeMarketDataBadRequests: a market data command without its
// parameters is an invalid argument, not a crash.
func TestServeMarketDataBadRequests(t *testing.T) {
	p := startServe(t, t.Context(), newMemBroker(0))
	p.send(t, `{"command":"connect"}`)
	p.recv(t)
	for _, line := range []string{
		`{"id":1,"command":"get_snapshot"}`,
		`{"id":1,"command":"get_contract_details","contract":{"symbol":"AAPL","strike":"x"}}`,
		`{"id":1,"command":"get_historical_bars","contract":{"symbol":"AAPL"}}`,
		`{"id":1,"command":"get_historical_bars","contract":{"symbol":"AAPL"},"bars":{"duration":"1 D","bar_size":"1 hour","end":"yesterday"}}`,
		`{"id":1,"command":"set_market_data_type","market_data_type":"sometimes"}`,
	} {
		p.send(t, line)
		if got := p.recv(t); got["code"] != broker.CodeInvalidArgument {
			t.Errorf("%s: %v", line, got)
		}
	}
	p.send(t, `{"id":2,"command":"get_snapshot","contract":{"symbol":"GME","sec_type":"STK"}}`)
	got := p.recv(t)
	data, _ := got["data"].(map[string]any)
	quote, _ := data["quote"].(map[string]any)
	if got["status"] != "success" || quote["halted"] != true || quote["bid"] != "22.1" || quote["market_data_type"] != "live" {
		t.Errorf("snapshot line: %v", got)
	}
}
