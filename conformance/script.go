package conformance

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// StandardAccounts returns the managed accounts of StandardScript, in the
// gateway's order, which is not sorted: a fresh copy each call.
func StandardAccounts() []string { return slices.Clone(standardAccounts) }

var standardAccounts = []string{"U3000003", "DU1000001", "DU2000002"}

// SummaryOnlyAccount is an account StandardScript's summary names although the
// gateway does not manage it (IB reports such accounts of advisors' groups).
const SummaryOnlyAccount = "F4000004"

// StandardScript returns the script the cases serve: three accounts, about
// forty positions and a full account summary (the DefaultSummaryTags for every
// account). Besides generated rows it holds the awkward ones on purpose:
// fractional, negative, tiny and near-maximum quantities (-0.3333333,
// 0.0000001, 99999999999.9999999), 15-significant-digit costs, options with
// fractional strikes, and symbols in Japanese, German, with an emoji and with a
// comma. Its order exposes Brokers that reorder: the accounts are not sorted,
// positions of different accounts interleave and repeat symbols (and contracts)
// across accounts, and the summary names the accounts in yet another order,
// names SummaryOnlyAccount, names one account twice (its tags split in two
// groups, first and last) and holds a tag beyond the defaults
// ("DayTradesRemaining"). Compare summaries with ExpectedSummary, not with
// Summary itself. Every call returns an equal, independent Script.
func StandardScript() fakes.Script {
	d := broker.MustDecimal
	a1, a2, a3 := "DU1000001", "DU2000002", "U3000003"
	stk := func(acct string, conID int64, sym, exch, cur, qty, cost string) broker.Position {
		return broker.Position{Account: acct, Contract: broker.Contract{ConID: conID, Symbol: sym, SecType: "STK",
			Exchange: exch, Currency: cur, LocalSymbol: sym, TradingClass: sym}, Quantity: d(qty), AvgCost: d(cost)}
	}
	pos := []broker.Position{
		stk(a2, 14097, "🚀 ROCKET", "SMART", "USD", "0.0000001", "999999999.999999"),
		stk(a1, 265598, "AAPL", "NASDAQ", "USD", "100", "150.25"),
		stk(a3, 265598, "AAPL", "NASDAQ", "USD", "-7", "161.5"),
		stk(a1, 14094, "7203", "TSEJ", "JPY", "-300", "2875.5"),
		stk(a2, 14094, "7203", "TSEJ", "JPY", "1200", "2890.25"),
		{Account: a3, Contract: broker.Contract{ConID: 730264138, Symbol: "AAPL", SecType: "OPT", Expiry: "20261218",
			Strike: d("187.5"), Right: "C", Multiplier: "100", Exchange: "SMART", Currency: "USD",
			LocalSymbol: "AAPL  261218C00187500", TradingClass: "AAPL"}, Quantity: d("-2"), AvgCost: d("1523.5")},
		stk(a1, 14095, "トヨタ自動車", "TSEJ", "JPY", "0.3333333", "0.000123456789012"),
		stk(a2, 14098, "BRK B", "NYSE", "USD", "99999999999.9999999", "412345.678901234"),
		stk(a1, 14096, "Müller Ölwerke", "IBIS", "EUR", "-0.3333333", "1234567.89012345"),
		stk(a3, 14100, "ZERO", "SMART", "USD", "0", "0"),
		stk(a2, 14099, "A,B", "SMART", "USD", "-12345678901.2345678", "0.01"),
		{Account: a3, Contract: broker.Contract{ConID: 495512563, Symbol: "ES", SecType: "FUT", Expiry: "202612",
			Multiplier: "50", Exchange: "CME", Currency: "USD", LocalSymbol: "ESZ6", TradingClass: "ES"},
			Quantity: d("3"), AvgCost: d("290012.5")},
		{Account: a3, Contract: broker.Contract{ConID: 12087792, Symbol: "EUR", SecType: "CASH", Exchange: "IDEALPRO",
			Currency: "USD", LocalSymbol: "EUR.USD", TradingClass: "EUR.USD"}, Quantity: d("25000.75"), AvgCost: d("1.08455")},
	}
	r := newRand(20250102)
	for i := range 30 {
		acct := standardAccounts[r.IntN(len(standardAccounts))]
		sym := fmt.Sprintf("GEN%02d", i)
		pos = append(pos, stk(acct, int64(500000+i*7919), sym, "SMART", "USD", genQuantity(r), genPrice(r)))
	}

	tagValues := func(seed uint64, cur string) map[string]broker.SummaryValue {
		rr := rand.New(rand.NewPCG(seed, 7))
		m := make(map[string]broker.SummaryValue, len(broker.DefaultSummaryTags))
		for _, tag := range broker.DefaultSummaryTags {
			switch tag {
			case "AccountType":
				m[tag] = broker.SummaryValue{Value: "INDIVIDUAL"}
			case "Cushion", "Leverage":
				m[tag] = broker.SummaryValue{Value: genPrice(rr)}
			default:
				m[tag] = broker.SummaryValue{Value: genMoney(rr), Currency: cur}
			}
		}
		return m
	}
	v1, v2, v3, v4 := tagValues(1, "USD"), tagValues(2, "EUR"), tagValues(3, "JPY"), tagValues(4, "CHF")
	v2["SettledCash"] = broker.SummaryValue{Value: "-1200.75", Currency: "EUR"}
	v3["NetLiquidation"] = broker.SummaryValue{Value: "123456789012345678.12", Currency: "JPY"}
	v3["AccountType"] = broker.SummaryValue{Value: "Société Anonyme — 法人"}
	// a2 is named first and last: its tags are split between its two entries.
	v2first, v2last := map[string]broker.SummaryValue{}, map[string]broker.SummaryValue{}
	for i, tag := range broker.DefaultSummaryTags {
		if i%2 == 0 {
			v2first[tag] = v2[tag]
		} else {
			v2last[tag] = v2[tag]
		}
	}
	v2last["DayTradesRemaining"] = broker.SummaryValue{Value: "3"}
	sum := []broker.AccountSummary{
		{Account: a2, Values: v2first},
		{Account: SummaryOnlyAccount, Values: v4},
		{Account: a3, Values: v3},
		{Account: a1, Values: v1},
		{Account: a2, Values: v2last},
	}

	return fakes.Script{
		ServerVersion: fakes.DefaultServerVersion,
		Accounts:      StandardAccounts(),
		NextValidID:   1001,
		Positions:     pos,
		Summary:       sum,
		Instruments:   standardInstruments(),
	}
}

