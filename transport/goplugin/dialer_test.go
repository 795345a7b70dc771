package goplugin

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

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

// TestDialerStartsAChild: each call starts a fresh, working child.
func TestDialerStartsAChild(t *testing.T) {
	log, _ := testLogger(t)
	dial := Dialer(WithCommand(os.Args[0], argChild, "mem"), WithLogger(log))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var pids []int
	for range 2 {
		b, err := dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, b.(*Client).Pid())
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if pids[0] == pids[1] {
		t.Fatalf("two dials share child %d", pids[0])
	}
}

// TestWithEnvReachesTheChild: the "env" child refuses to serve unless WithEnv
// passed it envProbe.
func TestWithEnvReachesTheChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log, buf := testLogger(t)
	if c, err := Start(ctx, WithCommand(os.Args[0], argChild, "env"), WithLogger(log)); err == nil {
		_ = c.Close()
		t.Fatalf("the env child served without %s", envProbe)
	}
	c, err := Start(ctx, WithCommand(os.Args[0], argChild, "env"), WithLogger(log), WithEnv(envProbe+"=yes"))
	if err != nil {
		t.Fatalf("Start with WithEnv: %v\nlog:\n%s", err, buf.String())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRunWorkerByHand: outside a host, RunWorker neither builds the Broker nor
// serves; it reports ErrNotWorker.
func TestRunWorkerByHand(t *testing.T) {
	built := false
	err := RunWorker(context.Background(), func() broker.Broker { built = true; return newMemBroker() })
	if !errors.Is(err, ErrNotWorker) {
		t.Fatalf("RunWorker by hand: %v, want ErrNotWorker", err)
	}
	if built {
		t.Fatal("RunWorker built the Broker outside a host")
	}
}

// TestGracePeriodOption: a value <= 0 keeps the default, as in stdiojson.
func TestGracePeriodOption(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		0: DefaultGracePeriod, -time.Second: DefaultGracePeriod, 300 * time.Millisecond: 300 * time.Millisecond,
	} {
		o := options{grace: DefaultGracePeriod}
		WithGracePeriod(d)(&o)
		if o.grace != want {
			t.Errorf("WithGracePeriod(%v): grace %v, want %v", d, o.grace, want)
		}
	}
}
