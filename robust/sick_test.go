package robust

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
)

// TestDataErrorKeepsSession: a protocol error of one call's data (a malformed
// value, ErrProtocol without ErrNotConnected) is returned as it is: not
// retried, not a lost session, no reconnection and no new inner Broker.
func TestDataErrorKeepsSession(t *testing.T) {
	f := &farm{}
	b, _, _ := newTest(t, f, WithMaxAttempts(5))
	connect(t, b)
	s := f.get(t, 0)
	s.fail(broker.OpPositions, fmt.Errorf("position DU1/1 quantity: %w", broker.ErrProtocol))
	if _, err := b.Positions(context.Background()); !errors.Is(err, broker.ErrProtocol) {
		t.Fatalf("Positions: %v, want ErrProtocol", err)
	}
	if n := s.count(broker.OpPositions); n != 1 {
		t.Errorf("inner Positions calls = %d, want 1 (a data error is not retried)", n)
	}
	if _, err := b.Positions(context.Background()); err != nil {
		t.Fatalf("Positions after the data error: %v", err)
	}
	st := b.Stats()
	if f.n() != 1 || st.Reconnects != 0 || st.Restarts != 0 || b.State() != StateConnected {
		t.Errorf("after a data error: %d inner brokers, %+v; want the same session", f.n(), st)
	}
}

// TestTimeoutsInARowMakeASickSession: calls that keep timing out while the
// session is otherwise up (pings answered, no loss reported) recover the
// session after WithSickAfter of them; a success in between starts the count
// again.
func TestTimeoutsInARowMakeASickSession(t *testing.T) {
	f := &farm{}
	b, _, _ := newTest(t, f, WithMaxAttempts(1), WithSickAfter(3))
	connect(t, b)
	s := f.get(t, 0)
	s.fail(broker.OpPositions, broker.ErrTimeout, broker.ErrTimeout, nil, broker.ErrTimeout, broker.ErrTimeout, broker.ErrTimeout)
	for i := range 5 {
		_, err := b.Positions(context.Background())
		if want := i != 2; (err != nil) != want {
			t.Fatalf("Positions %d: %v", i, err)
		}
	}
	if f.n() != 1 {
		t.Fatalf("recovered after 2 timeouts, a success and 2 timeouts: %d inner brokers", f.n())
	}
	if _, err := b.Positions(context.Background()); !errors.Is(err, broker.ErrTimeout) {
		t.Fatalf("third timeout in a row: %v", err)
	}
	eventually(t, "the sick session recovered", func() bool {
		return f.n() == 2 && f.get(t, 1).isConnected() && b.State() == StateConnected
	})
	if _, err := b.Positions(context.Background()); err != nil {
		t.Errorf("Positions on the recovered session: %v", err)
	}
}
