package ibkr

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
)

// Orders (broker.OrderTrader, docs/adr/0016). The session keeps one track per
// order id it placed or heard of; PlaceOrder, ModifyOrder and CancelOrder
// register a wait on the track before sending and the callbacks release it:
// OPEN_ORDER or ORDER_STATUS for the id is the acknowledgement, an ERR_MSG
// naming the id the refusal. Order ids are allocated by the Adapter
// (allocOrderID): never below the session's NEXT_VALID_ID nor at or below any
// id it used before, in this session or an earlier one, and sent in the order
// they were allocated (under s.reqMu), as TWS requires.

var (
	_ broker.OrderTrader   = (*Adapter)(nil)
	_ broker.OrderStreamer = (*Adapter)(nil)
)

// orderBook is a session's order state. Guarded by s.mu.
type orderBook struct {
	readOnly  bool
	nextID    int64           // the latest NEXT_VALID_ID
	idWaiters []chan struct{} // REQ_IDS calls waiting for NEXT_VALID_ID
	byID      map[int64]*orderTrack
	byKey     map[string]*orderTrack // this session's placements by key
	subs      map[*orderSub]struct{}
	fills     map[string]fillRef // unprompted fills awaiting their COMMISSION_REPORT
	fillOrder []string           // fills' exec ids, oldest first (the map's bound)
}

// maxPendingFills bounds the fills kept for their commission report.
const maxPendingFills = 4096

// orderTrack is one order of the session.
type orderTrack struct {
	id     int64
	key    string
	req    broker.OrderRequest // the terms first placed (a PlaceOrder with the same key compares them)
	order  broker.Order        // the latest state the gateway reported
	ack    chan struct{}       // closed at the placement's acknowledgement or refusal
	ackErr error               // the refusal
	mod    *orderWait          // a ModifyOrder awaiting its acknowledgement
	cancel *orderWait          // a CancelOrder awaiting the order's end
	// what the last status event reported
	sentStatus string
	sentFilled broker.Decimal
}

// orderWait is one ModifyOrder or CancelOrder in flight.
type orderWait struct {
	done chan struct{}
	err  error
	want *broker.OrderRequest // a modification: the terms an OPEN_ORDER acknowledging it shows
}

func newWait() *orderWait { return &orderWait{done: make(chan struct{})} }

func (w *orderWait) finish(err error) {
	if w != nil && !isClosed(w.done) {
		w.err = err
		close(w.done)
	}
}

func (b *orderBook) init() {
	if b.byID == nil {
		b.byID = map[int64]*orderTrack{}
		b.byKey = map[string]*orderTrack{}
		b.subs = map[*orderSub]struct{}{}
		b.fills = map[string]fillRef{}
	}
}

// allocOrderID returns a fresh order id: max(next, the last id allocated + 1).
func (a *Adapter) allocOrderID(next int64) int64 {
	for {
		last := a.lastOrderID.Load()
		id := max(next, last+1)
		if a.lastOrderID.CompareAndSwap(last, id) {
			return id
		}
	}
}

// orderSession returns the live session for an order operation, refusing it
// locally in a read-only session.
func (a *Adapter) orderSession(ctx context.Context, what string) (*session, error) {
	s, err := a.live()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	ro := s.ord.readOnly
	s.mu.Unlock()
	if ro {
		return nil, fmt.Errorf("ibkr: %s: the session was connected read-only: %w", what, broker.ErrReadOnly)
	}
	return s, nil
}

// outcomeUnknown is the error of an order request sent whose answer is lost:
// it matches broker.ErrOutcomeUnknown and, when the caller's context ended,
// ctx.Err() too; a lost session is named but not wrapped (its
// broker.ErrNotConnected would suggest nothing was sent).
func outcomeUnknown(ctx context.Context, what string, lost error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ibkr: %s: %w before the gateway answered: %w", what, err, broker.ErrOutcomeUnknown)
	}
	return fmt.Errorf("ibkr: %s: session lost before the gateway answered (%v): %w", what, lost, broker.ErrOutcomeUnknown)
}

