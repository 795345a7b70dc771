package stdiojson

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
)

// TestDialerReturnsPlainNil: a failed start yields a nil interface, not a nil
// *Client inside one, and the start's error.
func TestDialerReturnsPlainNil(t *testing.T) {
	b, err := Dialer()(context.Background()) // no command
	if !errors.Is(err, broker.ErrInvalidArgument) {
		t.Fatalf("Dialer without a command: %v, want ErrInvalidArgument", err)
	}
	if b != nil {
		t.Fatalf("Dialer returned %#v, want a nil Broker", b)
	}
}

// TestDialerStartsAWorker: each call starts a fresh, working worker.
func TestDialerStartsAWorker(t *testing.T) {
	dial := Dialer(WithSelf(), WithEnv(envTestMode+"=mem", noRaceExitSleep), WithLogger(hclog.NewNullLogger()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var pids []int
	for range 2 {
		b, err := dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, b.(*Client).Pid())
		if err := b.Ping(ctx); !errors.Is(err, broker.ErrNotConnected) {
			t.Errorf("Ping of a fresh worker: %v, want ErrNotConnected", err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if pids[0] == pids[1] {
		t.Fatalf("two dials share worker %d", pids[0])
	}
}

// TestGracePeriodOption: a value <= 0 keeps the default, as in goplugin.
func TestGracePeriodOption(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		0: DefaultGracePeriod, -time.Second: DefaultGracePeriod, 300 * time.Millisecond: 300 * time.Millisecond,
	} {
		cfg := clientConfig{grace: DefaultGracePeriod}
		WithGracePeriod(d)(&cfg)
		if cfg.grace != want {
			t.Errorf("WithGracePeriod(%v): grace %v, want %v", d, cfg.grace, want)
		}
	}
}
