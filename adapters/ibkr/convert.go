package ibkr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/scmhub/ibapi"
)

// decimalFromIB converts scmhub's fixed-point Decimal (7 fractional places,
// magnitude below about 1e11) to an exact broker.Decimal. The unset value
// (UNSET_DECIMAL, which scmhub also produces for "", for overflowing text and for
// IB's "no value" markers) is an error wrapping broker.ErrProtocol: a position
// without a quantity is not a zero position.
func decimalFromIB(d ibapi.Decimal) (broker.Decimal, error) {
	s := ibapi.DecimalToString(d)
	v, err := broker.ParseDecimal(s)
	if err != nil {
		return broker.Decimal{}, fmt.Errorf("%w: decimal %q from gateway", broker.ErrProtocol, s)
	}
	return v, nil
}

// decimalFromFloat converts a float64 from the gateway (average cost, strike) to
// a Decimal through its shortest round-trip text (strconv 'f', -1). The result is
// the gateway's decimal text exactly whenever that text has at most 15
// significant digits, which covers every price IB sends. NaN and infinities are
// errors wrapping broker.ErrProtocol.
func decimalFromFloat(f float64) (broker.Decimal, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return broker.Decimal{}, fmt.Errorf("%w: number %v from gateway", broker.ErrProtocol, f)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	v, err := broker.ParseDecimal(s)
	if err != nil {
		return broker.Decimal{}, fmt.Errorf("%w: number %.30s... from gateway", broker.ErrProtocol, s)
	}
	return v, nil
}

// unsetQuantities are the texts scmhub reads as UNSET_DECIMAL ("" too): IB's
// "no value" markers, which are not quantities.
var unsetQuantities = map[string]bool{"2147483647": true, "9223372036854775807": true,
	"1.7976931348623157E308": true, "-9223372036854775808": true}

// quantityFromRaw is the gateway's quantity text, exactly, when there is one
// (raw != nil) and it is a plain decimal; an unset marker or other text is an
// error wrapping broker.ErrProtocol. Without raw text it falls back to scmhub's
// value.
func quantityFromRaw(raw *rawPosition, pos ibapi.Decimal) (broker.Decimal, error) {
	if raw == nil {
		return decimalFromIB(pos)
	}
	if raw.quantity == "" || unsetQuantities[raw.quantity] {
		return broker.Decimal{}, fmt.Errorf("%w: unset quantity %q from gateway", broker.ErrProtocol, raw.quantity)
	}
	v, err := broker.ParseDecimal(raw.quantity)
	if err != nil {
		return broker.Decimal{}, fmt.Errorf("%w: quantity %.40q from gateway", broker.ErrProtocol, raw.quantity)
	}
	return v, nil
}

// numberFromRaw is the gateway's text of a price (average cost, strike)
// exactly when it is a plain decimal; "" is 0, as scmhub reads it. Other text
// that scmhub parsed as a float (an exponent, IB's unset double) goes through
// decimalFromFloat.
func numberFromRaw(text string, haveRaw bool, f float64) (broker.Decimal, error) {
	if haveRaw {
		if text == "" {
			return broker.Decimal{}, nil
		}
		if v, err := broker.ParseDecimal(text); err == nil {
			return v, nil
		}
	}
	return decimalFromFloat(f)
}

// positionFromIB converts one POSITION_DATA callback to a broker.Position,
// taking the numbers from raw (the frame's text) when it is not nil.
func positionFromIB(account string, c *ibapi.Contract, pos ibapi.Decimal, avgCost float64, raw *rawPosition) (broker.Position, error) {
	if c == nil {
		return broker.Position{}, fmt.Errorf("%w: position of %q without contract", broker.ErrProtocol, account)
	}
	var rawCost, rawStrike string
	if raw != nil {
		rawCost, rawStrike = raw.avgCost, raw.strike
	}
	q, err := quantityFromRaw(raw, pos)
	if err != nil {
		return broker.Position{}, fmt.Errorf("position %s/%d quantity: %w", account, c.ConID, err)
	}
	cost, err := numberFromRaw(rawCost, raw != nil, avgCost)
	if err != nil {
		return broker.Position{}, fmt.Errorf("position %s/%d average cost: %w", account, c.ConID, err)
	}
	strike, err := numberFromRaw(rawStrike, raw != nil, c.Strike)
	if err != nil {
		return broker.Position{}, fmt.Errorf("position %s/%d strike: %w", account, c.ConID, err)
	}
	return broker.Position{
		Account: account,
		Contract: broker.Contract{
			ConID:        c.ConID,
			Symbol:       c.Symbol,
			SecType:      c.SecType,
			Expiry:       c.LastTradeDateOrContractMonth,
			Strike:       strike,
			Right:        c.Right,
			Multiplier:   c.Multiplier,
			Exchange:     c.Exchange,
			Currency:     c.Currency,
			LocalSymbol:  c.LocalSymbol,
			TradingClass: c.TradingClass,
		},
		Quantity: q,
		AvgCost:  cost,
	}, nil
}

