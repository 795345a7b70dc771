// The state machine's market data actions: contract details, snapshots, bars
// and the market data type, modelled from the script's instruments.

package conformance

import (
	"fmt"
	"time"

	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// drawInstrument draws one of the script's instruments, or (nil) a symbol the
// script does not know.
func (m *machine) drawInstrument(t *rapid.T) *fakes.Instrument {
	n := len(m.script.Instruments)
	i := rapid.IntRange(0, n).Draw(t, "instrument") // n: unknown
	if i == n {
		return nil
	}
	in := m.script.Instruments[i]
	return &in
}

var unknownContract = broker.Contract{Symbol: "NOSUCH", SecType: "STK"}

func (m *machine) detailsCall(t *rapid.T) {
	in := m.drawInstrument(t)
	ctx, cancel := m.ctx(t)
	defer cancel()
	if in == nil {
		_, err := m.b.ContractDetails(ctx, unknownContract)
		expect(t, "ContractDetails(NOSUCH)", err, m.wantErrOr(broker.ErrNotFound))
		return
	}
	got, err := m.b.ContractDetails(ctx, broker.Contract{ConID: in.Contract.ConID})
	if e := compare(err, m.wantErr(), []broker.ContractDetails{in.Details()}, got); e != nil {
		t.Fatalf("ContractDetails(%d): %v", in.Contract.ConID, e)
	}
}

func (m *machine) snapshotCall(t *rapid.T) {
	in := m.drawInstrument(t)
	ctx, cancel := m.ctx(t)
	defer cancel()
	if in == nil {
		_, err := m.b.Snapshot(ctx, unknownContract)
		expect(t, "Snapshot(NOSUCH)", err, m.wantErrOr(broker.ErrNotFound))
		return
	}
	c := broker.Contract{ConID: in.Contract.ConID}
	got, err := m.b.Snapshot(ctx, c)
	want, wantErr := in.SnapshotAs(m.mdType, time.Now())
	if m.wantErr() != nil {
		wantErr = m.wantErr()
	} else if wantErr != nil {
		wantErr = broker.ErrNotSubscribed
	}
	want.Contract, want.Time, want.LastTime = c, got.Time, got.LastTime
	if e := compare(err, wantErr, want, got); e != nil {
		t.Fatalf("Snapshot(%d) under %v data: %v", in.Contract.ConID, m.mdType, e)
	}
}

func (m *machine) barsCall(t *rapid.T) {
	in := m.drawInstrument(t)
	c := unknownContract
	if in != nil {
		c = broker.Contract{ConID: in.Contract.ConID}
	}
	// IB refuses an identical request within 15 s, and the Broker waits for
	// it: each check asks for a window it has not asked for.
	hours := rapid.IntRange(0, 1<<20).Draw(t, "endHoursBack")
	r := broker.BarsRequest{End: standardBars.End.Add(-time.Duration(hours) * time.Hour), Duration: "1 D",
		BarSize: rapid.SampledFrom([]string{"1 hour", "30 mins", "1 day"}).Draw(t, "barSize"), WhatToShow: "MIDPOINT"}
	key := fmt.Sprint(c.ConID, r.End.Unix(), r.BarSize)
	if m.barsAsked[key] {
		t.Skip("asked already in this check")
	}
	m.barsAsked[key] = true
	ctx, cancel := m.ctx(t)
	defer cancel()
	got, err := m.b.HistoricalBars(ctx, c, r)
	if in == nil {
		expect(t, "HistoricalBars(NOSUCH)", err, m.wantErrOr(broker.ErrNotFound))
		return
	}
	want, wantErr := m.script.Bars(c, r, time.Now())
	if m.wantErr() != nil {
		wantErr = m.wantErr()
	}
	if e := compare(err, wantErr, want, got); e != nil {
		t.Fatalf("HistoricalBars(%d, %+v): %v", c.ConID, r, e)
	}
}

func (m *machine) marketTypeCall(t *rapid.T) {
	mdt := broker.MarketDataType(rapid.IntRange(0, 5).Draw(t, "marketDataType"))
	ctx, cancel := m.ctx(t)
	defer cancel()
	err := m.b.SetMarketDataType(ctx, mdt)
	if !mdt.Valid() {
		// The type is checked first or the session is: either error will do.
		if err == nil {
			t.Fatalf("SetMarketDataType(%d) succeeded", int(mdt))
		}
		return
	}
	expect(t, fmt.Sprintf("SetMarketDataType(%v)", mdt), err, m.wantErr())
	if err == nil {
		m.mdType = mdt
	}
}

// wantErrOr is the model's error for a call, or else err.
func (m *machine) wantErrOr(err error) error {
	if w := m.wantErr(); w != nil {
		return w
	}
	return err
}