// PlaceOrder implements broker.OrderTrader. The order goes out as PLACE_ORDER
// under a fresh id with r.Key as its orderRef. Within one session a key makes
// one order: a PlaceOrder with a key already placed (or being placed) sends
// nothing and returns that order with Existing set, or fails with
// broker.ErrInvalidArgument if its terms differ; a key whose placement the
// gateway refused may be placed again. If the gateway refuses the id as a
// duplicate (IB 103: another client of the same id used it), the adapter asks
// REQ_IDS and places it once more under a fresh id.
func (a *Adapter) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := r.Validate(); err != nil {
		return broker.PlacedOrder{}, err
	}
	r.TIF = strings.ToUpper(r.TIF)
	if _, _, err := scmhubOrder(r); err != nil {
		return broker.PlacedOrder{}, err
	}
	s, err := a.orderSession(ctx, "place order")
	if err != nil {
		return broker.PlacedOrder{}, err
	}
	for attempt := 0; ; attempt++ {
		tr, existing, err := s.claimKey(r)
		if err != nil {
			return broker.PlacedOrder{}, err
		}
		var p broker.PlacedOrder
		if existing {
			p, err = s.awaitPlaced(ctx, tr, true)
		} else {
			p, err = a.sendPlace(ctx, s, tr, r)
		}
		var apiErr *broker.APIError
		if attempt < 2 && errors.As(err, &apiErr) && apiErr.Code == broker.IBCodeDuplicateOrderID {
			if !existing {
				if err := s.requestIDs(ctx); err != nil {
					return broker.PlacedOrder{}, fmt.Errorf("ibkr: place order %s: id %d refused as a duplicate and no fresh id: %w", r.Key, apiErr.ReqID, err)
				}
			}
			continue
		}
		return p, err
	}
}

// claimKey returns the track of r.Key: a new one (to send) or the one
// already placed under that key (existing).
func (s *session) claimKey(r broker.OrderRequest) (*orderTrack, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deadErr != nil {
		return nil, false, s.deadErr
	}
	s.ord.init()
	if tr, ok := s.ord.byKey[r.Key]; ok {
		if tr.req != r {
			return nil, false, fmt.Errorf("%w: order key %s was placed with other terms (order %d)", broker.ErrInvalidArgument, r.Key, tr.id)
		}
		return tr, true, nil
	}
	tr := &orderTrack{key: r.Key, req: r, ack: make(chan struct{})}
	s.ord.byKey[r.Key] = tr
	return tr, false, nil
}

// forgetLocked drops tr: its order does not exist (never sent, or refused).
func (s *session) forgetLocked(tr *orderTrack) {
	if s.ord.byKey[tr.key] == tr {
		delete(s.ord.byKey, tr.key)
	}
	if tr.id != 0 && s.ord.byID[tr.id] == tr {
		delete(s.ord.byID, tr.id)
	}
}

// refuseLocked ends tr's placement with err (nothing was placed).
func (s *session) refuseLocked(tr *orderTrack, err error) {
	s.forgetLocked(tr)
	if !isClosed(tr.ack) {
		tr.ackErr = err
		close(tr.ack)
	}
}

// sendPlace sends tr's PLACE_ORDER under a fresh id and waits for its answer.
func (a *Adapter) sendPlace(ctx context.Context, s *session, tr *orderTrack, r broker.OrderRequest) (broker.PlacedOrder, error) {
	what := "place order " + r.Key
	if err := a.pace.wait(ctx, 1); err != nil {
		s.mu.Lock()
		s.refuseLocked(tr, err)
		s.mu.Unlock()
		return broker.PlacedOrder{}, fmt.Errorf("ibkr: %s: %w", what, err)
	}
	s.reqMu.Lock()
	s.mu.Lock()
	if s.deadErr != nil || ctx.Err() != nil {
		err := s.deadErr
		if err == nil {
			err = fmt.Errorf("ibkr: %s: %w", what, ctx.Err())
		}
		s.refuseLocked(tr, err)
		s.mu.Unlock()
		s.reqMu.Unlock()
		return broker.PlacedOrder{}, err
	}
	version, next := s.serverVersion, s.ord.nextID
	s.mu.Unlock()
	id := a.allocOrderID(next)
	frame, err := placeOrderFrame(version, id, r)
	s.mu.Lock()
	if err != nil {
		s.refuseLocked(tr, err)
		s.mu.Unlock()
		s.reqMu.Unlock()
		return broker.PlacedOrder{}, err
	}
	tr.id = id
	s.ord.byID[id] = tr
	s.mu.Unlock()
	err = s.send(request{id: ibapi.PLACE_ORDER, raw: frame, paced: true})
	s.reqMu.Unlock()
	if err != nil { // the frame may have gone out in part or whole
		return broker.PlacedOrder{}, fmt.Errorf("ibkr: %s (order %d): write failed (%v): %w", what, id, err, broker.ErrOutcomeUnknown)
	}
	a.log.Debug("order sent", "order_id", id, "key", r.Key)
	return s.awaitPlaced(ctx, tr, false)
}

