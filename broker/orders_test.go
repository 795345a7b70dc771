package broker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
)

func validOrder() broker.OrderRequest {
	return broker.OrderRequest{
		Key: "k-1", Contract: broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"},
		Action: broker.ActionBuy, Quantity: broker.MustDecimal("10"), OrderType: broker.OrderLimit,
		LimitPrice: broker.MustDecimal("187.5"),
	}
}

func TestOrderRequestValidate(t *testing.T) {
	if err := validOrder().Validate(); err != nil {
		t.Fatalf("valid order: %v", err)
	}
	bad := map[string]func(*broker.OrderRequest){
		"no key":            func(r *broker.OrderRequest) { r.Key = "" },
		"long key":          func(r *broker.OrderRequest) { r.Key = strings.Repeat("k", broker.MaxOrderKey+1) },
		"space in key":      func(r *broker.OrderRequest) { r.Key = "a b" },
		"no instrument":     func(r *broker.OrderRequest) { r.Contract = broker.Contract{} },
		"action":            func(r *broker.OrderRequest) { r.Action = "BOT" },
		"zero quantity":     func(r *broker.OrderRequest) { r.Quantity = broker.Decimal{} },
		"negative quantity": func(r *broker.OrderRequest) { r.Quantity = broker.MustDecimal("-1") },
		"tif":               func(r *broker.OrderRequest) { r.TIF = "FOK" },
		"type":              func(r *broker.OrderRequest) { r.OrderType = "MOC" },
		"limit missing":     func(r *broker.OrderRequest) { r.LimitPrice = broker.Decimal{} },
		"mkt with limit":    func(r *broker.OrderRequest) { r.OrderType = broker.OrderMarket },
		"stp without aux":   func(r *broker.OrderRequest) { r.OrderType, r.LimitPrice = broker.OrderStop, broker.Decimal{} },
		"lmt with aux":      func(r *broker.OrderRequest) { r.AuxPrice = broker.MustDecimal("1") },
		"stp lmt no aux":    func(r *broker.OrderRequest) { r.OrderType = broker.OrderStopLimit },
	}
	for name, f := range bad {
		r := validOrder()
		f(&r)
		if err := r.Validate(); !errors.Is(err, broker.ErrInvalidArgument) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidArgument", name, err)
		}
	}
	ok := validOrder()
	ok.OrderType, ok.LimitPrice, ok.AuxPrice, ok.TIF = broker.OrderStopLimit, broker.MustDecimal("2"), broker.MustDecimal("1.5"), "gtc"
	if err := ok.Validate(); err != nil {
		t.Errorf("STP LMT GTC: %v", err)
	}
}

func TestOrderErrorCodes(t *testing.T) {
	for _, c := range []struct {
		code int64
		msg  string
		want error
	}{
		{201, "Order rejected - reason: margin", broker.ErrRejected},
		{110, "The price does not conform to the minimum price variation for this contract.", broker.ErrRejected},
		{10147, "OrderId 7 that needs to be cancelled is not found.", broker.ErrNotFound},
		{321, "Error validating request.-'bW' : cause - The API interface is currently in Read-Only mode.", broker.ErrReadOnly},
	} {
		err := &broker.APIError{Code: c.code, Message: c.msg}
		if !errors.Is(err, c.want) {
			t.Errorf("IB %d: not %v", c.code, c.want)
		}
		back := broker.ErrorFromCode(broker.ErrorCode(err), err.Error(), c.code)
		if !errors.Is(back, c.want) {
			t.Errorf("IB %d over the wire (%s): not %v", c.code, broker.ErrorCode(err), c.want)
		}
	}
	if errors.Is(&broker.APIError{Code: 321, Message: "Error validating request: bad"}, broker.ErrReadOnly) {
		t.Error("321 without read-only text is ErrReadOnly")
	}
}

func TestTerminalStatus(t *testing.T) {
	for s, want := range map[string]bool{"Filled": true, "Cancelled": true, "ApiCancelled": true, "Inactive": true,
		"Submitted": false, "PreSubmitted": false, "PendingCancel": false, "": false} {
		if broker.TerminalStatus(s) != want {
			t.Errorf("TerminalStatus(%q) != %v", s, want)
		}
	}
}

func TestConflateKeepsGapAndCounts(t *testing.T) {
	ch := make(chan broker.QuoteUpdate, 1)
	broker.Conflate(ch, broker.QuoteUpdate{Gap: "session lost"})
	broker.Conflate(ch, broker.QuoteUpdate{Quote: broker.Quote{Bid: broker.MustDecimal("1")}})
	broker.Conflate(ch, broker.QuoteUpdate{Quote: broker.Quote{Bid: broker.MustDecimal("2")}})
	got := <-ch
	if got.Gap != "session lost" || got.Dropped != 2 || got.Quote.Bid.String() != "2" {
		t.Fatalf("got %+v, want gap kept, 2 dropped, bid 2", got)
	}
	select {
	case u := <-ch:
		t.Fatalf("a second value: %+v", u)
	default:
	}
}
