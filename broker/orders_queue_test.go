package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
)

func statusEvent(id int64) broker.OrderEvent {
	return broker.OrderEvent{Kind: broker.OrderEventStatus, Order: broker.Order{OrderID: id}}
}

func drain(q *broker.OrderQueue) []broker.OrderEvent {
	var out []broker.OrderEvent
	for {
		select {
		case e := <-q.C():
			out = append(out, e)
		default:
			return out
		}
	}
}

// TestOrderQueueKeepsOrderAndReportsLoss: events are queued in order; once
// the queue is full, further events are dropped, and the first Send with room
// for two queues one gap counting them, then its event.
func TestOrderQueueKeepsOrderAndReportsLoss(t *testing.T) {
	q := broker.NewOrderQueue(3)
	for id := int64(1); id <= 5; id++ { // 4 and 5 are lost
		if got, want := q.Send(statusEvent(id)), id <= 3; got != want {
			t.Fatalf("Send(%d) = %v, want %v", id, got, want)
		}
	}
	if got := drain(q); len(got) != 3 || got[0].Order.OrderID != 1 || got[2].Order.OrderID != 3 {
		t.Fatalf("first events %+v", got)
	}
	if !q.Send(statusEvent(6)) {
		t.Fatal("Send(6) with an empty queue dropped it")
	}
	got := drain(q)
	if len(got) != 2 || got[0].Kind != broker.OrderEventGap || !strings.Contains(got[0].Gap, "2 order events dropped") ||
		got[1].Order.OrderID != 6 {
		t.Fatalf("after the loss: %+v, want a gap counting 2, then event 6", got)
	}
	if !q.Send(statusEvent(7)) {
		t.Fatal("Send(7)")
	}
	if got := drain(q); len(got) != 1 || got[0].Order.OrderID != 7 {
		t.Fatalf("a second gap was sent: %+v", got)
	}
}

// TestOrderQueueGapWaitsForRoomForTwo: with one free slot after a loss, the
// event is dropped too (a gap alone there would hide it).
func TestOrderQueueGapWaitsForRoomForTwo(t *testing.T) {
	q := broker.NewOrderQueue(2)
	q.Send(statusEvent(1))
	q.Send(statusEvent(2))
	q.Send(statusEvent(3)) // lost
	<-q.C()                // one slot free
	if q.Send(statusEvent(4)) {
		t.Fatal("Send(4) with one free slot after a loss queued it without room for the gap")
	}
	<-q.C()
	q.Send(statusEvent(5))
	got := drain(q)
	if len(got) != 2 || got[0].Kind != broker.OrderEventGap || !strings.Contains(got[0].Gap, "2 order events dropped") {
		t.Fatalf("got %+v, want the gap counting 3 and 4, then 5", got)
	}
}

// TestOrderQueueGapReason: Gap queues a gap with its reason at once when
// there is room, merged with a pending loss otherwise.
func TestOrderQueueGapReason(t *testing.T) {
	q := broker.NewOrderQueue(2)
	q.Gap("session lost")
	if got := drain(q); len(got) != 1 || got[0].Kind != broker.OrderEventGap || got[0].Gap != "session lost" {
		t.Fatalf("got %+v", got)
	}
	q.Send(statusEvent(1))
	q.Send(statusEvent(2))
	q.Gap("worker died") // no room: pending
	q.Send(statusEvent(3))
	drain(q)
	q.Send(statusEvent(4))
	got := drain(q)
	if len(got) != 2 || !strings.Contains(got[0].Gap, "worker died") || !strings.Contains(got[0].Gap, "1 order events dropped") {
		t.Fatalf("got %+v", got)
	}
	q.Close()
	if _, ok := <-q.C(); ok {
		t.Fatal("channel not closed")
	}
}

// TestOutcomeUnknownWinsTheWireCode: an order whose session was lost after it
// was sent wraps ErrOutcomeUnknown and the cause (not connected, unavailable,
// the context's end); its wire code must be outcome_unknown, or the far side
// would think nothing was sent.
func TestOutcomeUnknownWinsTheWireCode(t *testing.T) {
	for _, cause := range []error{broker.ErrNotConnected, broker.ErrUnavailable, broker.ErrTimeout, context.Canceled, context.DeadlineExceeded} {
		err := fmt.Errorf("place order k1: %w after sending it: %w", broker.ErrOutcomeUnknown, cause)
		if got := broker.ErrorCode(err); got != broker.CodeOutcomeUnknown {
			t.Errorf("ErrorCode(%v) = %q, want %q", err, got, broker.CodeOutcomeUnknown)
		}
		if back := broker.ErrorFromCode(broker.ErrorCode(err), err.Error(), 0); !errors.Is(back, broker.ErrOutcomeUnknown) {
			t.Errorf("rebuilt %v does not match ErrOutcomeUnknown", back)
		}
	}
}
