package broker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
)

var sentinels = []error{
	broker.ErrNotConnected, broker.ErrAlreadyConnected, broker.ErrTimeout, broker.ErrClientIDInUse,
	broker.ErrGatewayUnreachable, broker.ErrHandshakeFailed, broker.ErrUnavailable, broker.ErrProtocol,
	broker.ErrClosed, broker.ErrInvalidArgument, broker.ErrUnsupported, broker.ErrNotFound, broker.ErrNotSubscribed,
	broker.ErrPacing, broker.ErrReadOnly, broker.ErrRejected, broker.ErrOutcomeUnknown, context.Canceled, context.DeadlineExceeded,
}

func TestErrorCodesRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range sentinels {
		err := fmt.Errorf("positions: %w", s)
		code := broker.ErrorCode(err)
		if code == broker.CodeInternal || code == "" || seen[code] {
			t.Errorf("ErrorCode(%v) = %q: not a distinct code", s, code)
		}
		seen[code] = true
		back := broker.ErrorFromCode(code, err.Error(), 0)
		if !errors.Is(back, s) {
			t.Errorf("ErrorFromCode(%q) does not match %v", code, s)
		}
		if back.Error() != err.Error() {
			t.Errorf("message %q, want %q", back.Error(), err.Error())
		}
		for _, other := range sentinels {
			if other != s && errors.Is(back, other) {
				t.Errorf("ErrorFromCode(%q) also matches %v", code, other)
			}
		}
	}
	if len(seen)+2 != len(broker.ErrorCodes()) {
		t.Errorf("ErrorCodes() = %v; want every sentinel's code plus api_error and internal", broker.ErrorCodes())
	}
	if broker.ErrorCode(nil) != "" || broker.ErrorCode(errors.New("boom")) != broker.CodeInternal {
		t.Error("nil or plain errors coded wrongly")
	}
}

func TestAPIErrorAcrossTheWire(t *testing.T) {
	orig := fmt.Errorf("connect: %w", &broker.APIError{ReqID: -1, Code: 326, Message: "client id in use"})
	if !errors.Is(orig, broker.ErrClientIDInUse) {
		t.Fatal("326 is not ErrClientIDInUse")
	}
	code, ib := broker.ErrorCode(orig), broker.IBCode(orig)
	if code != "client_id_in_use" || ib != 326 {
		t.Fatalf("code %q ib %d", code, ib)
	}
	back := broker.ErrorFromCode(code, orig.Error(), ib)
	var api *broker.APIError
	if !errors.Is(back, broker.ErrClientIDInUse) || !errors.As(back, &api) || api.Code != 326 {
		t.Errorf("round trip lost the sentinel or the IB code: %v", back)
	}
	// A code without sentinel travels as api_error and keeps its number.
	e := &broker.APIError{ReqID: 5, Code: 399, Message: "Order Message: Warning: your order will not be placed at the exchange until 2026-12-02 09:30:00 US/Eastern"}
	if c := broker.ErrorCode(e); c != broker.CodeAPIError {
		t.Errorf("ErrorCode(399) = %q", c)
	}
	if broker.IBCode(broker.ErrorFromCode(broker.CodeAPIError, e.Message, 399)) != 399 {
		t.Error("IB code 399 lost")
	}
}

func TestMarketDataCodes(t *testing.T) {
	for _, c := range []struct {
		code int64
		msg  string
		want error
	}{
		{200, "No security definition has been found for the request", broker.ErrNotFound},
		{354, "Requested market data is not subscribed.", broker.ErrNotSubscribed},
		{10089, "Requested market data requires additional subscription for API. Delayed market data is available.", broker.ErrNotSubscribed},
		{101, "Max number of tickers has been reached.", broker.ErrPacing},
		{100, "Max rate of messages per second has been exceeded.", broker.ErrPacing},
		{162, "Historical Market Data Service error message:Historical data request pacing violation", broker.ErrPacing},
		{321, "Error validating request.-'bP' : cause - Historical data bar size setting is invalid.", broker.ErrInvalidArgument},
	} {
		err := fmt.Errorf("x: %w", &broker.APIError{ReqID: 3, Code: c.code, Message: c.msg})
		if !errors.Is(err, c.want) {
			t.Errorf("%d is not %v", c.code, c.want)
		}
		back := broker.ErrorFromCode(broker.ErrorCode(err), err.Error(), broker.IBCode(err))
		if !errors.Is(back, c.want) || broker.IBCode(back) != c.code {
			t.Errorf("%d across the wire: %v", c.code, back)
		}
	}
	// 162 is also every other historical data error: only pacing is ErrPacing.
	other := &broker.APIError{ReqID: 3, Code: 162, Message: "Historical Market Data Service error message:Time length exceed max."}
	if errors.Is(other, broker.ErrPacing) || broker.ErrorCode(other) != broker.CodeAPIError {
		t.Errorf("162 without pacing is %q", broker.ErrorCode(other))
	}
	if errors.Is(&broker.APIError{Code: 10167, Message: "Displaying delayed market data."}, broker.ErrNotSubscribed) {
		t.Error("10167 is a warning, not an error")
	}
}

func TestUnknownWireCodeIsProtocol(t *testing.T) {
	err := broker.ErrorFromCode("from_the_future", "new thing", 0)
	if !errors.Is(err, broker.ErrProtocol) {
		t.Errorf("unknown code: %v, want ErrProtocol", err)
	}
	if err := broker.ErrorFromCode(broker.CodeInternal, "boom", 0); errors.Is(err, broker.ErrProtocol) || err.Error() != "boom" {
		t.Errorf("internal: %v", err)
	}
}

func TestOps(t *testing.T) {
	orders := map[broker.Op]bool{broker.OpPlaceOrder: true, broker.OpModifyOrder: true, broker.OpCancelOrder: true}
	for _, op := range broker.Ops() {
		if op.Idempotent() == orders[op] {
			t.Errorf("%s: idempotent %v, want %v", op, op.Idempotent(), !orders[op])
		}
	}
	if broker.Op("no_such_op").Idempotent() {
		t.Error("an unknown op must never be idempotent")
	}
}

func TestConnectParams(t *testing.T) {
	p := broker.ConnectParams{}.WithDefaults()
	if p.Addr() != "127.0.0.1:4002" || p.Timeout != broker.DefaultConnectTimeout {
		t.Errorf("defaults: %+v", p)
	}
	for _, bad := range []broker.ConnectParams{{Port: 70000}, {ClientID: -1}, {Timeout: -1}} {
		if err := bad.Validate(); !errors.Is(err, broker.ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v", bad, err)
		}
	}
	if err := (broker.ConnectParams{Port: 7497, ClientID: 3}).Validate(); err != nil {
		t.Error(err)
	}
}
