package ibkr

import (
	"context"
	"errors"
	"fmt"

	"github.com/brokerkit/brokerkit/broker"
)

// Lists without a request id: REQ_ACCT_DATA (rows, then ACCT_DOWNLOAD_END
// naming the account), REQ_OPEN_ORDERS (OPEN_ORDER rows, then OPEN_ORDER_END)
// and REQ_COMPLETED_ORDERS (COMPLETED_ORDER rows, then COMPLETED_ORDERS_END).
// Their answers cannot be told apart from another request of the same kind,
// so the adapter keeps at most one of each kind on the wire (Adapter.listSlots)
// and, after a request of a kind was abandoned or failed before its end marker,
// sends the next one behind a REQ_CURRENT_TIME fence: the gateway answers in
// order, so every row and end marker of the earlier request has arrived before
// the fence's answer, and is dropped because no request of that kind is
// registered then (the reasoning of docs/adr/0007 for positions).

// listKind names a kind of list request.
type listKind int

const (
	listAccount listKind = iota
	listOpenOrders
	listCompletedOrders
	numLists
)

// listReq is the request of its kind on the wire. Its fields are guarded by
// s.mu; finish closes done once, after which they are final.
type listReq struct {
	account string // listAccount: the account whose rows belong to it
	upd     broker.AccountUpdate
	valIdx  map[[2]string]int // (key, currency) → index in upd.Values
	posIdx  map[int64]int     // conID → index in upd.Portfolio
	orders  []broker.Order
	permIdx map[int64]int // perm id → index in orders: a later row of an order replaces its earlier one
	rows    int
	size    int
	err     error
	done    chan struct{}
	ended   bool // its end marker arrived (else the rest may still be in flight)
}

func newListReq() *listReq { return &listReq{done: make(chan struct{})} }

// finishListLocked ends the request of kind k, if r is still it, with err
// (nil at its end marker).
func (s *session) finishListLocked(k listKind, r *listReq, err error) {
	if s.lists[k] != r || r == nil {
		return
	}
	s.lists[k] = nil
	r.ended = err == nil
	if !r.ended {
		s.listStale[k] = true
	}
	r.err = err
	close(r.done)
}

// growListLocked counts a row of size n against the answer bound and reports
// whether r may take it; past the bound it fails r with broker.ErrProtocol.
func (s *session) growListLocked(k listKind, r *listReq, n int) bool {
	r.rows++
	r.size += n
	if lim := s.a.opts.maxAnswer; r.rows > lim.Rows || r.size > lim.Bytes {
		s.finishListLocked(k, r, fmt.Errorf("answer exceeds %d rows or %d bytes: %w", lim.Rows, lim.Bytes, broker.ErrProtocol))
		return false
	}
	return true
}

// errStreamOpened tells AccountUpdates that a stream opened while it waited
// for its slot: the stream answers it instead (stream.go).
var errStreamOpened = errors.New("ibkr: account updates stream opened")

// runList makes one list request of kind k: it waits for the kind's slot,
// fences if an earlier request of that kind may still be answering, registers
// r, sends req and waits for r's end, ctx or the session's end. cancel (if its
// call is set) is sent once r is over, whichever way, to end a subscription.
func (a *Adapter) runList(ctx context.Context, s *session, what string, k listKind, r *listReq, req, cancel request) error {
	select {
	case a.listSlots[k] <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("ibkr: %s: %w", what, ctx.Err())
	case <-s.dead:
		return s.deadError()
	}
	defer func() { <-a.listSlots[k] }()
	s.mu.Lock()
	streaming := k == listAccount && s.stream != nil
	s.mu.Unlock()
	if streaming {
		return errStreamOpened
	}
	if err := s.fenceList(ctx, k); err != nil {
		return fmt.Errorf("ibkr: %s: %w", what, err)
	}
	s.mu.Lock()
	if s.deadErr != nil {
		defer s.mu.Unlock()
		return s.deadErr
	}
	s.lists[k] = r
	s.mu.Unlock()
	endSub := func() {
		if cancel.call != nil {
			_ = s.sendLocked(cancel)
		}
	}
	if err := s.sendLocked(req); err != nil {
		s.mu.Lock()
		s.finishListLocked(k, r, err)
		s.mu.Unlock()
		return err
	}
	select {
	case <-r.done:
		endSub()
		if r.err != nil {
			return fmt.Errorf("ibkr: %s: %w", what, r.err)
		}
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		s.finishListLocked(k, r, ctx.Err())
		s.mu.Unlock()
		endSub()
		return fmt.Errorf("ibkr: %s: %w", what, ctx.Err())
	case <-s.dead:
		return s.deadError()
	}
}

// fenceList sends a REQ_CURRENT_TIME fence and waits for its answer if an
// earlier request of kind k may still be answering (the caller holds k's slot).
func (s *session) fenceList(ctx context.Context, k listKind) error {
	s.mu.Lock()
	stale := s.listStale[k]
	s.mu.Unlock()
	if !stale {
		return nil
	}
	if err := s.roundTrip(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	s.mu.Lock()
	s.listStale[k] = false
	s.mu.Unlock()
	return nil
}

// addOrder merges an order row into r: an order's later row (its state
// changed while the list was coming) replaces the earlier one.
func (r *listReq) addOrder(x broker.Order) {
	if r.permIdx == nil {
		r.permIdx = map[int64]int{}
	}
	if i, ok := r.permIdx[x.PermID]; ok && x.PermID != 0 {
		r.orders[i] = x
		return
	}
	r.permIdx[x.PermID] = len(r.orders)
	r.orders = append(r.orders, x)
}

// terminalStatus reports an order status after which the order no longer works.
func terminalStatus(st string) bool {
	switch st {
	case "Filled", "Cancelled", "ApiCancelled", "Inactive":
		return true
	}
	return false
}

// addValue merges an ACCT_VALUE row into r.
func (r *listReq) addValue(v broker.AccountValue) {
	if r.valIdx == nil {
		r.valIdx = map[[2]string]int{}
	}
	k := [2]string{v.Key, v.Currency}
	if i, ok := r.valIdx[k]; ok {
		r.upd.Values[i] = v
		return
	}
	r.valIdx[k] = len(r.upd.Values)
	r.upd.Values = append(r.upd.Values, v)
}

// addPortfolio merges a PORTFOLIO_VALUE row into r.
func (r *listReq) addPortfolio(p broker.PortfolioItem) {
	if r.posIdx == nil {
		r.posIdx = map[int64]int{}
	}
	if i, ok := r.posIdx[p.Contract.ConID]; ok {
		r.upd.Portfolio[i] = p
		return
	}
	r.posIdx[p.Contract.ConID] = len(r.upd.Portfolio)
	r.upd.Portfolio = append(r.upd.Portfolio, p)
}
