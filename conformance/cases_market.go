// Market data cases: contract details, snapshots, historical bars, the market
// data type, their errors, cancellation and IB's pacing.

package conformance

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

var (
	// standardAAPL names StandardScript's AAPL stock the way a user would.
	standardAAPL = broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"}
	// standardBars is a window of 5-minute bars over a whole US session.
	standardBars = broker.BarsRequest{End: time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC), Duration: "1 D",
		BarSize: "5 mins", WhatToShow: "TRADES", UseRTH: true}
)

// instrument returns the script's instrument with that con id.
func instrument(t TB, s fakes.Script, conID int64) fakes.Instrument {
	t.Helper()
	for _, in := range s.Instruments {
		if in.Contract.ConID == conID {
			return in
		}
	}
	t.Fatalf("conformance: the script has no instrument %d", conID)
	return fakes.Instrument{}
}

// TestContractDetails: an exact lookup (by con id, and by symbol, type,
// exchange and currency) returns the scripted instrument exactly, its long
// name's text included; a search by symbol alone returns every match in the
// gateway's order; nothing found is ErrNotFound with IB's 200, and a contract
// naming nothing is ErrInvalidArgument.
func TestContractDetails(t TB, newBroker Factory, f Features) {
	s, _, b := connectedStandard(t, newBroker, f)
	ctx, cancel := callCtx(t)
	defer cancel()
	for _, id := range []int64{265598, 14096, 12087792} {
		want := []broker.ContractDetails{instrument(t, s, id).Details()}
		got, err := b.ContractDetails(ctx, broker.Contract{ConID: id})
		if err != nil {
			t.Fatalf("ContractDetails(con id %d): %v", id, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ContractDetails(con id %d) (-script +got):\n%s", id, diff)
		}
	}
	got, err := b.ContractDetails(ctx, standardAAPL)
	if err != nil || len(got) != 1 || got[0].Contract.ConID != 265598 {
		t.Errorf("ContractDetails(%+v) = %+v, %v; want AAPL's stock alone", standardAAPL, got, err)
	}
	var want []broker.ContractDetails
	for _, in := range s.Instruments {
		if in.Contract.Symbol == "AAPL" {
			want = append(want, in.Details())
		}
	}
	got, err = b.ContractDetails(ctx, broker.Contract{Symbol: "AAPL"})
	if err != nil {
		t.Fatalf("ContractDetails(symbol AAPL): %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ContractDetails(symbol AAPL) (-script +got):\n%s", diff)
	}
	_, err = b.ContractDetails(ctx, broker.Contract{Symbol: "NOSUCH", SecType: "STK"})
	if wantIs(t, "ContractDetails(NOSUCH)", err, broker.ErrNotFound) && broker.IBCode(err) != broker.IBCodeNoSecurityDefinition {
		t.Errorf("ContractDetails(NOSUCH): IB code %d, want 200", broker.IBCode(err))
	}
	_, err = b.ContractDetails(ctx, broker.Contract{SecType: "STK"})
	wantIs(t, "ContractDetails(no symbol)", err, broker.ErrInvalidArgument)
}

// sameQuote compares a snapshot with the script's, times aside (LastTime
// must be recent: the gateway stamps the last trade now; Time must be set),
// and its Contract with the one asked for.
func sameQuote(t TB, what string, asked broker.Contract, want, got broker.Quote) {
	t.Helper()
	if !want.LastTime.IsZero() && (got.LastTime.IsZero() || time.Since(got.LastTime) > time.Minute) {
		t.Errorf("%s: last trade time %v, want about now", what, got.LastTime)
	}
	if got.Time.IsZero() {
		t.Errorf("%s: no time", what)
	}
	want.Time, want.LastTime, want.Contract = got.Time, got.LastTime, asked
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-script +got):\n%s", what, diff)
	}
}

