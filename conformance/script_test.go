package conformance

import (
	"math/big"
	"slices"
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
	want := ExpectedSummary(s)
	for _, a := range want {
		for _, tag := range broker.DefaultSummaryTags {
			if _, ok := a.Values[tag]; !ok {
				t.Errorf("summary of %s lacks default tag %s", a.Account, tag)
			}
		}
	}
	// The order-exposing properties the doc promises.
	if slices.IsSorted(s.Accounts) {
		t.Errorf("accounts %v are sorted", s.Accounts)
	}
	var sumAccts []string
	for _, a := range want {
		sumAccts = append(sumAccts, a.Account)
	}
	if slices.IsSorted(sumAccts) || slices.Equal(sumAccts[:len(s.Accounts)], s.Accounts) || !slices.Contains(sumAccts, SummaryOnlyAccount) {
		t.Errorf("summary accounts %v: sorted, in the managed order %v, or without %s", sumAccts, s.Accounts, SummaryOnlyAccount)
	}
	if len(s.Summary) == len(want) {
		t.Errorf("no account is named twice in the summary")
	}
	if cmp.Equal(ExpectedSummary(s, append(slices.Clone(broker.DefaultSummaryTags), extraSummaryTags...)...), want) {
		t.Errorf("the summary holds no tag beyond the defaults")
	}
	if slices.IsSortedFunc(s.Positions, func(a, b broker.Position) int { return strings.Compare(a.Account, b.Account) }) {
		t.Errorf("positions are grouped by account")
	}
	seen := map[int64]string{}
	dup := false
	for _, p := range s.Positions {
		if a, ok := seen[p.Contract.ConID]; ok && a != p.Account {
			dup = true
		}
		seen[p.Contract.ConID] = p.Account
	}
	if !dup {
		t.Errorf("no contract is held by two accounts")
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

// TestExportedListsAreCopies: the kit's exported lists cannot be changed by a
// caller: each call returns a fresh copy.
func TestExportedListsAreCopies(t *testing.T) {
	for name, get := range map[string]func() []string{"StandardAccounts": StandardAccounts, "ExtraSummaryTags": ExtraSummaryTags} {
		a := get()
		if len(a) == 0 {
			t.Fatalf("%s is empty", name)
		}
		want := slices.Clone(a)
		a[0] = "changed by a caller"
		if got := get(); !slices.Equal(got, want) {
			t.Errorf("%s after a caller changed its copy: %v, want %v", name, got, want)
		}
	}
	if got := StandardScript().Accounts; !slices.Equal(got, StandardAccounts()) {
		t.Errorf("StandardScript accounts %v, want StandardAccounts %v", got, StandardAccounts())
	}
}
