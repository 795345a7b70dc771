package broker_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/brokerkit/brokerkit/broker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHub(t *testing.T) {
	var h broker.Hub
	ctx, cancel := context.WithCancel(context.Background())
	a, err := h.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.Subscribe(context.Background())
	h.Publish(broker.Event{Kind: broker.EventConnectionLost, Code: 1100})
	for _, ch := range []<-chan broker.Event{a, b} {
		e := <-ch
		if e.Kind != broker.EventConnectionLost || e.Code != 1100 || e.Time.IsZero() {
			t.Errorf("got %+v", e)
		}
	}
	cancel()
	if _, ok := <-a; ok {
		t.Error("a still open after its context ended")
	}
	for i := 0; i < broker.EventBuffer+5; i++ { // never blocks on a full subscriber
		h.Publish(broker.Event{Kind: broker.EventNotice, Code: 2104})
	}
	if h.Dropped() != 5 {
		t.Errorf("Dropped = %d, want 5", h.Dropped())
	}
	h.Close()
	h.Close()
	n := 0
	for range b {
		n++
	}
	if n != broker.EventBuffer {
		t.Errorf("drained %d, want %d", n, broker.EventBuffer)
	}
	if _, err := h.Subscribe(context.Background()); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
}

func TestEventKindText(t *testing.T) {
	for _, k := range []broker.EventKind{broker.EventConnectionLost, broker.EventConnectionRestored, broker.EventNotice} {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back broker.EventKind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("%s round trip: %v %v", b, back, err)
		}
	}
	var k broker.EventKind
	if err := k.UnmarshalText([]byte("bogus")); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Error(err)
	}
	if _, err := broker.EventKind(99).MarshalText(); err == nil {
		t.Error("kind 99 marshalled")
	}
}
