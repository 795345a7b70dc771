package broker_test

import (
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
)

func TestParseDecimal(t *testing.T) {
	good := map[string]string{
		"0": "0", "-0": "0", "+0.000": "0", "100": "100", "007": "7", "0.5": "0.5", ".5": "0.5",
		"-.25": "-0.25", "1.50": "1.5", "-12.3400": "-12.34", "5.": "5",
		"123456789012345678901234567890.000000001": "123456789012345678901234567890.000000001",
	}
	for in, want := range good {
		d, err := broker.ParseDecimal(in)
		if err != nil {
			t.Errorf("ParseDecimal(%q): %v", in, err)
			continue
		}
		if got := d.String(); got != want {
			t.Errorf("ParseDecimal(%q) = %s, want %s", in, got, want)
		}
	}
	for _, in := range []string{"", "-", "+", ".", "1e3", "1.2.3", "abc", " 1", "1 ", "--1", "0x10", "NaN", "Inf", strings.Repeat("9", broker.MaxDecimalDigits+1)} {
		if d, err := broker.ParseDecimal(in); !errors.Is(err, broker.ErrInvalidArgument) {
			t.Errorf("ParseDecimal(%q) = %v, %v; want ErrInvalidArgument", in, d, err)
		}
	}
}

// decimalText draws decimal text with optional sign, leading and trailing zeros.
func decimalText() *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		sign := rapid.SampledFrom([]string{"", "-", "+"}).Draw(t, "sign")
		ip := rapid.StringMatching(`[0-9]{0,30}`).Draw(t, "int")
		fp := rapid.StringMatching(`[0-9]{0,20}`).Draw(t, "frac")
		if ip == "" && fp == "" {
			ip = "0"
		}
		if fp == "" && rapid.Bool().Draw(t, "nodot") {
			return sign + ip
		}
		return sign + ip + "." + fp
	})
}

func TestDecimalProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := decimalText().Draw(t, "a")
		b := decimalText().Draw(t, "b")
		da, err := broker.ParseDecimal(a)
		if err != nil {
			t.Fatalf("ParseDecimal(%q): %v", a, err)
		}
		db := broker.MustDecimal(b)
		ra, _ := new(big.Rat).SetString(a)
		rb, _ := new(big.Rat).SetString(b)
		// Exact: the value is the text's value.
		if da.Rat().Cmp(ra) != 0 {
			t.Fatalf("%q parsed to %s", a, da)
		}
		// Canonical: equality of values is equality of Decimals, and Cmp agrees with big.Rat.
		if (ra.Cmp(rb) == 0) != (da == db) || (da == db) != da.Equal(db) {
			t.Fatalf("%q vs %q: Equal disagrees with value equality", a, b)
		}
		if da.Cmp(db) != ra.Cmp(rb) {
			t.Fatalf("Cmp(%q, %q) = %d, want %d", a, b, da.Cmp(db), ra.Cmp(rb))
		}
		// String is a fixed point of ParseDecimal.
		if again := broker.MustDecimal(da.String()); again != da {
			t.Fatalf("reparse of %s gave %s", da, again)
		}
		// JSON round trip is exact.
		bs, _ := json.Marshal(da)
		var back broker.Decimal
		if err := json.Unmarshal(bs, &back); err != nil || back != da {
			t.Fatalf("JSON round trip of %s: %s -> %s, %v", da, bs, back, err)
		}
	})
}

func TestDecimalJSON(t *testing.T) {
	type row struct {
		Q broker.Decimal `json:"q"`
	}
	var got []row
	if err := json.Unmarshal([]byte(`[{"q":"0.1"},{"q":0.30000000000000004},{"q":null},{}]`), &got); err != nil {
		t.Fatal(err)
	}
	want := []row{{broker.MustDecimal("0.1")}, {broker.MustDecimal("0.30000000000000004")}, {}, {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unmarshal (-want +got):\n%s", diff)
	}
	bs, _ := json.Marshal(row{broker.MustDecimal("-1.25")})
	if string(bs) != `{"q":"-1.25"}` {
		t.Errorf("marshal = %s", bs)
	}
	var r row
	if err := json.Unmarshal([]byte(`{"q":"1e5"}`), &r); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("unmarshal 1e5: %v, want ErrInvalidArgument", err)
	}
}

func TestDecimalZeroAndInt(t *testing.T) {
	var z broker.Decimal
	if !z.IsZero() || z.String() != "0" || z != broker.MustDecimal("-0.0") || z != broker.DecimalFromInt(0) {
		t.Errorf("zero value is not 0")
	}
	if got := broker.DecimalFromInt(-42); got != broker.MustDecimal("-42.000") {
		t.Errorf("DecimalFromInt(-42) = %s", got)
	}
	if f := broker.MustDecimal("0.5").Float64(); f != 0.5 {
		t.Errorf("Float64 = %v", f)
	}
}

func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0", "-0.5", "+.1", "1.", "", "1e3", "00012.3400", "9999999999999999999.9999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := broker.ParseDecimal(s)
		if err != nil {
			if !errors.Is(err, broker.ErrInvalidArgument) {
				t.Fatalf("error %v is not ErrInvalidArgument", err)
			}
			return
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok || r.Cmp(d.Rat()) != 0 {
			t.Fatalf("ParseDecimal(%q) = %s, value differs", s, d)
		}
		if broker.MustDecimal(d.String()) != d {
			t.Fatalf("not canonical: %q", d.String())
		}
	})
}
