package conformance

import (
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
)

// fitsQuantity reports whether d is exact in the TWS API's fixed-point
// quantities: at most 7 fractional digits, magnitude below 1e11.
func fitsQuantity(d broker.Decimal) bool {
	_, frac, _ := strings.Cut(d.String(), ".")
	limit := new(big.Rat).SetInt64(100_000_000_000)
	return len(frac) <= 7 && new(big.Rat).Abs(d.Rat()).Cmp(limit) < 0
}

// fitsPrice reports whether d has at most 15 significant digits.
func fitsPrice(d broker.Decimal) bool {
	digits := strings.TrimLeft(strings.NewReplacer("-", "", ".", "").Replace(d.String()), "0")
	return len(digits) <= 15
}

func TestStandardScript(t *testing.T) {
	s := StandardScript()
	if err := s.Validate(); err != nil {
		t.Fatalf("StandardScript does not validate: %v", err)
	}
	if diff := cmp.Diff(s, StandardScript()); diff != "" {
		t.Errorf("StandardScript is not deterministic:\n%s", diff)
	}
	var neg, frac, big, uni bool
	for i, p := range s.Positions {
		if !fitsQuantity(p.Quantity) || !fitsPrice(p.AvgCost) || !fitsPrice(p.Contract.Strike) {
			t.Errorf("position %d (%v, %v) is outside what the TWS API carries exactly", i, p.Quantity, p.AvgCost)
		}
		q := p.Quantity.String()
		neg = neg || strings.HasPrefix(q, "-")
		frac = frac || strings.Contains(q, ".")
		big = big || len(strings.Split(strings.TrimPrefix(q, "-"), ".")[0]) >= 11
		for _, r := range p.Contract.Symbol {
			uni = uni || r > 0x7f
		}
	}
	if !neg || !frac || !big || !uni {
		t.Errorf("StandardScript lacks awkward rows: negative %v fractional %v large %v unicode %v", neg, frac, big, uni)
	}
	for _, a := range s.Summary {
		for _, tag := range broker.DefaultSummaryTags {
			if _, ok := a.Values[tag]; !ok {
				t.Errorf("summary of %s lacks default tag %s", a.Account, tag)
			}
		}
		if len(a.Values) != len(broker.DefaultSummaryTags) {
			t.Errorf("summary of %s has tags beyond the defaults", a.Account)
		}
	}
}

func TestGenerators(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := newRand(rapid.Uint64().Draw(t, "seed"))
		if q := broker.MustDecimal(genQuantity(r)); !fitsQuantity(q) {
			t.Fatalf("genQuantity gave %v", q)
		}
		if p := broker.MustDecimal(genPrice(r)); !fitsPrice(p) || p.Cmp(broker.Decimal{}) <= 0 {
			t.Fatalf("genPrice gave %v", p)
		}
		if _, err := broker.ParseDecimal(genMoney(r)); err != nil {
			t.Fatalf("genMoney: %v", err)
		}
	})
}
