package broker

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// MaxDecimalDigits bounds the number of digits ParseDecimal accepts, so that
// hostile input cannot make a value arbitrarily expensive.
const MaxDecimalDigits = 100

// Decimal is an exact decimal number such as a share quantity or an amount of money.
//
// It is held as canonical decimal text: no exponent, no leading zeros, no trailing
// fractional zeros, no "-0". Two Decimals are equal exactly when their values are,
// so == and Equal agree, and go-cmp compares them through Equal. The zero value is 0.
type Decimal struct {
	s string // canonical text; "" means 0
}

// ParseDecimal parses decimal text: an optional sign, digits, and an optional
// fractional part ("100", "-0.5", "+.25", "1e3" is rejected). It never rounds.
// Errors wrap ErrInvalidArgument.
func ParseDecimal(s string) (Decimal, error) {
	in := s
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return Decimal{}, fmt.Errorf("%w: decimal %q has no digits", ErrInvalidArgument, in)
	}
	if len(intPart)+len(frac) > MaxDecimalDigits {
		return Decimal{}, fmt.Errorf("%w: decimal %.20q... has more than %d digits", ErrInvalidArgument, in, MaxDecimalDigits)
	}
	if !allDigits(intPart) || !allDigits(frac) || (hasDot && strings.Contains(frac, ".")) {
		return Decimal{}, fmt.Errorf("%w: %q is not a decimal", ErrInvalidArgument, in)
	}
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if intPart == "" && frac == "" {
		return Decimal{}, nil
	}
	if intPart == "" {
		intPart = "0"
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(intPart)
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return Decimal{s: b.String()}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MustDecimal is ParseDecimal for constants; it panics on invalid text.
func MustDecimal(s string) Decimal {
	d, err := ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// DecimalFromInt returns the Decimal equal to n.
func DecimalFromInt(n int64) Decimal {
	if n == 0 {
		return Decimal{}
	}
	return Decimal{s: strconv.FormatInt(n, 10)}
}

// String returns the canonical text, "0" for zero.
func (d Decimal) String() string {
	if d.s == "" {
		return "0"
	}
	return d.s
}

// IsZero reports whether d is 0.
func (d Decimal) IsZero() bool { return d.s == "" }

// Equal reports whether d and e have the same value.
func (d Decimal) Equal(e Decimal) bool { return d.s == e.s }

// Rat returns d as an exact rational number.
func (d Decimal) Rat() *big.Rat {
	r, ok := new(big.Rat).SetString(d.String())
	if !ok { // unreachable: canonical text always parses
		panic("broker: corrupt Decimal " + d.s)
	}
	return r
}

// Cmp compares d and e and returns -1, 0 or +1.
func (d Decimal) Cmp(e Decimal) int {
	if d.s == e.s {
		return 0
	}
	return d.Rat().Cmp(e.Rat())
}

// Float64 returns the nearest float64. It is for display and statistics only:
// the result may be rounded.
func (d Decimal) Float64() float64 {
	f, _ := strconv.ParseFloat(d.String(), 64)
	return f
}

// MarshalText implements encoding.TextMarshaler; JSON carries a Decimal as a string.
func (d Decimal) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Decimal) UnmarshalText(b []byte) error {
	v, err := ParseDecimal(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalJSON accepts a JSON string ("0.5") or, leniently, a JSON number (0.5),
// taking the number's text exactly as written.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' {
		s, err := strconv.Unquote(string(b))
		if err != nil {
			return fmt.Errorf("%w: decimal %s: %v", ErrInvalidArgument, b, err)
		}
		return d.UnmarshalText([]byte(s))
	}
	if string(b) == "null" {
		return nil
	}
	return d.UnmarshalText(b)
}
