package chaostest

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/internal/leakcheck"
	"github.com/brokerkit/brokerkit/robust"
)

// Quote streams under chaos: a stream of a moving instrument survives what
// lose does to the session, with a gap marker first and nothing of the old
// subscription after it.

// quoteRate is the steps per second of the instrument QuoteStream follows.
const quoteRate = 200

// farAway is added to the instrument's prices before the loss: every
// subscription made afterwards starts from there, so that a value of the old
// subscription (still near the old prices) is told apart from a new one.
const farAway = 1000

// QuoteStream subscribes e.B to AAPL, moving at quoteRate steps a second, runs
// lose, and checks what the subscriber sees. With wantGap: values of the first
// subscription, a gap marker (possibly merged into the first fresh value),
// then only values of a new subscription that robust made by itself
// (further gap markers are allowed: a transport may report a loss twice). Without:
// no gap and only the first subscription's values. Last, cancelling the
// subscription leaves no market data line at the gateway.
func QuoteStream(t *testing.T, e *Env, lose func(), wantGap bool) {
	t.Helper()
	s := e.Script.Clone()
	i := instrument(t, s, "AAPL")
	s.Instruments[i].TicksPerSecond = quoteRate
	e.GW.SetScript(s)
	c := s.Instruments[i].Contract

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // against hangs only
	defer cancel()
	sctx, unsubscribe := context.WithCancel(ctx)
	defer unsubscribe()
	ch, err := e.B.SubscribeQuotes(sctx, c)
	if err != nil {
		t.Fatalf("SubscribeQuotes: %v", err)
	}
	next := func(what string) broker.QuoteUpdate {
		t.Helper()
		select {
		case u, open := <-ch:
			if !open {
				t.Fatalf("%s: the stream closed (stats %+v)", what, e.B.Stats())
			}
			return u
		case <-ctx.Done():
			t.Fatalf("%s: nothing in time (stats %+v)", what, e.B.Stats())
		}
		panic("unreachable")
	}
	isNew := func(u broker.QuoteUpdate) bool { return u.Quote.Bid.Float64() > farAway }
	for range 3 {
		if u := next("a first value"); u.Gap != "" || isNew(u) {
			t.Fatalf("before the loss: %+v", u)
		}
	}
	moved := s.Clone()
	q := &moved.Instruments[i].Quote
	for _, p := range []*broker.Decimal{&q.Bid, &q.Ask, &q.Last, &q.High, &q.Low} {
		*p = broker.MustDecimal(fmt.Sprint(p.Float64() + farAway))
	}
	e.GW.SetScript(moved)
	lose()
	if !wantGap {
		for range 30 {
			if u := next("a value after the event"); u.Gap != "" || isNew(u) {
				t.Fatalf("after an event that keeps the data: %+v", u)
			}
		}
	} else {
		gaps, fresh := 0, 0
		for fresh < 10 {
			u := next("the stream after the loss")
			switch {
			case u.Gap != "":
				gaps++
				if u.Quote != (broker.Quote{Contract: u.Quote.Contract}) && !isNew(u) {
					t.Fatalf("a gap marker merged into an old value: %+v", u)
				}
			case gaps == 0 && isNew(u):
				t.Fatalf("a new value before the gap marker: %+v", u)
			case gaps > 0 && !u.Quote.Bid.IsZero() && !isNew(u):
				t.Fatalf("an old value after the gap marker: %+v", u)
			}
			if gaps > 0 && isNew(u) {
				fresh++
			}
		}
		t.Logf("after the loss: %d gap marker(s), then fresh values (stats %+v)", gaps, e.B.Stats())
	}
	unsubscribe()
	if err := e.GW.WaitMarketDataLines(ctx, 0); err != nil {
		t.Errorf("after cancelling the stream: %v", err)
	}
}

func instrument(t *testing.T, s fakes.Script, symbol string) int {
	t.Helper()
	for i, in := range s.Instruments {
		if in.Contract.Symbol == symbol && in.Contract.SecType == "STK" {
			return i
		}
	}
	t.Fatalf("the script has no %s stock", symbol)
	return -1
}

// CountQuoteSubscriptions wraps dial so that n counts the SubscribeQuotes
// calls robust makes on its inner Brokers. The wrapper hides robust.PIDer and
// robust.Exiter: use it over the in-process adapter.
func CountQuoteSubscriptions(dial robust.Dialer, n *atomic.Int64) robust.Dialer {
	return func(ctx context.Context) (broker.Broker, error) {
		b, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		return countingBroker{b, n}, nil
	}
}

type countingBroker struct {
	broker.Broker
	n *atomic.Int64
}

func (c countingBroker) SubscribeQuotes(ctx context.Context, ct broker.Contract) (<-chan broker.QuoteUpdate, error) {
	c.n.Add(1)
	return c.Broker.(broker.QuoteStreamer).SubscribeQuotes(ctx, ct)
}

// QuoteStreamKill runs QuoteStream over a child-process transport with
// SIGKILL of the worker as the loss, three times in a row on the same
// Broker: each time the stream goes on by itself on the new worker.
func QuoteStreamKill(t *testing.T, dial robust.Dialer) {
	e := New(t, dial)
	for range 3 {
		pid := e.B.Stats().WorkerPID
		if pid == 0 {
			t.Fatal("the transport's client reports no pid")
		}
		QuoteStream(t, e, func() {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill -9 %d: %v", pid, err)
			}
		}, true)
		leakcheck.AssertProcessGone(t, pid)
	}
	last := e.B.Stats().WorkerPID
	e.CloseAndCheck(t, last)
	leakcheck.AssertProcessGone(t, last)
}

// QuoteStreamIB runs QuoteStream with the gateway's IB 1101 (market data
// lost: a gap and a new subscription on the same session) and then 1100 and
// 1102 (data maintained: nothing), without a reconnection.
func QuoteStreamIB(t *testing.T, dial robust.Dialer) {
	e := New(t, dial)
	QuoteStream(t, e, func() { e.GW.Notify(broker.IBCodeRestoredDataLost, "") }, true)
	QuoteStream(t, e, func() {
		e.GW.Notify(broker.IBCodeConnectivityLost, "")
		e.GW.Notify(broker.IBCodeRestoredDataMaintained, "")
	}, false)
	if st := e.B.Stats(); st.Reconnects != 0 || st.Restarts != 0 {
		t.Errorf("IB 1101/1102 touched the session: %+v", st)
	}
	e.CloseAndCheck(t, e.B.Stats().WorkerPID)
}
