package stdiojson

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// ProtocolVersion is the version of the line protocol this package speaks. It
// changes only when a change would break an existing client; adding commands,
// fields, error codes or event kinds does not change it (see PROTOCOL.md).
const ProtocolVersion = 1

// DefaultMaxLineBytes is the default bound on one line, in either direction. It is
// far above the size of a get_positions answer with 10 000 positions (about 3 MB).
const DefaultMaxLineBytes = 64 << 20

// Commands that belong to the transport rather than to the Broker port. The
// port's commands are the string values of the broker.Op constants.
const (
	CommandHello  = "hello"  // negotiate the protocol version and opt in to events
	CommandCancel = "cancel" // abandon the request whose id is "target"
)

// Response statuses.
const (
	statusSuccess = "success"
	statusError   = "error"
)

// errLineTooLong reports a line longer than the configured limit; the line has
// been consumed entirely.
var errLineTooLong = errors.New("line too long")

// wireRequest is every field any request may carry; unknown fields are ignored.
type wireRequest struct {
	ID       json.RawMessage `json:"id,omitempty"`
	Command  string          `json:"command"`
	Host     string          `json:"host,omitempty"`
	Port     int             `json:"port,omitempty"`
	ClientID int64           `json:"client_id,omitempty"`
	ReadOnly bool            `json:"readonly,omitempty"`
	Timeout  float64         `json:"timeout,omitempty"` // seconds
	Tags     []string        `json:"tags,omitempty"`
	Protocol int             `json:"protocol,omitempty"`
	Events   bool            `json:"events,omitempty"`
	Target   json.RawMessage `json:"target,omitempty"`
	// market data (ops.go)
	Contract       *wireContract    `json:"contract,omitempty"`
	Bars           *wireBarsRequest `json:"bars,omitempty"`
	MarketDataType string           `json:"market_data_type,omitempty"` // live, frozen, delayed, delayed-frozen
	Account        string           `json:"account,omitempty"`          // get_account_updates
	// Filter of get_executions; absent matches every execution.
	Filter *broker.ExecutionFilter `json:"filter,omitempty"`
	// Subscription names a stream (subscribe_account_updates, unsubscribe; stream.go).
	Subscription string `json:"subscription,omitempty"`
	// Orders (ops_orders.go): the order of place_order and modify_order, the
	// id of modify_order and cancel_order.
	Order   *broker.OrderRequest `json:"order,omitempty"`
	OrderID int64                `json:"order_id,omitempty"`
}

// wireResponse is the answer to one request.
type wireResponse struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Status string          `json:"status"`
	Data   any             `json:"data,omitempty"`
	Code   string          `json:"code,omitempty"`
	Error  string          `json:"error,omitempty"`
	IBCode int64           `json:"ib_code,omitempty"`
}

// wireEvent is an unsolicited line; it has "event" where responses have "id".
type wireEvent struct {
	Event   broker.EventKind `json:"event"`
	Time    time.Time        `json:"time"`
	IBCode  int64            `json:"ib_code,omitempty"`
	Message string           `json:"message"`
}

// wireInbound is what the host reads: a response or an event.
type wireInbound struct {
	ID      json.RawMessage `json:"id"`
	Event   string          `json:"event"`
	Status  string          `json:"status"`
	Data    json.RawMessage `json:"data"`
	Code    string          `json:"code"`
	Error   string          `json:"error"`
	IBCode  int64           `json:"ib_code"`
	Time    time.Time       `json:"time"`
	Message string          `json:"message"`

	Subscription string          `json:"subscription"` // a stream's event (stream.go)
	Update       json.RawMessage `json:"update"`
	Quote        json.RawMessage `json:"quote"` // a quote stream's (stream_quotes.go)
	Gap          string          `json:"gap"`
	Dropped      int64           `json:"dropped"`

	fast bool // Data was cut out by fastSuccess, not decoded
}

// Data shapes of the protocol's own commands (those of the port: ops.go).
type (
	helloData struct {
		Protocol int      `json:"protocol"`
		PID      int      `json:"pid"`
		Events   bool     `json:"events"`
		Commands []string `json:"commands"`
	}
	cancelData struct {
		Canceled bool `json:"canceled"`
	}
)