// TestSnapshot: snapshots carry the scripted top of book exactly (prices,
// sizes, volume, halted) and the market data type in force; a delayed-only
// instrument is ErrNotSubscribed (IB's 10089) under live data and answers
// after SetMarketDataType(MarketDataDelayed); warning 10167 is no error;
// an unknown or ambiguous contract is ErrNotFound; SetMarketDataType refuses
// a type IB does not define.
func TestSnapshot(t TB, newBroker Factory, f Features) {
	s, env, b := connectedStandard(t, newBroker, f)
	ctx, cancel := callCtx(t)
	defer cancel()
	for _, c := range []struct {
		id int64
		c  broker.Contract
	}{{265598, standardAAPL}, {36285627, broker.Contract{Symbol: "GME", SecType: "STK"}},
		{12087792, broker.Contract{ConID: 12087792}}, {14096, broker.Contract{ConID: 14096}}} {
		want, _ := instrument(t, s, c.id).SnapshotAs(broker.MarketDataLive, time.Now())
		got, err := b.Snapshot(ctx, c.c)
		if err != nil {
			t.Fatalf("Snapshot(%+v): %v", c.c, err)
		}
		sameQuote(t, "Snapshot of "+want.Contract.Symbol, c.c, want, got)
	}
	ibm := broker.Contract{Symbol: "IBM", SecType: "STK", Currency: "USD"}
	_, err := b.Snapshot(ctx, ibm)
	if wantIs(t, "Snapshot(IBM) under live data", err, broker.ErrNotSubscribed) && broker.IBCode(err) != broker.IBCodeDelayedAvailable {
		t.Errorf("Snapshot(IBM): IB code %d, want 10089", broker.IBCode(err))
	}
	_, err = b.Snapshot(ctx, broker.Contract{Symbol: "AAPL"}) // the stock and the option
	wantIs(t, "Snapshot(ambiguous AAPL)", err, broker.ErrNotFound)
	wantIs(t, "SetMarketDataType(7)", b.SetMarketDataType(ctx, 7), broker.ErrInvalidArgument)
	for _, mdt := range []broker.MarketDataType{broker.MarketDataDelayed, broker.MarketDataDelayedFrozen} {
		if err := b.SetMarketDataType(ctx, mdt); err != nil {
			t.Fatalf("SetMarketDataType(%v): %v", mdt, err)
		}
		want, _ := instrument(t, s, 8314).SnapshotAs(mdt, time.Now())
		got, err := b.Snapshot(ctx, ibm)
		if err != nil {
			t.Fatalf("Snapshot(IBM) under %v data: %v", mdt, err)
		}
		sameQuote(t, "Snapshot(IBM) under "+mdt.String()+" data", ibm, want, got)
	}
	if err := b.SetMarketDataType(ctx, broker.MarketDataLive); err != nil {
		t.Fatalf("SetMarketDataType(live): %v", err)
	}
	// 10167 then delayed data: a warning, not a failure.
	s2 := s.Clone()
	s2.Faults.Market.MarketDataError = fakes.CodeDisplayingDelayed
	env.Gateway.SetScript(s2)
	got, err := b.Snapshot(ctx, standardAAPL)
	if err != nil || got.DataType != broker.MarketDataDelayed || !got.Bid.Equal(instrument(t, s, 265598).Quote.Bid) {
		t.Errorf("Snapshot after warning 10167 = %+v, %v; want AAPL's delayed quote", got, err)
	}
	s2.Faults.Market.MarketDataError = broker.IBCodeMarketDataNotSubscribed
	env.Gateway.SetScript(s2)
	_, err = b.Snapshot(ctx, standardAAPL)
	if wantIs(t, "Snapshot under error 354", err, broker.ErrNotSubscribed) && broker.IBCode(err) != broker.IBCodeMarketDataNotSubscribed {
		t.Errorf("Snapshot under error 354: IB code %d", broker.IBCode(err))
	}
}

