package ibkr

import (
	"context"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
)

// The order event stream (broker.OrderStreamer). Every subscriber has its own
// queue of broker.OrderEventBuffer events, filled by the callbacks without
// ever blocking: order status changes (OPEN_ORDER and ORDER_STATUS, reported
// when the status or the filled quantity changed) and fills (EXECUTION_DATA
// reported unprompted, request id -1; its COMMISSION_REPORT follows as a
// second fill event with the same exec id). Events are queued, never
// conflated (broker.OrderQueue): when a queue is full the event is dropped
// and the subscriber's next event is preceded by one broker.OrderEventGap. The queues close when
// the subscriber's context ends, on Close and at the session's end.

// orderSub is one subscriber: its queue (sent to under s.mu) and the stop of
// its ctx watch.
type orderSub struct {
	q    *broker.OrderQueue
	stop func() bool
}

// fillRef is an unprompted fill awaiting its commission report.
type fillRef struct {
	exec  broker.Execution
	order broker.Order
}

// SubscribeOrders implements broker.OrderStreamer.
func (a *Adapter) SubscribeOrders(ctx context.Context) (<-chan broker.OrderEvent, error) {
	s, err := a.live()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sub := &orderSub{q: broker.NewOrderQueue(broker.OrderEventBuffer)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deadErr != nil {
		return nil, s.deadErr
	}
	s.ord.init()
	s.ord.subs[sub] = struct{}{}
	sub.stop = context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.ord.subs[sub]; ok {
			delete(s.ord.subs, sub)
			sub.q.Close()
		}
	})
	return sub.q.C(), nil
}

// publishOrderLocked queues e for every subscriber (broker.OrderQueue: a
// full queue drops e and owes the subscriber a gap).
func (s *session) publishOrderLocked(e broker.OrderEvent) {
	for sub := range s.ord.subs {
		sub.q.Send(e)
	}
}

// endOrdersLocked closes every subscriber's queue (the session is over).
func (s *session) endOrdersLocked() {
	for sub := range s.ord.subs {
		if sub.stop != nil {
			sub.stop()
		}
		sub.q.Close()
	}
	clear(s.ord.subs)
}

// fillLocked reports an unprompted EXECUTION_DATA as a fill event and keeps
// it for its commission report.
func (s *session) fillLocked(c *ibapi.Contract, e *ibapi.Execution) {
	x, err := executionFromIB(c, e)
	if err != nil {
		s.log.Warn("fill dropped", "error", err)
		return
	}
	s.ord.init()
	o := broker.Order{OrderID: x.OrderID, PermID: x.PermID, ClientID: x.ClientID, Account: x.Account,
		Contract: x.Contract, OrderRef: x.OrderRef}
	if tr := s.ord.byID[x.OrderID]; tr != nil && x.OrderID > 0 {
		if o.OrderRef == "" {
			o.OrderRef = tr.key
		}
		o.Action, o.OrderType, o.TIF = tr.order.Action, tr.order.OrderType, tr.order.TIF
		o.TotalQuantity, o.LimitPrice, o.AuxPrice = tr.order.TotalQuantity, tr.order.LimitPrice, tr.order.AuxPrice
		o.Status, o.Filled = tr.order.Status, tr.order.Filled
	}
	if _, ok := s.ord.fills[x.ExecID]; !ok {
		if len(s.ord.fillOrder) >= maxPendingFills {
			delete(s.ord.fills, s.ord.fillOrder[0])
			s.ord.fillOrder = s.ord.fillOrder[1:]
		}
		s.ord.fillOrder = append(s.ord.fillOrder, x.ExecID)
	}
	s.ord.fills[x.ExecID] = fillRef{exec: x, order: o}
	s.publishOrderLocked(broker.OrderEvent{Kind: broker.OrderEventFill, Order: o, Fill: &x})
}

// commissionLocked reports the commission of a fill reported earlier, as a
// second fill event with the same exec id.
func (s *session) commissionLocked(c ibapi.CommissionAndFeesReport) {
	f, ok := s.ord.fills[c.ExecID]
	if !ok {
		return
	}
	delete(s.ord.fills, c.ExecID)
	for i, id := range s.ord.fillOrder {
		if id == c.ExecID {
			s.ord.fillOrder = append(s.ord.fillOrder[:i], s.ord.fillOrder[i+1:]...)
			break
		}
	}
	x := f.exec
	if err := addCommission(&x, c); err != nil {
		s.log.Warn("commission report dropped", "error", err)
		return
	}
	s.publishOrderLocked(broker.OrderEvent{Kind: broker.OrderEventFill, Order: f.order, Fill: &x})
}

// nextValidIDLocked records a NEXT_VALID_ID and releases REQ_IDS waiters.
func (s *session) nextValidIDLocked(id int64) {
	s.ord.nextID = id
	for _, w := range s.ord.idWaiters {
		close(w)
	}
	s.ord.idWaiters = nil
}