// numberSize is what positionSize counts for each number of a row.
const numberSize = 32

// positionSize is the text size of a row, for the answer bound.
func positionSize(p broker.Position) int {
	c := p.Contract
	return len(p.Account) + len(c.Symbol) + len(c.SecType) + len(c.Expiry) + len(c.Right) + len(c.Multiplier) +
		len(c.Exchange) + len(c.Currency) + len(c.LocalSymbol) + len(c.TradingClass) + 4*numberSize
}

// summaryCollector gathers ACCOUNT_SUMMARY rows into one AccountSummary per
// account, in the order the gateway first named each account.
type summaryCollector struct {
	out   []broker.AccountSummary
	index map[string]int
	rows  int // rows added, repeats included
	size  int // bytes of text added
}

func (c *summaryCollector) add(account, tag, value, currency string) {
	c.rows++
	c.size += len(account) + len(tag) + len(value) + len(currency)
	if c.index == nil {
		c.index = make(map[string]int)
	}
	i, ok := c.index[account]
	if !ok {
		i = len(c.out)
		c.index[account] = i
		c.out = append(c.out, broker.AccountSummary{Account: account, Values: make(map[string]broker.SummaryValue)})
	}
	c.out[i].Values[tag] = broker.SummaryValue{Value: value, Currency: currency}
}

func (c *summaryCollector) result() []broker.AccountSummary {
	if c.out == nil {
		return []broker.AccountSummary{}
	}
	return c.out
}

// Read-side rows (PORTFOLIO_VALUE, EXECUTION_DATA, COMMISSION_REPORT,
// OPEN_ORDER, COMPLETED_ORDER). Precision: scmhub decodes their quantities into
// its fixed-point Decimal (7 fractional places, exact for every quantity IB
// sends) and their prices, values and PnL into float64, which reach the port
// through decimalFromFloat: exact whenever the gateway's text has at most 15
// significant digits, as every price and amount IB sends does. Unlike
// POSITION_DATA these frames are not teed raw (docs/adr/0014).

// contractFromIB converts a callback's contract.
func contractFromIB(c *ibapi.Contract) (broker.Contract, error) {
	if c == nil {
		return broker.Contract{}, fmt.Errorf("%w: row without contract", broker.ErrProtocol)
	}
	strike, err := decimalFromFloat(c.Strike)
	if err != nil {
		return broker.Contract{}, fmt.Errorf("contract %d strike: %w", c.ConID, err)
	}
	return broker.Contract{ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType,
		Expiry: c.LastTradeDateOrContractMonth, Strike: strike, Right: c.Right, Multiplier: c.Multiplier,
		Exchange: c.Exchange, Currency: c.Currency, LocalSymbol: c.LocalSymbol, TradingClass: c.TradingClass}, nil
}

// optFloat is decimalFromFloat with IB's unset double (UNSET_FLOAT, the
// largest float64) read as zero: "no value" (a market order's limit price, the
// realized PnL of an opening fill).
func optFloat(f float64) (broker.Decimal, error) {
	if f == ibapi.UNSET_FLOAT {
		return broker.Decimal{}, nil
	}
	return decimalFromFloat(f)
}

// optDecimal is decimalFromIB with UNSET_DECIMAL read as zero.
func optDecimal(d ibapi.Decimal) (broker.Decimal, error) {
	if d == ibapi.UNSET_DECIMAL {
		return broker.Decimal{}, nil
	}
	return decimalFromIB(d)
}

// decimals converts the floats of one row in order, stopping at the first error.
func decimals(dst []*broker.Decimal, src []float64, conv func(float64) (broker.Decimal, error)) error {
	for i, f := range src {
		v, err := conv(f)
		if err != nil {
			return err
		}
		*dst[i] = v
	}
	return nil
}