// awaitPlaced waits for tr's acknowledgement or refusal.
func (s *session) awaitPlaced(ctx context.Context, tr *orderTrack, existing bool) (broker.PlacedOrder, error) {
	select {
	case <-tr.ack:
	case <-ctx.Done():
	case <-s.dead:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !isClosed(tr.ack) {
		return broker.PlacedOrder{}, outcomeUnknown(ctx, fmt.Sprintf("place order %s (order %d)", tr.key, tr.id), s.deadErr)
	}
	if tr.ackErr != nil {
		return broker.PlacedOrder{}, tr.ackErr
	}
	return placedOf(tr, existing), nil
}

func placedOf(tr *orderTrack, existing bool) broker.PlacedOrder {
	return broker.PlacedOrder{OrderID: tr.id, PermID: tr.order.PermID, Key: tr.key, Status: tr.order.Status, Existing: existing}
}

// requestIDs asks REQ_IDS and waits for the NEXT_VALID_ID it brings.
func (s *session) requestIDs(ctx context.Context) error {
	s.mu.Lock()
	if s.deadErr != nil {
		defer s.mu.Unlock()
		return s.deadErr
	}
	version := s.serverVersion
	w := make(chan struct{})
	s.ord.idWaiters = append(s.ord.idWaiters, w)
	s.mu.Unlock()
	frame, err := reqIDsFrame(version)
	if err != nil {
		return err
	}
	if err := s.sendLocked(encoded(ibapi.REQ_IDS, frame)); err != nil {
		return err
	}
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.dead:
		return s.deadError()
	}
}

