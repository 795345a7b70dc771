package broker

import "fmt"

// OrderQueue is the sending side of an order event channel, with the delivery
// OrderStreamer promises: events are queued in order up to OrderEventBuffer,
// never conflated; when the subscriber lets the queue fill, events are dropped
// and counted, and the next Send that finds room for two first queues one
// OrderEventGap saying how many were lost, then its own event. Send never
// blocks.
//
// An OrderQueue has a single sender: its methods must not be called
// concurrently (the Broker calls them under its own lock). The zero value is
// not usable; use NewOrderQueue.
type OrderQueue struct {
	c    chan OrderEvent
	lost int64 // events dropped since the last gap was queued
	why  string
}

// NewOrderQueue returns an empty queue whose channel has the given capacity:
// OrderEventBuffer is what OrderStreamer promises; a capacity below 2 is 2.
func NewOrderQueue(capacity int) *OrderQueue {
	return &OrderQueue{c: make(chan OrderEvent, max(capacity, 2))}
}

// C is the receiving side, which SubscribeOrders returns.
func (q *OrderQueue) C() <-chan OrderEvent { return q.c }

// Send queues e. If events were lost and there is room for the gap and e, the
// gap is queued first; if there is no room, e is dropped and counted. It
// reports whether e was queued.
func (q *OrderQueue) Send(e OrderEvent) bool {
	free := cap(q.c) - len(q.c) // only the single sender fills the channel: free can only grow meanwhile
	if q.lost > 0 || q.why != "" {
		if free < 2 {
			q.lost++
			return false
		}
		q.c <- q.gap()
		free--
	}
	if free < 1 {
		q.lost++
		return false
	}
	q.c <- e
	return true
}

// Gap queues an OrderEventGap saying why (a session lost, a worker dead)
// before the next event, merged with any loss not yet reported. If there is
// room now it is queued at once.
func (q *OrderQueue) Gap(why string) {
	if q.why == "" {
		q.why = why
	} else {
		q.why += "; " + why
	}
	if cap(q.c)-len(q.c) >= 1 {
		q.c <- q.gap()
	}
}

// gap builds the pending gap event and clears the pending state.
func (q *OrderQueue) gap() OrderEvent {
	why := q.why
	if q.lost > 0 {
		lost := fmt.Sprintf("%d order events dropped: the subscriber did not keep up", q.lost)
		if why == "" {
			why = lost
		} else {
			why += "; " + lost
		}
	}
	q.lost, q.why = 0, ""
	return OrderEvent{Kind: OrderEventGap, Gap: why}
}

// Close closes the channel. Send must not be called afterwards.
func (q *OrderQueue) Close() { close(q.c) }
