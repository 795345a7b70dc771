package conformance

import (
	"slices"
	"strconv"
	"strings"
	"unicode"

	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// Limits of what the TWS API carries exactly, as decoded by
// github.com/scmhub/ibapi v0.10.47, the client of the IBKR adapter. The
// generators stay inside them, so that any difference between what the fake
// gateway served and what a Broker returned is a bug of the Broker, not of the
// data.
//
//   - Quantities travel as text and scmhub holds them as fixed-point numbers
//     (github.com/robaho/fixed) with MaxQuantityFractionDigits fractional
//     digits and an integer part of at most MaxQuantityIntDigits digits
//     (exactly 100000000000 passes too). A larger integer part is refused (the
//     adapter then fails with broker.ErrProtocol); further fractional digits
//     are silently truncated by scmhub, which no adapter on top of it can
//     detect (0.00000001 arrives as 0). The texts IB uses as
//     "no value" markers are not quantities: UnsetQuantity (2147483647) reads as
//     unset.
//   - Average costs and strikes travel as text but scmhub parses them into
//     float64, so they come back exactly only with at most
//     MaxPriceSignificantDigits significant digits (and, here, below
//     MaxPriceMagnitude).
//   - Text (symbols, accounts, summary values) travels as NUL-separated fields
//     and crosses the transports as UTF-8 strings: it must be valid UTF-8
//     without NUL. Accounts contain no comma (MANAGED_ACCTS is a comma-joined
//     list) and are never empty.
const (
	MaxQuantityFractionDigits = 7
	MaxQuantityIntDigits      = 11
	MaxPriceSignificantDigits = 15
	MaxPriceMagnitude         = 1e15
	UnsetQuantity             = "2147483647"
)

// ExtraSummaryTags returns the tags beyond broker.DefaultSummaryTags that
// generated summaries may hold: they are returned only when asked for by name.
// It is a fresh copy each call.
func ExtraSummaryTags() []string { return slices.Clone(extraSummaryTags) }

var extraSummaryTags = []string{"DayTradesRemaining", "FullInitMarginReq", "Currency", "RegTEquity"}

// digits draws a string of n decimal digits, the first one non-zero if nonZeroFirst.
func digits(t *rapid.T, n int, nonZeroFirst bool, label string) string {
	if n <= 0 {
		return ""
	}
	var b strings.Builder
	for i := range n {
		lo := 0
		if i == 0 && nonZeroFirst {
			lo = 1
		}
		b.WriteByte(byte('0' + rapid.IntRange(lo, 9).Draw(t, label)))
	}
	return b.String()
}

// GenQuantity generates position quantities that scmhub carries exactly: any
// sign, up to MaxQuantityIntDigits integer and MaxQuantityFractionDigits
// fractional digits, often at the edges (0, ±0.0000001, ±99999999999.9999999,
// integers, one fractional digit), never UnsetQuantity.
func GenQuantity() *rapid.Generator[broker.Decimal] {
	edges := []string{"0", "1", "-1", "0.0000001", "-0.0000001", "99999999999.9999999", "-99999999999.9999999",
		"0.5", "-0.3333333", "2147483646", "2147483648", "100"}
	return rapid.Custom(func(t *rapid.T) broker.Decimal {
		if rapid.IntRange(0, 3).Draw(t, "edge?") == 0 {
			return broker.MustDecimal(rapid.SampledFrom(edges).Draw(t, "edge"))
		}
		sign := rapid.SampledFrom([]string{"", "-"}).Draw(t, "sign")
		ip := digits(t, rapid.IntRange(0, MaxQuantityIntDigits).Draw(t, "intDigits"), true, "int")
		if ip == "" {
			ip = "0"
		}
		fp := digits(t, rapid.IntRange(0, MaxQuantityFractionDigits).Draw(t, "fracDigits"), false, "frac")
		s := sign + ip
		if fp != "" {
			s += "." + fp
		}
		d := broker.MustDecimal(s)
		if d.String() == UnsetQuantity {
			return broker.DecimalFromInt(2147483646)
		}
		return d
	})
}

// GenPrice generates prices (average costs, strikes) that survive float64
// exactly: 1 to MaxPriceSignificantDigits significant digits, below
// MaxPriceMagnitude, down to 1e-8; negative only if signed.
func GenPrice(signed bool) *rapid.Generator[broker.Decimal] {
	return rapid.Custom(func(t *rapid.T) broker.Decimal {
		if rapid.IntRange(0, 5).Draw(t, "zero?") == 0 {
			return broker.Decimal{}
		}
		n := rapid.IntRange(1, MaxPriceSignificantDigits).Draw(t, "sigDigits")
		sig := digits(t, n, true, "sig")
		// The decimal point goes after `point` digits of sig; negative means
		// leading zeros after "0.", beyond n means trailing zeros.
		point := rapid.IntRange(-7, MaxPriceSignificantDigits).Draw(t, "point")
		var s string
		switch {
		case point <= 0:
			s = "0." + strings.Repeat("0", -point) + sig
		case point >= n:
			s = sig + strings.Repeat("0", point-n)
		default:
			s = sig[:point] + "." + sig[point:]
		}
		if signed && rapid.Bool().Draw(t, "negative") {
			s = "-" + s
		}
		return broker.MustDecimal(s)
	})
}

// GenText generates field text: usually realistic (tickers, exchange names),
// sometimes empty, sometimes any Unicode letters, marks, digits, symbols,
// punctuation and spaces (Japanese, German umlauts, emoji, commas). It is
// always valid UTF-8 and never holds NUL.
func GenText() *rapid.Generator[string] {
	realistic := []string{"AAPL", "BRK B", "7203", "SPY", "EUR.USD", "ES", "トヨタ自動車", "Müller Ölwerke", "🚀 ROCKET", "A,B", " lead", "trail "}
	uni := rapid.StringOfN(rapid.RuneFrom(nil, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs), 1, 12, -1)
	return rapid.OneOf(
		rapid.Just(""),
		rapid.SampledFrom(realistic),
		rapid.StringMatching(`[A-Z][A-Z0-9.]{0,7}`),
		uni,
	)
}

// GenAccount generates an account id: IB-like ("DU1234567", "U42") or any
// non-empty Unicode text without comma.
func GenAccount() *rapid.Generator[string] {
	return rapid.OneOf(
		rapid.StringMatching(`(DU|U|DF|F)[0-9]{1,8}`),
		rapid.Custom(func(t *rapid.T) string {
			s := GenText().Draw(t, "text")
			s = strings.ReplaceAll(s, ",", ";")
			if s == "" {
				s = "Ω"
			}
			return s
		}),
	)
}

// GenAccounts generates 1 to 4 distinct accounts.
func GenAccounts() *rapid.Generator[[]string] {
	return rapid.SliceOfNDistinct(GenAccount(), 1, 4, rapid.ID[string])
}

// GenContract generates contracts: stocks, options (fractional strikes,
// multipliers), futures, cash and anything else, with empty fields and
// Unicode symbols.
func GenContract() *rapid.Generator[broker.Contract] {
	return rapid.Custom(func(t *rapid.T) broker.Contract {
		c := broker.Contract{
			ConID:        rapid.OneOf(rapid.Int64Range(0, 1<<31), rapid.Int64()).Draw(t, "conID"),
			Symbol:       GenText().Draw(t, "symbol"),
			SecType:      rapid.SampledFrom([]string{"STK", "OPT", "FUT", "CASH", "FOP", "CRYPTO", "BOND", ""}).Draw(t, "secType"),
			Exchange:     rapid.OneOf(rapid.SampledFrom([]string{"SMART", "NASDAQ", "CME", "IDEALPRO", "TSEJ", ""}), GenText()).Draw(t, "exchange"),
			Currency:     rapid.SampledFrom([]string{"USD", "EUR", "JPY", "GBP", "CHF", ""}).Draw(t, "currency"),
			LocalSymbol:  GenText().Draw(t, "localSymbol"),
			TradingClass: GenText().Draw(t, "tradingClass"),
		}
		switch c.SecType {
		case "OPT", "FOP", "":
			c.Expiry = rapid.SampledFrom([]string{"20261218", "202612", "20270115", ""}).Draw(t, "expiry")
			c.Strike = GenPrice(false).Draw(t, "strike")
			c.Right = rapid.SampledFrom([]string{"C", "P", ""}).Draw(t, "right")
			c.Multiplier = rapid.SampledFrom([]string{"100", "10", "0.1", "1000", ""}).Draw(t, "multiplier")
		case "FUT":
			c.Expiry = rapid.SampledFrom([]string{"202612", "20261218"}).Draw(t, "expiry")
			c.Multiplier = rapid.SampledFrom([]string{"50", "5", "12.5", "0.01"}).Draw(t, "multiplier")
		}
		return c
	})
}

// GenPosition generates a position of one of accounts (or, now and then, of
// an account the gateway did not list, possibly empty).
func GenPosition(accounts []string) *rapid.Generator[broker.Position] {
	return rapid.Custom(func(t *rapid.T) broker.Position {
		acct := ""
		if len(accounts) > 0 && rapid.IntRange(0, 7).Draw(t, "foreign?") != 0 {
			acct = rapid.SampledFrom(accounts).Draw(t, "account")
		} else {
			acct = strings.ReplaceAll(GenText().Draw(t, "foreignAccount"), ",", ";")
		}
		return broker.Position{
			Account:  acct,
			Contract: GenContract().Draw(t, "contract"),
			Quantity: GenQuantity().Draw(t, "quantity"),
			AvgCost:  GenPrice(true).Draw(t, "avgCost"),
		}
	})
}

// GenSummaryValue generates one summary value: money as IB writes it, a
// ratio, a word, Unicode text or nothing, with or without a currency.
func GenSummaryValue() *rapid.Generator[broker.SummaryValue] {
	return rapid.Custom(func(t *rapid.T) broker.SummaryValue {
		var v string
		switch rapid.IntRange(0, 4).Draw(t, "kind") {
		case 0:
			v = GenQuantity().Draw(t, "money").String()
		case 1:
			v = GenPrice(true).Draw(t, "ratio").String()
		case 2:
			v = rapid.SampledFrom([]string{"INDIVIDUAL", "Société Anonyme — 法人", "true", "-1.7976931348623157E308"}).Draw(t, "word")
		case 3:
			v = GenText().Draw(t, "text")
		default:
			v = strconv.Itoa(rapid.IntRange(-1000, 1000).Draw(t, "int"))
		}
		cur := rapid.SampledFrom([]string{"", "USD", "EUR", "JPY", "BASE"}).Draw(t, "currency")
		return broker.SummaryValue{Value: v, Currency: cur}
	})
}

// GenSummary generates an account summary of some of accounts (each at most
// once, in drawn order, possibly plus accounts the gateway did not list), each
// with values for a subset of broker.DefaultSummaryTags and ExtraSummaryTags.
func GenSummary(accounts []string) *rapid.Generator[[]broker.AccountSummary] {
	allTags := append(slices.Clone(broker.DefaultSummaryTags), extraSummaryTags...)
	return rapid.Custom(func(t *rapid.T) []broker.AccountSummary {
		names := slices.Clone(accounts)
		if rapid.IntRange(0, 4).Draw(t, "foreign?") == 0 {
			names = append(names, "ZZ"+strconv.Itoa(rapid.IntRange(0, 99).Draw(t, "foreignAccount")))
		}
		order := rapid.Permutation(names).Draw(t, "order")
		keep := rapid.IntRange(0, len(order)).Draw(t, "accountsWithSummary")
		var out []broker.AccountSummary
		for _, a := range order[:keep] {
			tags := rapid.SliceOfDistinct(rapid.SampledFrom(allTags), rapid.ID[string]).Draw(t, "tags")
			vals := make(map[string]broker.SummaryValue, len(tags))
			for _, tag := range tags {
				vals[tag] = GenSummaryValue().Draw(t, "value")
			}
			out = append(out, broker.AccountSummary{Account: a, Values: vals})
		}
		return out
	})
}

// GenSummaryTags generates the tags of one AccountSummary call: nil (the
// default tags) or 1 to 4 distinct tags, sometimes ones no script holds.
func GenSummaryTags() *rapid.Generator[[]string] {
	allTags := append(slices.Clone(broker.DefaultSummaryTags), extraSummaryTags...)
	allTags = append(allTags, "NoSuchTag")
	return rapid.OneOf(
		rapid.Just([]string(nil)),
		rapid.SliceOfNDistinct(rapid.SampledFrom(allTags), 1, 4, rapid.ID[string]),
	)
}

// GenScript generates a fake gateway script without faults: 1 to 4
// accounts, up to 12 positions (at most one per account and contract id, as
// IB keeps them: a portfolio row is keyed by both) and a summary, all inside
// the limits above.
func GenScript() *rapid.Generator[fakes.Script] {
	return rapid.Custom(func(t *rapid.T) fakes.Script {
		accts := GenAccounts().Draw(t, "accounts")
		return fakes.Script{
			Accounts:    accts,
			NextValidID: rapid.Int64Range(1, 1<<40).Draw(t, "nextValidID"),
			Positions:   rapid.SliceOfNDistinct(GenPosition(accts), 0, 12, positionKey).Draw(t, "positions"),
			Summary:     GenSummary(accts).Draw(t, "summary"),
		}
	})
}

// positionKey identifies a position as IB does: account and contract id.
func positionKey(p broker.Position) string {
	return p.Account + "\x00" + strconv.FormatInt(p.Contract.ConID, 10)
}

// ExpectedSummary is what AccountSummary(tags...) returns for a gateway
// serving s: per account, in the order the gateway first names it, the values
// of the requested tags (broker.DefaultSummaryTags if none) it holds; accounts
// with none of them are absent.
func ExpectedSummary(s fakes.Script, tags ...string) []broker.AccountSummary {
	if len(tags) == 0 {
		tags = broker.DefaultSummaryTags
	}
	out := []broker.AccountSummary{}
	index := map[string]int{}
	for _, a := range s.Summary {
		for _, tag := range tags {
			v, ok := a.Values[tag]
			if !ok {
				continue
			}
			i, seen := index[a.Account]
			if !seen {
				i = len(out)
				index[a.Account] = i
				out = append(out, broker.AccountSummary{Account: a.Account, Values: map[string]broker.SummaryValue{}})
			}
			out[i].Values[tag] = v
		}
	}
	return out
}