// ModifyOrder implements broker.OrderTrader: PLACE_ORDER again under the same
// id with the new terms. The order must be open and this client's: known to
// the session, or found by REQ_OPEN_ORDERS (an order placed in an earlier
// session); else broker.ErrNotFound, since a PLACE_ORDER with an id the
// gateway does not know would place a new order. An order keeps its key:
// r.Key must be the order's (broker.ErrInvalidArgument otherwise).
func (a *Adapter) ModifyOrder(ctx context.Context, orderID int64, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := r.Validate(); err != nil {
		return broker.PlacedOrder{}, err
	}
	r.TIF = strings.ToUpper(r.TIF)
	if _, _, err := scmhubOrder(r); err != nil {
		return broker.PlacedOrder{}, err
	}
	s, err := a.orderSession(ctx, "modify order")
	if err != nil {
		return broker.PlacedOrder{}, err
	}
	what := fmt.Sprintf("modify order %d", orderID)
	tr, err := a.openTrack(ctx, s, orderID)
	if err != nil {
		return broker.PlacedOrder{}, fmt.Errorf("ibkr: %s: %w", what, err)
	}
	if _, err := s.awaitPlaced(ctx, tr, false); err != nil {
		return broker.PlacedOrder{}, err
	}
	if err := a.pace.wait(ctx, 1); err != nil {
		return broker.PlacedOrder{}, fmt.Errorf("ibkr: %s: %w", what, err)
	}
	s.reqMu.Lock()
	s.mu.Lock()
	switch {
	case s.deadErr != nil:
		defer s.reqMu.Unlock()
		defer s.mu.Unlock()
		return broker.PlacedOrder{}, s.deadErr
	case tr.key != "" && tr.key != r.Key:
		defer s.reqMu.Unlock()
		defer s.mu.Unlock()
		return broker.PlacedOrder{}, fmt.Errorf("%w: order %d has key %s, not %s: an order keeps its key", broker.ErrInvalidArgument, orderID, tr.key, r.Key)
	case tr.mod != nil:
		defer s.reqMu.Unlock()
		defer s.mu.Unlock()
		return broker.PlacedOrder{}, fmt.Errorf("%w: order %d: another modification is in flight", broker.ErrInvalidArgument, orderID)
	case broker.TerminalStatus(tr.order.Status):
		defer s.reqMu.Unlock()
		defer s.mu.Unlock()
		return broker.PlacedOrder{}, fmt.Errorf("ibkr: %s: the order is %s: %w", what, tr.order.Status, broker.ErrNotFound)
	}
	version := s.serverVersion
	s.mu.Unlock()
	frame, err := placeOrderFrame(version, orderID, r)
	if err != nil {
		s.reqMu.Unlock()
		return broker.PlacedOrder{}, err
	}
	w := newWait()
	w.want = &r
	s.mu.Lock()
	tr.mod = w
	s.mu.Unlock()
	err = s.send(request{id: ibapi.PLACE_ORDER, raw: frame, paced: true})
	s.reqMu.Unlock()
	if err != nil {
		return broker.PlacedOrder{}, fmt.Errorf("ibkr: %s: write failed (%v): %w", what, err, broker.ErrOutcomeUnknown)
	}
	err = s.awaitWait(ctx, tr, w, what, func(t *orderTrack) **orderWait { return &t.mod })
	if err != nil {
		return broker.PlacedOrder{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return placedOf(tr, false), nil
}

// openTrack returns the session's track of an open order of this client,
// looking it up with REQ_OPEN_ORDERS if the session has not seen it.
func (a *Adapter) openTrack(ctx context.Context, s *session, id int64) (*orderTrack, error) {
	s.mu.Lock()
	s.ord.init()
	tr := s.ord.byID[id]
	s.mu.Unlock()
	if tr != nil {
		return tr, nil
	}
	open, err := a.OpenOrders(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range open {
		if o.OrderID == id {
			s.mu.Lock()
			defer s.mu.Unlock()
			if tr := s.ord.byID[id]; tr != nil {
				return tr, nil
			}
			return s.trackLocked(id, o.OrderRef), nil
		}
	}
	return nil, fmt.Errorf("no open order %d of this client: %w", id, broker.ErrNotFound)
}

// trackLocked returns the track of id, creating an acknowledged one (an order
// this session did not place) if there is none.
func (s *session) trackLocked(id int64, key string) *orderTrack {
	s.ord.init()
	if tr := s.ord.byID[id]; tr != nil {
		return tr
	}
	tr := &orderTrack{id: id, key: key, ack: make(chan struct{})}
	close(tr.ack)
	s.ord.byID[id] = tr
	return tr
}

// awaitWait waits for w, the modification or cancel registered in the slot
// of tr that slot names, and clears the slot.
func (s *session) awaitWait(ctx context.Context, tr *orderTrack, w *orderWait, what string, slot func(*orderTrack) **orderWait) error {
	select {
	case <-w.done:
	case <-ctx.Done():
	case <-s.dead:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := slot(tr); *p == w {
		*p = nil
	}
	if !isClosed(w.done) {
		return outcomeUnknown(ctx, what, s.deadErr)
	}
	if w.err != nil {
		return fmt.Errorf("ibkr: %s: %w", what, w.err)
	}
	return nil
}

// CancelOrder implements broker.OrderTrader with CANCEL_ORDER. It returns
// once the order is reported in a final state (or the gateway says it is
// already final: IB 10148); IB 10147 (no such order) is broker.ErrNotFound.
// Concurrent cancels of one order share one request.
func (a *Adapter) CancelOrder(ctx context.Context, orderID int64) error {
	s, err := a.orderSession(ctx, "cancel order")
	if err != nil {
		return err
	}
	what := fmt.Sprintf("cancel order %d", orderID)
	if orderID <= 0 {
		return fmt.Errorf("%w: %s: order ids are positive", broker.ErrInvalidArgument, what)
	}
	if err := a.pace.wait(ctx, 1); err != nil {
		return fmt.Errorf("ibkr: %s: %w", what, err)
	}
	s.reqMu.Lock()
	s.mu.Lock()
	if s.deadErr != nil {
		defer s.reqMu.Unlock()
		defer s.mu.Unlock()
		return s.deadErr
	}
	tr := s.ord.byID[orderID]
	bare := tr == nil
	if bare {
		tr = s.trackLocked(orderID, "")
	}
	if w := tr.cancel; w != nil { // join the cancel in flight
		s.mu.Unlock()
		s.reqMu.Unlock()
		return s.awaitWait(ctx, tr, w, what, func(t *orderTrack) **orderWait { return &t.cancel })
	}
	version := s.serverVersion
	w := newWait()
	tr.cancel = w
	s.mu.Unlock()
	frame, err := cancelOrderFrame(version, orderID)
	if err == nil {
		err = s.send(request{id: ibapi.CANCEL_ORDER, raw: frame, paced: true})
		if err != nil {
			err = fmt.Errorf("ibkr: %s: write failed (%v): %w", what, err, broker.ErrOutcomeUnknown)
		}
	}
	s.reqMu.Unlock()
	if err != nil {
		s.mu.Lock()
		tr.cancel = nil
		s.mu.Unlock()
		return err
	}
	err = s.awaitWait(ctx, tr, w, what, func(t *orderTrack) **orderWait { return &t.cancel })
	if bare && errors.Is(err, broker.ErrNotFound) {
		s.mu.Lock()
		if s.ord.byID[orderID] == tr && tr.order.Status == "" {
			delete(s.ord.byID, orderID)
		}
		s.mu.Unlock()
	}
	return err
}

// Codes the gateway sends about an order that do not refuse anything.
func orderWarning(code int64) bool {
	switch {
	case code == 399, // order message: a warning (held until the market opens, ...)
		code == broker.IBCodeDisplayingDelayed,
		code >= 2100 && code < 2200: // warnings
		return true
	}
	return false
}

// IB codes about cancels.
const (
	ibCodeOrderCancelled = 202   // "Order Canceled - reason:", after the Cancelled status
	ibCodeCannotCancel   = 10148 // the order is already final
	ibCodeNotCancellable = 161   // "Cancel attempted when order is not in a cancellable state"
)

// orderErrorLocked routes an ERR_MSG naming an order with a request in
// flight, and reports whether it did.
func (s *session) orderErrorLocked(apiErr *broker.APIError) bool {
	tr := s.ord.byID[apiErr.ReqID]
	if tr == nil || orderWarning(apiErr.Code) {
		return false
	}
	code := apiErr.Code
	if tr.cancel != nil {
		switch code {
		case ibCodeOrderCancelled, ibCodeCannotCancel:
			tr.cancel.finish(nil)
			return true
		case broker.IBCodeOrderNotFound, ibCodeNotCancellable:
			tr.cancel.finish(apiErr)
			return true
		}
	}
	if code == ibCodeOrderCancelled {
		return false // a cancel from elsewhere: a notice
	}
	if !isClosed(tr.ack) {
		s.refuseLocked(tr, fmt.Errorf("ibkr: place order %s (order %d): %w", tr.key, tr.id, apiErr))
		return true
	}
	if tr.mod != nil {
		tr.mod.finish(apiErr)
		return true
	}
	if tr.cancel != nil {
		tr.cancel.finish(apiErr)
		return true
	}
	return false
}

// orderUpdateLocked applies an OPEN_ORDER (o non-nil) or ORDER_STATUS for id:
// it acknowledges what waits on the order and reports a status change.
func (s *session) orderUpdateLocked(id int64, o *broker.Order, status string, filled *broker.Decimal, permID int64) {
	if id <= 0 {
		return
	}
	key := ""
	if o != nil {
		key = o.OrderRef
	}
	tr := s.trackLocked(id, key)
	if o != nil {
		prev := tr.order
		tr.order = *o
		if tr.order.Status == "" {
			tr.order.Status = prev.Status
		}
		if filled == nil && tr.order.Filled.IsZero() {
			tr.order.Filled = prev.Filled
		}
	}
	if status != "" {
		tr.order.Status = status
	}
	if filled != nil {
		tr.order.Filled = *filled
	}
	if permID != 0 {
		tr.order.PermID = permID
	}
	if tr.order.OrderID == 0 {
		tr.order.OrderID = id
	}
	if tr.key == "" {
		tr.key = tr.order.OrderRef
	}
	if tr.order.OrderRef == "" {
		tr.order.OrderRef = tr.key
	}
	if !isClosed(tr.ack) {
		close(tr.ack)
	}
	if o != nil && tr.mod != nil && showsTerms(*o, *tr.mod.want) {
		tr.mod.finish(nil)
	}
	if broker.TerminalStatus(tr.order.Status) {
		tr.cancel.finish(nil)
	}
	if tr.order.Status != "" && (tr.order.Status != tr.sentStatus || !tr.order.Filled.Equal(tr.sentFilled)) {
		tr.sentStatus, tr.sentFilled = tr.order.Status, tr.order.Filled
		s.publishOrderLocked(broker.OrderEvent{Kind: broker.OrderEventStatus, Order: tr.order})
	}
}

// showsTerms reports whether an OPEN_ORDER row shows r's terms: the
// acknowledgement of a modification (an ORDER_STATUS, or an OPEN_ORDER still
// showing the old terms, may have been sent before the gateway read it).
func showsTerms(o broker.Order, r broker.OrderRequest) bool {
	return o.TotalQuantity.Equal(r.Quantity) && o.LimitPrice.Equal(r.LimitPrice) && o.AuxPrice.Equal(r.AuxPrice) &&
		strings.EqualFold(o.OrderType, r.OrderType)
}
