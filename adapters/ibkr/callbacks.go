package ibkr

import (
	"context"
	"fmt"
	"slices"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
)

// The EWrapper callbacks scmhub calls on its reader goroutine: handshake,
// answers routed to the requests waiting for them, and gateway messages.

// ConnectAck runs on the goroutine calling Connect, after START_API and before
// scmhub starts its watcher, so reading the client here races with nothing.
func (s *session) ConnectAck() {
	ctx := s.ec.Ctx()
	v := int(s.ec.ServerVersion())
	s.mu.Lock()
	s.acked = true
	s.ctx = ctx
	s.serverVersion = v
	s.mu.Unlock()
	context.AfterFunc(ctx, s.onContextDone)
}

// ConnectionClosed runs at the end of scmhub's Disconnect, once its goroutines
// have ended.
func (s *session) ConnectionClosed() {
	s.mu.Lock()
	first := s.markDeadLocked(s.lostError())
	established := s.established
	if !s.doneClosed {
		s.doneClosed = true
		close(s.done)
	}
	s.mu.Unlock()
	if first && established {
		s.a.hub.Publish(broker.Event{Kind: broker.EventConnectionLost, Message: "connection to the gateway lost"})
	}
}

// ManagedAccounts records the accounts of MANAGED_ACCTS.
func (s *session) ManagedAccounts(accounts []string) {
	list := make([]string, 0, len(accounts))
	for _, a := range accounts {
		if a != "" {
			list = append(list, a)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts = list
	s.haveAccounts = true
	s.checkReadyLocked()
}

// NextValidID records NEXT_VALID_ID, the lowest order id the gateway accepts.
func (s *session) NextValidID(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextValidIDLocked(id)
	s.haveNextID = true
	s.checkReadyLocked()
}

func (s *session) checkReadyLocked() {
	if s.haveAccounts && s.haveNextID {
		select {
		case <-s.ready:
		default:
			close(s.ready)
		}
	}
}

// CurrentTime releases the oldest waiter still queued (callers that gave up
// have left the queue; see Adapter.Ping); a fence opens its positions request.
func (s *session) CurrentTime(int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pings) == 0 {
		return
	}
	w := s.pings[0]
	s.pings = s.pings[1:]
	if w.fence != nil && s.pos == w.fence {
		w.fence.open = true
	}
	close(w.done)
}

// Position adds a row to the open positions request, if any. Rows arriving
// outside one (of a request abandoned or being cancelled, or before the
// current request's fence) are dropped unconverted. A request whose answer
// passes the adapter's bound fails with broker.ErrProtocol and is cancelled.
func (s *session) Position(account string, c *ibapi.Contract, pos ibapi.Decimal, avgCost float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw := s.takeRawLocked(account, c) // taken whether or not the row is kept
	pc := s.pos
	if pc == nil || !pc.open {
		return
	}
	p, err := positionFromIB(account, c, pos, avgCost, raw)
	if err != nil {
		if pc.err == nil {
			pc.err = fmt.Errorf("ibkr: positions: %w", err)
		}
		return
	}
	pc.rows = append(pc.rows, p)
	pc.size += positionSize(p)
	lim := s.a.opts.maxAnswer
	if len(pc.rows) > lim.Rows || pc.size > lim.Bytes {
		pc.rows = nil
		s.posFence = true // the rest of its rows are still coming
		pc.err = fmt.Errorf("ibkr: positions: answer exceeds %d rows or %d bytes: %w", lim.Rows, lim.Bytes, broker.ErrProtocol)
		s.finishPositionsLocked(pc)
	}
}

// PositionEnd completes the open positions request, if any.
func (s *session) PositionEnd() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pc := s.pos; pc != nil && pc.open {
		s.finishPositionsLocked(pc)
	}
}

// AccountSummary adds a row to the summary request with that id, if any; an
// answer past the bound of WithMaxAnswer fails the request with
// broker.ErrProtocol (the caller then cancels it).
func (s *session) AccountSummary(reqID int64, account, tag, value, currency string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[reqID].(*summaryReq)
	if !ok {
		return
	}
	r.coll.add(account, tag, value, currency)
	if lim := s.a.opts.maxAnswer; r.coll.rows > lim.Rows || r.coll.size > lim.Bytes {
		s.finishByIDLocked(reqID, fmt.Errorf("answer exceeds %d rows or %d bytes: %w", lim.Rows, lim.Bytes, broker.ErrProtocol))
	}
}

// AccountSummaryEnd completes the summary request with that id.
func (s *session) AccountSummaryEnd(reqID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[reqID].(*summaryReq); ok {
		s.finishByIDLocked(reqID, nil)
	}
}

