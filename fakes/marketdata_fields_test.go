package fakes

import (
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// b is 1 for true, for field-count formulas.
func b(ok bool) int {
	if ok {
		return 1
	}
	return 0
}

// TestMarketDataFieldCounts checks the text layouts of the contract, market
// data and historical messages at every server version against the field
// counts stoqey's decoder.js and scmhub's decoder.go read (a non-FUND
// contract, no secIdList, no ineligibility reasons).
func TestMarketDataFieldCounts(t *testing.T) {
	in := DefaultInstruments()[0]
	bar := []string{"20261201 15:00:00 UTC", "1", "2", "0.5", "1.5", "100", "1.25", "7"}
	for v := MinServerVersion; v <= MaxServerVersion; v++ {
		want := 1 + b(v < minVerSizeRules) + 1 + 2 + 1 + b(v >= minVerLastTradeDate) + 9 + b(v >= 110 && v < minVerSizeRules) +
			3 + 2 + 2 + 7 + 2 + 1 + b(v >= 121) + 2*b(v >= 122) + b(v >= minVerMarketRules) + b(v >= 134) + b(v >= 152) +
			b(v == 163) + 3*b(v >= minVerSizeRules) + b(v >= minVerIneligibility)
		if got := len(contractDataFields(v, 7, in)); got != want {
			t.Errorf("CONTRACT_DATA at %d: %d fields, want %d", v, got, want)
		}
		h := historicalFields(v, 7, "s", "e", [][]string{bar, bar})
		perBar := 8 + b(v < minVerSyntRealtimeBars)
		wantH := 1 + b(v < minVerSyntRealtimeBars) + 1 + 2*b(v < minVerHistoricalEnd) + 1 + 2*perBar
		if got := len(h[0]); got != wantH {
			t.Errorf("HISTORICAL_DATA at %d: %d fields, want %d", v, got, wantH)
		}
		if wantEnd := v >= minVerHistoricalEnd; (len(h) == 2) != wantEnd || wantEnd && len(h[1]) != 4 {
			t.Errorf("HISTORICAL_DATA_END at %d: %q", v, h[1:])
		}
		samples := replyMatchingSymbols(Script{Instruments: DefaultInstruments()}, v, []string{"81", "3", "MSFT"})[0]
		if got, want := len(samples), 3+6+2*b(v >= minVerBondIssuerID); got != want {
			t.Errorf("SYMBOL_SAMPLES at %d: %d fields, want %d", v, got, want)
		}
	}
	s := newSub(3, in, false, false)
	for _, f := range s.initialTicks() {
		want := map[string]int{"1": 7, "2": 5, "45": 5, "46": 5}[f[0]]
		if len(f) != want {
			t.Errorf("tick message %q: %d fields, want %d", f, len(f), want)
		}
	}
	for range 100 {
		for _, f := range s.step(time.Now()) {
			if want := map[string]int{"1": 7, "2": 5, "46": 5}[f[0]]; len(f) != want {
				t.Errorf("moving tick %q: %d fields, want %d", f, len(f), want)
			}
		}
	}
	if s.bid >= s.ask || s.bid < 1 {
		t.Errorf("after 100 steps bid %d, ask %d ticks: the spread must stay positive", s.bid, s.ask)
	}
}

// TestRandomWalkDeterministic: two subscriptions with the same seed and
// request id move identically; exact decimal prices on the tick grid.
func TestRandomWalkDeterministic(t *testing.T) {
	in := DefaultInstruments()[0]
	a, c := newSub(9, in, false, false), newSub(9, in, false, false)
	now := time.Now()
	for i := range 500 {
		fa, fc := a.step(now), c.step(now)
		if len(fa) != len(fc) || fa[0][4] != fc[0][4] {
			t.Fatalf("step %d differs: %q vs %q", i, fa, fc)
		}
		if fa[0][0] == "1" {
			p := broker.MustDecimal(fa[0][4]).Rat()
			if q := p.Quo(p, in.minTick().Rat()); !q.IsInt() {
				t.Fatalf("price %s is not a multiple of %s", fa[0][4], in.minTick())
			}
		}
	}
}
