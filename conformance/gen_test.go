package conformance_test

import (
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scmhub/ibapi"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
)

// TestGenQuantityWithinScmhub: every generated quantity goes through scmhub's
// fixed-point Decimal and back unchanged, and is never the unset marker.
func TestGenQuantityWithinScmhub(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		q := conformance.GenQuantity().Draw(t, "q")
		if q.String() == conformance.UnsetQuantity {
			t.Fatalf("generated the unset marker %s", q)
		}
		d, err := ibapi.StringToDecimalErr(q.String())
		if err != nil {
			t.Fatalf("scmhub refuses %s: %v", q, err)
		}
		if back := broker.MustDecimal(ibapi.DecimalToString(d)); back != q {
			t.Fatalf("scmhub turned %s into %s", q, back)
		}
	})
}

// TestGenPriceWithinFloat64: every generated price survives float64 and the
// adapter's shortest round-trip formatting unchanged.
func TestGenPriceWithinFloat64(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := conformance.GenPrice(true).Draw(t, "p")
		f, err := strconv.ParseFloat(p.String(), 64)
		if err != nil {
			t.Fatal(err)
		}
		if back := broker.MustDecimal(strconv.FormatFloat(f, 'f', -1, 64)); back != p {
			t.Fatalf("float64 turned %s into %s", p, back)
		}
		if new(big.Rat).Abs(p.Rat()).Cmp(new(big.Rat).SetFloat64(conformance.MaxPriceMagnitude)) >= 0 {
			t.Fatalf("%s is not below %g", p, conformance.MaxPriceMagnitude)
		}
	})
}

// TestGenScriptValid: generated scripts pass the fake's validation, hold
// 1..4 distinct accounts without comma, and only valid UTF-8 text.
func TestGenScriptValid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := conformance.GenScript().Draw(t, "script")
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		if n := len(s.Accounts); n < 1 || n > 4 {
			t.Fatalf("%d accounts", n)
		}
		seen := map[string]bool{}
		for _, a := range s.Accounts {
			if a == "" || strings.Contains(a, ",") || seen[a] {
				t.Fatalf("bad or repeated account %q in %q", a, s.Accounts)
			}
			seen[a] = true
		}
		for _, p := range s.Positions {
			for _, f := range []string{p.Account, p.Contract.Symbol, p.Contract.LocalSymbol, p.Contract.Exchange} {
				if !utf8Valid(f) {
					t.Fatalf("invalid UTF-8 %q", f)
				}
			}
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestExpectedSummary: default tags, a subset, absent tags and repeated
// accounts (merged in first-named order).
func TestExpectedSummary(t *testing.T) {
	s := conformance.StandardScript()
	// The standard summary names DU2000002 first and last: it is merged,
	// in first-named order, without the tag beyond the defaults.
	var accts []string
	for _, a := range conformance.ExpectedSummary(s) {
		accts = append(accts, a.Account)
		if n := len(a.Values); n != len(broker.DefaultSummaryTags) {
			t.Errorf("default tags of the standard script: %s has %d values, want %d", a.Account, n, len(broker.DefaultSummaryTags))
		}
	}
	if want := []string{"DU2000002", conformance.SummaryOnlyAccount, "U3000003", "DU1000001"}; !cmp.Equal(accts, want) {
		t.Errorf("default tags of the standard script: accounts %q, want %q", accts, want)
	}
	v := func(x string) broker.SummaryValue { return broker.SummaryValue{Value: x, Currency: "USD"} }
	s.Summary = []broker.AccountSummary{
		{Account: "A", Values: map[string]broker.SummaryValue{"NetLiquidation": v("1"), "Extra": v("x")}},
		{Account: "B", Values: map[string]broker.SummaryValue{"Extra": v("y")}},
		{Account: "A", Values: map[string]broker.SummaryValue{"Cushion": v("0.5")}},
	}
	got := conformance.ExpectedSummary(s, "Cushion", "NetLiquidation")
	want := []broker.AccountSummary{{Account: "A", Values: map[string]broker.SummaryValue{"NetLiquidation": v("1"), "Cushion": v("0.5")}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged subset (-want +got):\n%s", diff)
	}
	if got := conformance.ExpectedSummary(s, "NoSuchTag"); got == nil || len(got) != 0 {
		t.Errorf("absent tag: %#v, want an empty, non-nil list", got)
	}
}