// TestHistoricalBars: bars equal the gateway's deterministic bars for the
// window, oldest first, for intraday and daily bars; a bar size IB does not
// know is ErrInvalidArgument (321), an unknown contract ErrNotFound (200),
// and a historical pacing violation (162) ErrPacing.
func TestHistoricalBars(t TB, newBroker Factory, f Features) {
	s, env, b := connectedStandard(t, newBroker, f)
	ctx, cancel := callCtx(t)
	defer cancel()
	daily := broker.BarsRequest{End: standardBars.End, Duration: "2 W", BarSize: "1 day", WhatToShow: "MIDPOINT"}
	for _, r := range []broker.BarsRequest{standardBars, daily} {
		want, err := s.Bars(standardAAPL, r, time.Now())
		if err != nil || len(want) < 2 {
			t.Fatalf("conformance: script bars for %+v: %d, %v", r, len(want), err)
		}
		got, err := b.HistoricalBars(ctx, standardAAPL, r)
		if err != nil {
			t.Fatalf("HistoricalBars(%+v): %v", r, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("HistoricalBars(%s, %s) (-script +got):\n%s", r.Duration, r.BarSize, diff)
		}
	}
	bad := standardBars
	bad.BarSize = "7 mins"
	_, err := b.HistoricalBars(ctx, standardAAPL, bad)
	wantIs(t, "HistoricalBars(7 mins)", err, broker.ErrInvalidArgument)
	_, err = b.HistoricalBars(ctx, broker.Contract{Symbol: "NOSUCH", SecType: "STK"}, standardBars)
	wantIs(t, "HistoricalBars(NOSUCH)", err, broker.ErrNotFound)
	s2 := s.Clone()
	s2.Faults.Market.HistoricalError = broker.IBCodeHistoricalDataError
	env.Gateway.SetScript(s2)
	other := daily
	other.Duration = "3 W" // IB paces identical requests: this one is not
	_, err = b.HistoricalBars(ctx, standardAAPL, other)
	wantIs(t, "HistoricalBars under a pacing violation", err, broker.ErrPacing)
}

// TestMarketDataCancel: a snapshot whose first tick is late returns promptly
// with its context's error when the context ends, and the Broker answers the
// next snapshot.
func TestMarketDataCancel(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	s.Faults.Market.FirstTickDelay = 3 * CallTimeout
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	connect(t, b, env.Params)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := b.Snapshot(ctx, standardAAPL); done <- err }()
	wctx, wcancel := callCtx(t)
	defer wcancel()
	if _, err := env.Gateway.WaitRequest(wctx, fakes.MsgReqMktData); err != nil {
		t.Fatalf("the snapshot request never reached the gateway: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		wantIs(t, "Snapshot cancelled mid-call", err, context.Canceled)
	case <-time.After(PromptBound):
		t.Fatalf("Snapshot did not return within %v of its context ending", PromptBound)
	}
	s.Faults = fakes.Faults{}
	env.Gateway.SetScript(s)
	ctx2, cancel2 := callCtx(t)
	defer cancel2()
	if _, err := b.Snapshot(ctx2, standardAAPL); err != nil {
		t.Errorf("Snapshot after a cancelled one: %v", err)
	}
}

// TestPacing: 64 callers at once against a gateway enforcing IB's 50
// messages per second never get error 100 nor lose the session: the Broker
// paces its requests.
func TestPacing(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	p := fakes.IBPacing()
	s.Pacing = &p
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	events, err := b.Subscribe(t.Context())
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	connect(t, b, env.Params)
	ctx, cancel := context.WithTimeout(t.Context(), 4*CallTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range 64 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = b.Snapshot(ctx, standardAAPL)
			} else {
				_, err = b.ContractDetails(ctx, broker.Contract{ConID: 272093})
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("%d of 64 paced calls failed: %v", len(errs), err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Errorf("Ping after 64 paced calls: %v", err)
	}
	for {
		select {
		case e := <-events:
			if e.Code == broker.IBCodeMaxRateExceeded || e.Kind == broker.EventConnectionLost {
				t.Errorf("event %+v: the gateway saw more than its rate", e)
			}
			continue
		default:
		}
		return
	}
}
