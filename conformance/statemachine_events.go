// The state machine's event log: every event of one subscription, waited for by index.

package conformance

import (
	"context"
	"sync"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// eventLog records every event of one subscription, so that waiting for one
// never misses it and the subscriber always keeps up.
type eventLog struct {
	mu      sync.Mutex
	events  []broker.Event
	changed chan struct{}
	done    chan struct{}
}

func startEventLog(t TB, b broker.Broker) *eventLog {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	l := &eventLog{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for e := range ch {
			l.mu.Lock()
			l.events = append(l.events, e)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-l.done
	})
	return l
}

// mark returns the position of the next event.
func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// wait returns the first event from position since on that matches ok,
// waiting up to CallTimeout for it.
func (l *eventLog) wait(t TB, since int, what string, ok func(broker.Event) bool) broker.Event {
	t.Helper()
	timer := time.NewTimer(CallTimeout)
	defer timer.Stop()
	for {
		l.mu.Lock()
		evs, changed := l.events[since:], l.changed
		l.mu.Unlock()
		for _, e := range evs {
			if ok(e) {
				return e
			}
		}
		select {
		case <-changed:
		case <-l.done:
			t.Fatalf("waiting for %s: the event channel closed; saw %v", what, evs)
		case <-timer.C:
			t.Fatalf("no %s within %v; saw %v", what, CallTimeout, evs)
		}
	}
}

// waitClosed waits until the subscription has ended (the Broker is closed).
func (l *eventLog) waitClosed(t TB) {
	select {
	case <-l.done:
	case <-time.After(CallTimeout):
		t.Fatalf("the event channel is still open %v after Close", CallTimeout)
	}
}
