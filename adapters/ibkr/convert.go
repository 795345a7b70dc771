package ibkr

import (
	"fmt"
	"math"
	"strconv"

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