// standardInstruments are fakes.DefaultInstruments and one whose long name is
// not ASCII (scmhub's text decoder garbles long names at some versions).
func standardInstruments() []fakes.Instrument {
	ins := fakes.DefaultInstruments()
	m := ins[0]
	m.Contract = broker.Contract{ConID: 14096, Symbol: "Müller Ölwerke", SecType: "STK", Exchange: "SMART",
		Currency: "EUR", LocalSymbol: "MÖW", TradingClass: "MÖW"}
	m.PrimaryExchange, m.LongName, m.TicksPerSecond, m.MinTick = "IBIS", "Müller Ölwerke AG — 株式会社", 0, broker.MustDecimal("0.005")
	m.Quote.Bid, m.Quote.Ask, m.Quote.Last = broker.MustDecimal("12.345"), broker.MustDecimal("12.355"), broker.MustDecimal("12.35")
	return append(ins, m)
}

// genQuantity returns a quantity with up to 7 fractional digits, of any sign,
// from 1e-7 to below 1e11.
func genQuantity(r *rand.Rand) string {
	intDigits := r.IntN(12) // 0..11
	var b strings.Builder
	if r.IntN(3) == 0 {
		b.WriteByte('-')
	}
	if intDigits == 0 {
		b.WriteByte('0')
	} else {
		b.WriteString(strconv.Itoa(1 + r.IntN(9)))
		for range intDigits - 1 {
			b.WriteString(strconv.Itoa(r.IntN(10)))
		}
	}
	if frac := r.IntN(8); frac > 0 {
		b.WriteByte('.')
		for range frac {
			b.WriteString(strconv.Itoa(r.IntN(10)))
		}
	}
	return broker.MustDecimal(b.String()).String()
}

// genPrice returns a positive price with at most 15 significant digits.
func genPrice(r *rand.Rand) string {
	intDigits := 1 + r.IntN(9) // 1..9
	frac := r.IntN(15 - intDigits + 1)
	var b strings.Builder
	b.WriteString(strconv.Itoa(1 + r.IntN(9)))
	for range intDigits - 1 {
		b.WriteString(strconv.Itoa(r.IntN(10)))
	}
	if frac > 0 {
		b.WriteByte('.')
		for range frac {
			b.WriteString(strconv.Itoa(r.IntN(10)))
		}
	}
	return broker.MustDecimal(b.String()).String()
}

// genMoney returns an amount of money as IB writes it: two decimals, any sign.
func genMoney(r *rand.Rand) string {
	v := r.Int64N(2_000_000_000_00) - 500_000_000_00
	s := fmt.Sprintf("%d.%02d", v/100, abs(v%100))
	if v < 0 && v/100 == 0 {
		s = "-" + s
	}
	return s
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 193)) }