// portfolioFromIB converts one PORTFOLIO_VALUE callback. The row carries the
// contract's primary exchange where other rows carry its exchange; it becomes
// the port's Exchange.
func portfolioFromIB(c *ibapi.Contract, pos ibapi.Decimal, price, value, cost, unrealized, realized float64, account string) (broker.PortfolioItem, error) {
	con, err := contractFromIB(c)
	if err != nil {
		return broker.PortfolioItem{}, err
	}
	if con.Exchange == "" { // PORTFOLIO_VALUE names the primary exchange only
		con.Exchange = c.PrimaryExchange
	}
	p := broker.PortfolioItem{Account: account, Contract: con}
	if p.Position, err = decimalFromIB(pos); err != nil {
		return broker.PortfolioItem{}, fmt.Errorf("portfolio %s/%d position: %w", account, con.ConID, err)
	}
	if err := decimals([]*broker.Decimal{&p.MarketPrice, &p.MarketValue, &p.AvgCost, &p.UnrealizedPnL, &p.RealizedPnL},
		[]float64{price, value, cost, unrealized, realized}, optFloat); err != nil {
		return broker.PortfolioItem{}, fmt.Errorf("portfolio %s/%d: %w", account, con.ConID, err)
	}
	return p, nil
}

// executionFromIB converts one EXECUTION_DATA callback (its commission comes later).
func executionFromIB(c *ibapi.Contract, e *ibapi.Execution) (broker.Execution, error) {
	if e == nil {
		return broker.Execution{}, fmt.Errorf("%w: execution without details", broker.ErrProtocol)
	}
	con, err := contractFromIB(c)
	if err != nil {
		return broker.Execution{}, err
	}
	x := broker.Execution{ExecID: e.ExecID, OrderID: e.OrderID, PermID: e.PermID, ClientID: e.ClientID,
		Account: e.AcctNumber, Contract: con, Time: e.Time, Exchange: e.Exchange, Side: e.Side, OrderRef: e.OrderRef}
	if x.Shares, err = decimalFromIB(e.Shares); err != nil {
		return broker.Execution{}, fmt.Errorf("execution %s shares: %w", e.ExecID, err)
	}
	if x.CumQty, err = optDecimal(e.CumQty); err != nil {
		return broker.Execution{}, fmt.Errorf("execution %s cumulative quantity: %w", e.ExecID, err)
	}
	if err := decimals([]*broker.Decimal{&x.Price, &x.AvgPrice}, []float64{e.Price, e.AvgPrice}, optFloat); err != nil {
		return broker.Execution{}, fmt.Errorf("execution %s: %w", e.ExecID, err)
	}
	return x, nil
}

// addCommission fills x's commission report.
func addCommission(x *broker.Execution, r ibapi.CommissionAndFeesReport) error {
	x.CommissionCurrency = r.Currency
	if err := decimals([]*broker.Decimal{&x.Commission, &x.RealizedPnL}, []float64{r.CommissionAndFees, r.RealizedPNL}, optFloat); err != nil {
		return fmt.Errorf("commission report %s: %w", r.ExecID, err)
	}
	return nil
}

// orderFromIB converts one OPEN_ORDER or COMPLETED_ORDER callback.
func orderFromIB(c *ibapi.Contract, o *ibapi.Order, st *ibapi.OrderState) (broker.Order, error) {
	if o == nil {
		return broker.Order{}, fmt.Errorf("%w: order without details", broker.ErrProtocol)
	}
	con, err := contractFromIB(c)
	if err != nil {
		return broker.Order{}, err
	}
	x := broker.Order{OrderID: o.OrderID, PermID: o.PermID, ClientID: o.ClientID, Account: o.Account, Contract: con,
		Action: o.Action, OrderType: o.OrderType, TIF: o.TIF, OrderRef: o.OrderRef}
	if st != nil {
		x.Status = st.Status
	}
	if x.TotalQuantity, err = optDecimal(o.TotalQuantity); err == nil {
		x.Filled, err = optDecimal(o.FilledQuantity)
	}
	if err == nil {
		err = decimals([]*broker.Decimal{&x.LimitPrice, &x.AuxPrice}, []float64{o.LmtPrice, o.AuxPrice}, optFloat)
	}
	if err != nil {
		return broker.Order{}, fmt.Errorf("order %d: %w", o.PermID, err)
	}
	return x, nil
}