type wireContract struct {
	ConID        int64  `json:"con_id"`
	Symbol       string `json:"symbol"`
	SecType      string `json:"sec_type"`
	Expiry       string `json:"expiry"`
	Strike       string `json:"strike"` // decimal text
	Right        string `json:"right"`
	Multiplier   string `json:"multiplier"`
	Exchange     string `json:"exchange"`
	Currency     string `json:"currency"`
	LocalSymbol  string `json:"local_symbol"`
	TradingClass string `json:"trading_class"`
}

type wirePosition struct {
	Account  string       `json:"account"`
	Contract wireContract `json:"contract"`
	Quantity string       `json:"quantity"` // decimal text
	AvgCost  string       `json:"avg_cost"` // decimal text
}

type wireSummaryValue struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

type wireSummary struct {
	Account string                      `json:"account"`
	Values  map[string]wireSummaryValue `json:"values"`
}

func toWirePositions(ps []broker.Position) []wirePosition {
	out := make([]wirePosition, len(ps))
	for i, p := range ps {
		c := p.Contract
		out[i] = wirePosition{
			Account: p.Account,
			Contract: wireContract{
				ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry, Strike: c.Strike.String(),
				Right: c.Right, Multiplier: c.Multiplier, Exchange: c.Exchange, Currency: c.Currency,
				LocalSymbol: c.LocalSymbol, TradingClass: c.TradingClass,
			},
			Quantity: p.Quantity.String(),
			AvgCost:  p.AvgCost.String(),
		}
	}
	return out
}

// fromWirePositions converts decoded positions; decimals are parsed exactly,
// and text that is not a decimal is a protocol error.
func fromWirePositions(ws []wirePosition) ([]broker.Position, error) {
	out := make([]broker.Position, len(ws))
	for i, w := range ws {
		c := w.Contract
		var errs [3]error
		out[i] = broker.Position{
			Account: w.Account,
			Contract: broker.Contract{
				ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry,
				Right: c.Right, Multiplier: c.Multiplier, Exchange: c.Exchange, Currency: c.Currency,
				LocalSymbol: c.LocalSymbol, TradingClass: c.TradingClass,
			},
		}
		out[i].Contract.Strike, errs[0] = parseWireDecimal(c.Strike)
		out[i].Quantity, errs[1] = parseWireDecimal(w.Quantity)
		out[i].AvgCost, errs[2] = parseWireDecimal(w.AvgCost)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("%w: position %d: %v", broker.ErrProtocol, i, err)
		}
	}
	return out, nil
}

// parseWireDecimal parses decimal text; "" (an absent field) is 0.
func parseWireDecimal(s string) (broker.Decimal, error) {
	if s == "" {
		return broker.Decimal{}, nil
	}
	return broker.ParseDecimal(s)
}

func toWireSummaries(ss []broker.AccountSummary) []wireSummary {
	out := make([]wireSummary, len(ss))
	for i, s := range ss {
		vals := make(map[string]wireSummaryValue, len(s.Values))
		for k, v := range s.Values {
			vals[k] = wireSummaryValue{Value: v.Value, Currency: v.Currency}
		}
		out[i] = wireSummary{Account: s.Account, Values: vals}
	}
	return out
}

func fromWireSummaries(ws []wireSummary) []broker.AccountSummary {
	out := make([]broker.AccountSummary, len(ws))
	for i, w := range ws {
		vals := make(map[string]broker.SummaryValue, len(w.Values))
		for k, v := range w.Values {
			vals[k] = broker.SummaryValue{Value: v.Value, Currency: v.Currency}
		}
		out[i] = broker.AccountSummary{Account: w.Account, Values: vals}
	}
	return out
}

// nonNil makes a nil slice marshal as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// secondsToDuration converts a wire timeout, clamping what a Duration cannot hold.
func secondsToDuration(s float64) time.Duration {
	switch {
	case s <= 0:
		if s < 0 {
			return -1 // let ConnectParams.Validate reject it
		}
		return 0
	case s >= math.MaxInt64/float64(time.Second):
		return math.MaxInt64
	}
	return time.Duration(s * float64(time.Second))
}