// Error routes an ERR_MSG: to the request it names (byID), to the Connect in
// progress (326), or to subscribers as an event.
func (s *session) Error(reqID int64, _ int64, code int64, msg string, _ string) {
	apiErr := &broker.APIError{ReqID: reqID, Code: code, Message: msg}
	s.mu.Lock()
	if s.orderErrorLocked(apiErr) { // an order with a request in flight (orders.go)
		s.mu.Unlock()
		return
	}
	if reqID >= 0 && !marketDataWarning(code) && s.finishByIDLocked(reqID, apiErr) {
		s.mu.Unlock()
		return
	}
	if code == broker.IBCodeClientIDInUse && !s.established {
		if s.refused == nil {
			s.refused = apiErr
			close(s.refusedCh)
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.log.Debug("gateway message", "req_id", reqID, "code", code, "message", msg)
	if e, ok := eventFor(reqID, code, msg); ok {
		s.a.hub.Publish(e)
	}
	if code == broker.IBCodeRestoredDataLost { // the gateway has forgotten every market data line
		s.mu.Lock()
		s.endQuotesLocked(fmt.Errorf("ibkr: quote stream: market data lost (IB %d): %w", code, broker.ErrNotConnected))
		s.mu.Unlock()
	}
}

// marketDataWarning reports whether code, sent for a market data request,
// lets it go on: 10167 (delayed data displayed: delayed ticks follow) and
// 10090 (part of the data not subscribed: the rest follows).
func marketDataWarning(code int64) bool {
	return code == broker.IBCodeDisplayingDelayed || code == broker.IBCodePartlyNotSubscribed
}

// eventFor maps an ERR_MSG to the event subscribers see, if any.
func eventFor(reqID, code int64, msg string) (broker.Event, bool) {
	switch {
	case reqID == ibapi.NO_VALID_ID && broker.IsClientIBCode(code):
		return broker.Event{}, false // raised by scmhub itself, not by the gateway
	case code == broker.IBCodeConnectivityLost:
		return broker.Event{Kind: broker.EventConnectionLost, Code: code, Message: msg}, true
	case code == broker.IBCodeRestoredDataLost || code == broker.IBCodeRestoredDataMaintained:
		return broker.Event{Kind: broker.EventConnectionRestored, Code: code, Message: msg}, true
	default:
		return broker.Event{Kind: broker.EventNotice, Code: code, Message: msg}, true
	}
}

// Read-side callbacks: account updates and the order lists feed the list
// request of their kind (lists.go), executions the request under their id.

// UpdateAccountValue merges an ACCT_VALUE row of the account being read.
func (s *session) UpdateAccountValue(tag, value, currency, account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := broker.AccountValue{Key: tag, Value: value, Currency: currency}
	if st := s.streamRowLocked(account); st != nil {
		st.addValue(v)
		s.publishStreamLocked()
		return
	}
	r := s.lists[listAccount]
	if r == nil || account != r.account || !s.growListLocked(listAccount, r, len(tag)+len(value)+len(currency)) {
		return
	}
	r.addValue(v)
}

// UpdatePortfolio merges a PORTFOLIO_VALUE row of the account being read.
func (s *session) UpdatePortfolio(c *ibapi.Contract, pos ibapi.Decimal, price, value, cost, unrealized, realized float64, account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streamRowLocked(account); st != nil {
		if p, err := portfolioFromIB(c, pos, price, value, cost, unrealized, realized, account); err == nil {
			st.addPortfolio(p)
			s.publishStreamLocked()
		} else {
			s.log.Warn("account updates stream: row dropped", "error", err)
		}
		return
	}
	r := s.lists[listAccount]
	if r == nil || account != r.account {
		return
	}
	p, err := portfolioFromIB(c, pos, price, value, cost, unrealized, realized, account)
	if err != nil {
		s.finishListLocked(listAccount, r, err)
		return
	}
	if s.growListLocked(listAccount, r, contractSize(p.Contract)+6*numberSize) {
		r.addPortfolio(p)
	}
}

// UpdateAccountTime records ACCT_UPDATE_TIME for the account being read.
func (s *session) UpdateAccountTime(t string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stream; st != nil {
		st.state.upd.UpdateTime = t
		s.publishStreamLocked()
	}
	if r := s.lists[listAccount]; r != nil {
		r.upd.UpdateTime = t
	}
}

// AccountDownloadEnd completes the account updates request of that account.
func (s *session) AccountDownloadEnd(account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stream; st != nil && st.state.account == account {
		st.downloaded = true
		s.publishStreamLocked()
	}
	if r := s.lists[listAccount]; r != nil && r.account == account {
		s.finishListLocked(listAccount, r, nil)
	}
}

// OpenOrder updates the order's track (orders.go) and adds the row to the
// open orders request, if any.
func (s *session) OpenOrder(id int64, c *ibapi.Contract, o *ibapi.Order, st *ibapi.OrderState) {
	if x, err := orderFromIB(c, o, st); err == nil {
		s.mu.Lock()
		s.orderUpdateLocked(id, &x, x.Status, nil, x.PermID)
		s.mu.Unlock()
	}
	s.addOrder(listOpenOrders, c, o, st)
}

// OpenOrderEnd completes the open orders request. Orders whose last row says
// they no longer work (filled or cancelled while the list was coming, reported
// unprompted) are left out.
func (s *session) OpenOrderEnd() {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.lists[listOpenOrders]
	if r == nil {
		return
	}
	r.orders = slices.DeleteFunc(r.orders, func(o broker.Order) bool { return terminalStatus(o.Status) })
	s.finishListLocked(listOpenOrders, r, nil)
}

// CompletedOrder adds a COMPLETED_ORDER row to the completed orders request, if any.
func (s *session) CompletedOrder(c *ibapi.Contract, o *ibapi.Order, st *ibapi.OrderState) {
	s.addOrder(listCompletedOrders, c, o, st)
}

// CompletedOrdersEnd completes the completed orders request.
func (s *session) CompletedOrdersEnd() { s.endList(listCompletedOrders) }

func (s *session) addOrder(k listKind, c *ibapi.Contract, o *ibapi.Order, st *ibapi.OrderState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.lists[k]
	if r == nil {
		return
	}
	x, err := orderFromIB(c, o, st)
	if err != nil {
		s.finishListLocked(k, r, err)
		return
	}
	if s.growListLocked(k, r, orderSize(x)) {
		r.addOrder(x)
	}
}

// OrderStatus updates the order's track (orders.go) and the status and filled
// quantity of the order in the open orders request, if it holds that order.
func (s *session) OrderStatus(id int64, status string, filled, _ ibapi.Decimal, _ float64, permID, _ int64, _ float64, _ int64, _ string, _ float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, err := optDecimal(filled); err == nil {
		s.orderUpdateLocked(id, nil, status, &f, permID)
	}
	r := s.lists[listOpenOrders]
	if r == nil {
		return
	}
	i, ok := r.permIdx[permID]
	if !ok {
		return
	}
	f, err := optDecimal(filled)
	if err != nil {
		s.finishListLocked(listOpenOrders, r, fmt.Errorf("order %d filled quantity: %w", permID, err))
		return
	}
	r.orders[i].Status, r.orders[i].Filled = status, f
}

func (s *session) endList(k listKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishListLocked(k, s.lists[k], nil)
}

// ExecDetails adds an EXECUTION_DATA row to the executions request with that
// id, if any (fills reported unprompted carry id -1 and are not collected).
func (s *session) ExecDetails(reqID int64, c *ibapi.Contract, e *ibapi.Execution) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reqID == -1 { // a fill as it happens (orders_events.go)
		s.fillLocked(c, e)
		return
	}
	r, ok := s.byID[reqID].(*execReq)
	if !ok {
		return
	}
	x, err := executionFromIB(c, e)
	if err != nil {
		s.finishByIDLocked(reqID, err)
		return
	}
	r.size += executionSize(x)
	if lim := s.a.opts.maxAnswer; len(r.rows)+1 > lim.Rows || r.size > lim.Bytes {
		s.finishByIDLocked(reqID, fmt.Errorf("answer exceeds %d rows or %d bytes: %w", lim.Rows, lim.Bytes, broker.ErrProtocol))
		return
	}
	if r.idx == nil {
		r.idx = map[string]int{}
	}
	r.idx[x.ExecID] = len(r.rows)
	r.rows = append(r.rows, x)
}

// ExecDetailsEnd completes the executions request with that id.
func (s *session) ExecDetailsEnd(reqID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[reqID].(*execReq); ok {
		s.finishByIDLocked(reqID, nil)
	}
}

// CommissionAndFeesReport completes the execution it names in the executions
// request holding it, if any.
func (s *session) CommissionAndFeesReport(c ibapi.CommissionAndFeesReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commissionLocked(c)
	for id, req := range s.byID {
		r, ok := req.(*execReq)
		if !ok {
			continue
		}
		if i, ok := r.idx[c.ExecID]; ok {
			if err := addCommission(&r.rows[i], c); err != nil {
				s.finishByIDLocked(id, err)
			}
			return
		}
	}
}