// Sizes of read-side rows, for the answer bound.
func contractSize(c broker.Contract) int {
	return len(c.Symbol) + len(c.SecType) + len(c.Expiry) + len(c.Right) + len(c.Multiplier) + len(c.Exchange) +
		len(c.Currency) + len(c.LocalSymbol) + len(c.TradingClass) + numberSize
}

func executionSize(x broker.Execution) int {
	return contractSize(x.Contract) + len(x.ExecID) + len(x.Account) + len(x.Time) + len(x.Exchange) + len(x.Side) +
		len(x.OrderRef) + len(x.CommissionCurrency) + 10*numberSize
}

func orderSize(x broker.Order) int {
	return contractSize(x.Contract) + len(x.Account) + len(x.Action) + len(x.OrderType) + len(x.TIF) +
		len(x.OrderRef) + len(x.Status) + 8*numberSize
}

// longNameFromIB undoes scmhub v0.10.47's text decoder at server versions 153
// to 204, which formats CONTRACT_DATA's long name as a Go byte slice
// ("[65 80 80 76 69]" for "APPLE"; see docs/adr/0012): at those versions a
// name of that shape is turned back into its bytes.
func longNameFromIB(s string, version int) string {
	if version < 153 || version >= 205 || len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return s
	}
	fields := strings.Fields(s[1 : len(s)-1])
	b := make([]byte, 0, len(fields))
	for _, f := range fields {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil {
			return s
		}
		b = append(b, byte(n))
	}
	return string(b)
}

// contractDetailsFromIB converts one CONTRACT_DATA row.
func contractDetailsFromIB(cd *ibapi.ContractDetails, version int) (broker.ContractDetails, error) {
	if cd == nil {
		return broker.ContractDetails{}, fmt.Errorf("%w: contract details without contract", broker.ErrProtocol)
	}
	c := cd.Contract
	strike, err := decimalFromFloat(c.Strike)
	if err != nil {
		return broker.ContractDetails{}, fmt.Errorf("contract %d strike: %w", c.ConID, err)
	}
	tick, err := decimalFromFloat(cd.MinTick)
	if err != nil {
		return broker.ContractDetails{}, fmt.Errorf("contract %d min tick: %w", c.ConID, err)
	}
	return broker.ContractDetails{
		Contract: broker.Contract{ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType,
			Expiry: c.LastTradeDateOrContractMonth, Strike: strike, Right: c.Right, Multiplier: c.Multiplier,
			Exchange: c.Exchange, Currency: c.Currency, LocalSymbol: c.LocalSymbol, TradingClass: c.TradingClass},
		PrimaryExchange: c.PrimaryExchange, LongName: longNameFromIB(cd.LongName, version), MinTick: tick,
		TimeZone: cd.TimeZoneID, TradingHours: cd.TradingHours, LiquidHours: cd.LiquidHours,
		ValidExchanges: cd.ValidExchanges,
	}, nil
}

// contractDetailsSize is the text size of a row, for the answer bound.
func contractDetailsSize(d broker.ContractDetails) int {
	c := d.Contract
	return len(c.Symbol) + len(c.SecType) + len(c.Expiry) + len(c.Right) + len(c.Multiplier) + len(c.Exchange) +
		len(c.Currency) + len(c.LocalSymbol) + len(c.TradingClass) + len(d.PrimaryExchange) + len(d.LongName) +
		len(d.TimeZone) + len(d.TradingHours) + len(d.LiquidHours) + len(d.ValidExchanges) + 3*numberSize
}

// setPrice records a TICK_PRICE; IB's "no price" (-1, or 0 for some ticks
// outside hours) leaves the field unset. It reports whether the tick was one
// of the quote's (a stream publishes those).
func (r *snapReq) setPrice(tt ibapi.TickType, price float64) bool {
	var dst *broker.Decimal
	switch tt {
	case ibapi.BID, ibapi.DELAYED_BID:
		dst = &r.q.Bid
	case ibapi.ASK, ibapi.DELAYED_ASK:
		dst = &r.q.Ask
	case ibapi.LAST, ibapi.DELAYED_LAST:
		dst = &r.q.Last
	case ibapi.HIGH, ibapi.DELAYED_HIGH:
		dst = &r.q.High
	case ibapi.LOW, ibapi.DELAYED_LOW:
		dst = &r.q.Low
	case ibapi.CLOSE, ibapi.DELAYED_CLOSE:
		dst = &r.q.Close
	case ibapi.OPEN, ibapi.DELAYED_OPEN:
		dst = &r.q.Open
	default:
		return false
	}
	if price == -1 {
		return true
	}
	d, err := decimalFromFloat(price)
	if err != nil {
		r.fail(fmt.Errorf("tick %d: %w", tt, err))
		return true
	}
	*dst = d
	return true
}

