package ibkr_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

var aapl = broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"}

// TestMarketDataOps: contract details (exact and by symbol, the long name
// intact at every version, including scmhub's garbling range 153..204),
// snapshots and bars equal what the Script says, at each version of the matrix.
func TestMarketDataOps(t *testing.T) {
	for _, v := range append(serverVersions, 160, 204, 205, 206, 208) {
		t.Run(strconv.Itoa(v), func(t *testing.T) {
			s := fakes.DefaultScript()
			s.ServerVersion = v
			g := newGateway(t, s)
			a := newAdapter(t)
			ctx := ctxFor(t)
			if _, err := a.Connect(ctx, params(g)); err != nil {
				t.Fatal(err)
			}
			want := s.Instruments[0].Details()
			got, err := a.ContractDetails(ctx, aapl)
			if err != nil || len(got) != 1 {
				t.Fatalf("contract details: %v %+v", err, got)
			}
			if got[0] != want {
				t.Errorf("contract details:\n got %+v\nwant %+v", got[0], want)
			}
			byID, err := a.ContractDetails(ctx, broker.Contract{ConID: 265598})
			if err != nil || len(byID) != 1 || byID[0] != want {
				t.Errorf("by con id: %v %+v", err, byID)
			}
			all, err := a.ContractDetails(ctx, broker.Contract{Symbol: "AAPL"})
			if err != nil || len(all) != 2 {
				t.Errorf("symbol search: %v, %d rows, want the stock and the option", err, len(all))
			}
			if _, err := a.ContractDetails(ctx, broker.Contract{Symbol: "NOPE"}); !errors.Is(err, broker.ErrNotFound) || broker.IBCode(err) != 200 {
				t.Errorf("unknown symbol: %v", err)
			}

			q, err := a.Snapshot(ctx, aapl)
			if err != nil {
				t.Fatal(err)
			}
			wantQ, _ := s.Instruments[0].SnapshotAs(broker.MarketDataLive, q.Time)
			wantQ.Contract, wantQ.LastTime = aapl, q.LastTime
			if q != wantQ {
				t.Errorf("snapshot:\n got %+v\nwant %+v", q, wantQ)
			}
			if time.Since(q.LastTime) > time.Minute {
				t.Errorf("last time %v", q.LastTime)
			}
			ibm := broker.Contract{Symbol: "IBM", SecType: "STK", Currency: "USD"}
			if _, err := a.Snapshot(ctx, ibm); !errors.Is(err, broker.ErrNotSubscribed) {
				t.Errorf("delayed-only under live: %v", err)
			}
			if err := a.SetMarketDataType(ctx, broker.MarketDataDelayed); err != nil {
				t.Fatal(err)
			}
			dq, err := a.Snapshot(ctx, ibm)
			if err != nil || dq.DataType != broker.MarketDataDelayed || dq.Bid.String() != "241.1" {
				t.Errorf("delayed snapshot: %v %+v", err, dq)
			}
			gme, err := a.Snapshot(ctx, broker.Contract{Symbol: "GME", SecType: "STK"})
			if err != nil || !gme.Halted {
				t.Errorf("halted: %v %+v", err, gme)
			}

			end := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
			r := broker.BarsRequest{End: end, Duration: "1 D", BarSize: "5 mins", WhatToShow: "TRADES", UseRTH: true}
			bars, err := a.HistoricalBars(ctx, aapl, r)
			if err != nil {
				t.Fatal(err)
			}
			wantBars, err := s.Bars(aapl, r, time.Now())
			if err != nil || len(bars) != len(wantBars) || len(bars) != 78 {
				t.Fatalf("bars: %d, want %d (%v)", len(bars), len(wantBars), err)
			}
			for i := range bars {
				if bars[i] != wantBars[i] {
					t.Fatalf("bar %d:\n got %+v\nwant %+v", i, bars[i], wantBars[i])
				}
			}
			if _, err := a.HistoricalBars(ctx, aapl, broker.BarsRequest{Duration: "1 D", BarSize: "7 mins"}); !errors.Is(err, broker.ErrInvalidArgument) {
				t.Errorf("bad bar size: %v", err)
			}
		})
	}
}

// TestPacingManyCallers: 64 concurrent callers against a gateway that
// enforces IB's message rate never see error 100, and the session survives.
func TestPacingManyCallers(t *testing.T) {
	s := fakes.DefaultScript()
	s.Pacing = &fakes.Pacing{MessagesPerSecond: 50, HistoricalRequests: 1000, HistoricalWindow: time.Second,
		IdenticalWithin: time.Millisecond}
	g := newGateway(t, s)
	a := ibkr.New(ibkr.WithLogger(testLogger(t)), ibkr.WithPacing(ibkr.Pacing{MessagesPerSecond: 50,
		HistoricalRequests: 1000, HistoricalWindow: time.Second, IdenticalWithin: time.Millisecond}))
	t.Cleanup(func() { _ = a.Close() })
	events, err := a.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := a.Connect(ctx, params(g)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64*2)
	for i := range 64 {
		wg.Go(func() {
			for j := range 2 {
				var err error
				switch (i + j) % 3 {
				case 0:
					_, err = a.Snapshot(ctx, aapl)
				case 1:
					_, err = a.ContractDetails(ctx, broker.Contract{ConID: 272093})
				default:
					_, err = a.HistoricalBars(ctx, aapl, broker.BarsRequest{Duration: "1 D", BarSize: "1 hour",
						End: time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC).Add(time.Duration(i*2+j) * time.Hour)})
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call failed: %v (IB code %d)", err, broker.IBCode(err))
	}
	if err := a.Ping(ctx); err != nil {
		t.Errorf("session after the burst: %v", err)
	}
	for {
		select {
		case e := <-events:
			if e.Code == broker.IBCodeMaxRateExceeded || e.Kind == broker.EventConnectionLost {
				t.Errorf("event %+v", e)
			}
			continue
		default:
		}
		break
	}
}

// TestPacingWaitCountsInContext: a caller whose context ends while queued
// behind IB's historical pacing fails with its context's error, promptly.
func TestPacingWaitCountsInContext(t *testing.T) {
	s := fakes.DefaultScript()
	g := newGateway(t, s)
	a := ibkr.New(ibkr.WithPacing(ibkr.Pacing{IdenticalWithin: time.Hour}))
	t.Cleanup(func() { _ = a.Close() })
	ctx := ctxFor(t)
	if _, err := a.Connect(ctx, params(g)); err != nil {
		t.Fatal(err)
	}
	r := broker.BarsRequest{Duration: "1 D", BarSize: "1 hour", End: time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)}
	if _, err := a.HistoricalBars(ctx, aapl, r); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := a.HistoricalBars(short, aapl, r); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("identical request within the hour: %v, want the caller's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}
