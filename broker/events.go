package broker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// EventKind says what an Event reports.
type EventKind int

// The kinds of event.
const (
	EventConnectionLost     EventKind = iota + 1 // the session to the gateway, or the gateway's to IB, was lost
	EventConnectionRestored                      // it is back (IB 1101: data lost; 1102: data maintained)
	EventNotice                                  // any other gateway message with an IB code (farm status, warnings, errors)
)

var eventKindNames = map[EventKind]string{
	EventConnectionLost:     "connection_lost",
	EventConnectionRestored: "connection_restored",
	EventNotice:             "notice",
}

// String returns the kind's wire name: connection_lost, connection_restored or notice.
func (k EventKind) String() string {
	if s, ok := eventKindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// MarshalText implements encoding.TextMarshaler with the wire name.
func (k EventKind) MarshalText() ([]byte, error) {
	if _, ok := eventKindNames[k]; !ok {
		return nil, fmt.Errorf("%w: unknown event kind %d", ErrInvalidArgument, int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *EventKind) UnmarshalText(b []byte) error {
	for kind, name := range eventKindNames {
		if name == string(b) {
			*k = kind
			return nil
		}
	}
	return fmt.Errorf("%w: unknown event kind %q", ErrInvalidArgument, b)
}

// Event is something the Broker observed without being asked.
type Event struct {
	Kind    EventKind
	Time    time.Time // when the implementation observed it
	Code    int64     // IB code when the gateway sent one (1100, 1102, 2104, ...), else 0
	Message string
}

// EventBuffer is the channel capacity Hub gives each subscriber.
const EventBuffer = 64

// Hub fans events out to subscribers. It implements the Subscribe half of the
// Broker contract so that implementations do not each write their own.
// The zero value is ready to use; a Hub is safe for concurrent use.
type Hub struct {
	mu      sync.Mutex
	subs    map[*hubSub]struct{}
	closed  bool
	dropped atomic.Int64
}

type hubSub struct {
	ch   chan Event
	stop func() bool
}

// Subscribe returns a channel that receives events published after the call,
// until ctx is done or the Hub is closed; then the channel is closed.
func (h *Hub) Subscribe(ctx context.Context) (<-chan Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.subs == nil {
		h.subs = make(map[*hubSub]struct{})
	}
	s := &hubSub{ch: make(chan Event, EventBuffer)}
	h.subs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, func() { h.remove(s) })
	return s.ch, nil
}

func (h *Hub) remove(s *hubSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// Publish delivers e to every subscriber that has room; it never blocks.
// A zero e.Time is set to now.
func (h *Hub) Publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- e:
		default:
			h.dropped.Add(1)
		}
	}
}

// Dropped returns how many deliveries were dropped because a subscriber was full.
func (h *Hub) Dropped() int64 { return h.dropped.Load() }

// Close closes every subscriber's channel; later Subscribes fail with ErrClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s := range h.subs {
		s.stop()
		close(s.ch)
	}
	h.subs = nil
}