// setSize records a TICK_SIZE; scmhub's unset size leaves the field unset.
// It reports whether the tick was one of the quote's.
func (r *snapReq) setSize(tt ibapi.TickType, size ibapi.Decimal) bool {
	var dst *broker.Decimal
	switch tt {
	case ibapi.BID_SIZE, ibapi.DELAYED_BID_SIZE:
		dst = &r.q.BidSize
	case ibapi.ASK_SIZE, ibapi.DELAYED_ASK_SIZE:
		dst = &r.q.AskSize
	case ibapi.LAST_SIZE, ibapi.DELAYED_LAST_SIZE:
		dst = &r.q.LastSize
	case ibapi.VOLUME, ibapi.DELAYED_VOLUME:
		dst = &r.q.Volume
	default:
		return false
	}
	if size == ibapi.UNSET_DECIMAL {
		return true
	}
	d, err := decimalFromIB(size)
	if err != nil {
		r.fail(fmt.Errorf("tick %d: %w", tt, err))
		return true
	}
	*dst = d
	return true
}

// setString records LAST_TIMESTAMP (epoch seconds) and reports whether the
// tick was that.
func (r *snapReq) setString(tt ibapi.TickType, v string) bool {
	if tt != ibapi.LAST_TIMESTAMP && tt != ibapi.DELAYED_LAST_TIMESTAMP {
		return false
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.fail(fmt.Errorf("%w: last timestamp %q", broker.ErrProtocol, v))
		return true
	}
	r.q.LastTime = time.Unix(sec, 0).UTC()
	return true
}

// setHalted records a HALTED generic tick and reports whether the tick was that.
func (r *snapReq) setHalted(tt ibapi.TickType, value float64) bool {
	if tt != ibapi.HALTED && tt != ibapi.DELAYED_HALTED {
		return false
	}
	r.q.Halted = value > 0
	return true
}

func (r *snapReq) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// barFromIB converts one HISTORICAL_DATA bar. Dates are epoch seconds
// (formatDate 2) for intraday bars and "yyyymmdd" (midnight UTC) for daily ones.
func barFromIB(b *ibapi.Bar, daily bool) (broker.Bar, error) {
	if b == nil {
		return broker.Bar{}, fmt.Errorf("%w: empty bar", broker.ErrProtocol)
	}
	t, err := barTime(b.Date, daily)
	if err != nil {
		return broker.Bar{}, err
	}
	out := broker.Bar{Time: t, Count: b.BarCount}
	for _, p := range []struct {
		f   float64
		dst *broker.Decimal
	}{{b.Open, &out.Open}, {b.High, &out.High}, {b.Low, &out.Low}, {b.Close, &out.Close}} {
		if *p.dst, err = decimalFromFloat(p.f); err != nil {
			return broker.Bar{}, fmt.Errorf("bar %s: %w", b.Date, err)
		}
	}
	for _, p := range []struct {
		d   ibapi.Decimal
		dst *broker.Decimal
	}{{b.Volume, &out.Volume}, {b.Wap, &out.WAP}} {
		if p.d == ibapi.UNSET_DECIMAL {
			continue
		}
		if *p.dst, err = decimalFromIB(p.d); err != nil {
			return broker.Bar{}, fmt.Errorf("bar %s: %w", b.Date, err)
		}
	}
	return out, nil
}

// barTime reads a bar's date: "yyyymmdd" for daily or longer bars (daily),
// else epoch seconds (formatDate 2) or "yyyymmdd hh:mm:ss[ zone]". Daily is
// told by the request, not guessed: eight digits are also epoch seconds of 1970-73.
func barTime(s string, daily bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if daily && len(s) == 8 {
		if t, err := time.Parse("20060102", s); err == nil {
			return t, nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	parts := strings.Fields(s)
	if len(parts) >= 2 {
		loc := time.UTC
		if len(parts) == 3 {
			if l, err := time.LoadLocation(parts[2]); err == nil {
				loc = l
			}
		}
		if t, err := time.ParseInLocation("20060102 15:04:05", parts[0]+" "+parts[1], loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: bar date %q", broker.ErrProtocol, s)
}
