package ibkr

import (
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
)

// The order requests' frames. PLACE_ORDER has about 150 fields, most of them
// conditional on the server version, and a protobuf form from 203 built by
// scmhub's unexported createPlaceOrderRequestProto; re-implementing it would
// be a second encoder to keep in step with scmhub's. The adapter instead asks
// scmhub itself for the frame: it runs the request method (PlaceOrder,
// CancelOrder, ReqIDs) on an offline EClient, one that never had a socket,
// set to the session's server version, and takes the frame the method queued
// for its writer goroutine (never started). The offline client is private to
// the call, so nothing races. Three unexported fields are set and one read by
// reflection, as socket.go does for the socket; each lookup checks the
// field's type, so a layout change in a later scmhub fails every order with
// broker.ErrUnsupported (and TestOfflineClientLayout) rather than corrupting
// memory.

// offlineWrapper records the first error scmhub reports while encoding (it
// refuses, through EWrapper.Error, parameters the server version lacks).
type offlineWrapper struct {
	ibapi.Wrapper
	mu  sync.Mutex
	err *broker.APIError
}

// Error records the encoding error.
func (w *offlineWrapper) Error(reqID, _ int64, code int64, msg, _ string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = &broker.APIError{ReqID: reqID, Code: code, Message: msg}
	}
}

// scmhubFrame returns the frame call makes scmhub queue at server version v,
// or why it made none.
func scmhubFrame(v int, call func(*ibapi.EClient)) ([]byte, error) {
	w := &offlineWrapper{}
	ec := ibapi.NewEClient(w)
	reqs, ok := offlineClient(ec, v)
	if !ok {
		return nil, fmt.Errorf("ibkr: this scmhub/ibapi version's client cannot encode orders offline: %w", broker.ErrUnsupported)
	}
	if err := guard(func() { call(ec) }); err != nil {
		return nil, fmt.Errorf("ibkr: encode request: %w", err)
	}
	select {
	case b := <-reqs:
		if b != nil {
			return b, nil
		}
	default:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, fmt.Errorf("ibkr: scmhub cannot encode the request at server version %d: %w: %w", v, broker.ErrUnsupported, w.err)
	}
	return nil, fmt.Errorf("ibkr: scmhub encoded no request at server version %d: %w", v, broker.ErrUnsupported)
}

// offlineClient makes ec, fresh from NewEClient, look connected at server
// version v and returns the channel its request methods queue frames on.
func offlineClient(ec *ibapi.EClient, v int) (<-chan []byte, bool) {
	e := reflect.ValueOf(ec).Elem()
	version := e.FieldByName("serverVersion")
	state := e.FieldByName("connState")
	reqs := e.FieldByName("reqChan")
	conn := connectionOf(ec)
	if !version.IsValid() || version.Type() != reflect.TypeFor[ibapi.Version]() ||
		!state.IsValid() || state.Type() != reflect.TypeFor[int32]() ||
		!reqs.IsValid() || reqs.Type() != reflect.TypeFor[chan []byte]() || conn == nil {
		return nil, false
	}
	connected := reflect.ValueOf(conn).Elem().FieldByName("isConnected")
	if !connected.IsValid() || connected.Type() != reflect.TypeFor[int32]() {
		return nil, false
	}
	*(*ibapi.Version)(unsafe.Pointer(version.UnsafeAddr())) = v
	atomic.StoreInt32((*int32)(unsafe.Pointer(state.UnsafeAddr())), int32(ibapi.CONNECTED))
	atomic.StoreInt32((*int32)(unsafe.Pointer(connected.UnsafeAddr())), 1)
	return *(*chan []byte)(unsafe.Pointer(reqs.UnsafeAddr())), true
}

// encoded is a request whose frame is already built (by scmhubFrame).
func encoded(id ibapi.OUT, frame []byte) request {
	return request{id: id, raw: frame}
}

// placeOrderFrame is PLACE_ORDER for order id with r's terms at version v.
func placeOrderFrame(v int, id int64, r broker.OrderRequest) ([]byte, error) {
	c, o, err := scmhubOrder(r)
	if err != nil {
		return nil, err
	}
	return scmhubFrame(v, func(ec *ibapi.EClient) { ec.PlaceOrder(id, c, o) })
}

// cancelOrderFrame is CANCEL_ORDER for order id at version v.
func cancelOrderFrame(v int, id int64) ([]byte, error) {
	return scmhubFrame(v, func(ec *ibapi.EClient) { ec.CancelOrder(id, ibapi.NewOrderCancel()) })
}

// reqIDsFrame is REQ_IDS at version v.
func reqIDsFrame(v int) ([]byte, error) {
	return scmhubFrame(v, func(ec *ibapi.EClient) { ec.ReqIDs(1) })
}

// scmhubOrder is r as scmhub's contract and order. Quantities and prices must
// survive the conversion exactly (scmhub carries quantities with 7 fractional
// digits and prices as float64), else the request is refused with
// broker.ErrInvalidArgument rather than sent rounded.
func scmhubOrder(r broker.OrderRequest) (*ibapi.Contract, *ibapi.Order, error) {
	if err := checkContract(r.Contract); err != nil {
		return nil, nil, err
	}
	o := ibapi.NewOrder()
	o.Action, o.OrderType, o.TIF, o.Account, o.OrderRef = r.Action, r.OrderType, r.TIF, r.Account, r.Key
	o.OutsideRTH, o.Transmit = r.OutsideRTH, !r.Hold
	q, err := ibapi.StringToDecimalErr(r.Quantity.String())
	if err != nil || ibapi.DecimalToString(q) != r.Quantity.String() {
		return nil, nil, fmt.Errorf("%w: order %s: quantity %s has more precision than the TWS API carries", broker.ErrInvalidArgument, r.Key, r.Quantity)
	}
	o.TotalQuantity = q
	for _, p := range []struct {
		d   broker.Decimal
		dst *float64
	}{{r.LimitPrice, &o.LmtPrice}, {r.AuxPrice, &o.AuxPrice}} {
		if p.d.IsZero() {
			continue
		}
		f := p.d.Float64()
		if back, err := broker.ParseDecimal(strconv.FormatFloat(f, 'f', -1, 64)); err != nil || !back.Equal(p.d) {
			return nil, nil, fmt.Errorf("%w: order %s: price %s is not exact as a double", broker.ErrInvalidArgument, r.Key, p.d)
		}
		*p.dst = f
	}
	for _, f := range []string{r.Account, r.TIF} {
		if !printable(f) {
			return nil, nil, fmt.Errorf("%w: order %s: field %q", broker.ErrInvalidArgument, r.Key, f)
		}
	}
	return scmhubContract(r.Contract), o, nil
}

// printable reports whether s holds printable ASCII only.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}
