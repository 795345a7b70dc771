// The state machine's quote stream actions (broker.QuoteStreamer): streams
// opened and cancelled across actions, modelled by the gateway's market data
// lines and by how each kind of session loss ends them.

package conformance

import (
	"context"
	"time"

	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
)

// maxModelQuotes bounds the streams a check holds open at once.
const maxModelQuotes = 4

// modelQuote is one open quote stream of the model.
type modelQuote struct {
	conID  int64
	ch     <-chan broker.QuoteUpdate
	cancel context.CancelFunc
}

// quoteCall subscribes to a drawn instrument (or an unknown contract) and
// expects the model's answer: its error, or a stream whose values converge to
// the script's quote of the market data type in force (for a moving quote, the
// fields the random walk leaves alone). The stream stays open for later
// actions: QuoteCancel (half the time at once: a drawn stream is cancelled at
// the end of this action), the session losses, Close.
func (m *machine) quoteCall(t *rapid.T) {
	qs, ok := m.b.(broker.QuoteStreamer)
	if !ok {
		t.Skip("the Broker does not implement broker.QuoteStreamer")
	}
	if len(m.quotes) >= maxModelQuotes {
		t.Skip("enough streams open")
	}
	in := m.drawInstrument(t)
	c := unknownContract
	var want broker.Quote
	wantErr := m.wantErrOr(broker.ErrNotFound)
	if in != nil {
		c = broker.Contract{ConID: in.Contract.ConID}
		var err error
		want, err = in.SnapshotAs(m.mdType, time.Now())
		wantErr = m.wantErr()
		if wantErr == nil && err != nil {
			wantErr = broker.ErrNotSubscribed
		}
		want.Contract = c
	}
	ctx, cancel := context.WithCancel(t.Context())
	timer := time.AfterFunc(CallTimeout, cancel)
	ch, err := qs.SubscribeQuotes(ctx, c)
	if !timer.Stop() {
		t.Fatalf("SubscribeQuotes(%+v) took more than %v", c, CallTimeout)
	}
	if e := compare(err, wantErr, true, err == nil); e != nil {
		cancel()
		t.Fatalf("SubscribeQuotes(%+v) under %v data: %v", c, m.mdType, e)
	}
	if err != nil {
		cancel()
		return
	}
	m.quotes = append(m.quotes, &modelQuote{conID: c.ConID, ch: ch, cancel: cancel})
	moving := in.TicksPerSecond > 0 && !in.Halted && want.DataType != broker.MarketDataFrozen &&
		want.DataType != broker.MarketDataDelayedFrozen
	deadline := time.After(CallTimeout)
	var last broker.Quote
	for {
		select {
		case u, open := <-ch:
			if !open {
				t.Fatalf("SubscribeQuotes(%d): the stream closed before a value equal to the script's", c.ConID)
			}
			if u.Gap != "" {
				t.Fatalf("SubscribeQuotes(%d): a fresh stream's value has gap %q", c.ConID, u.Gap)
			}
			last = u.Quote
			w := want
			w.Time, w.LastTime = last.Time, last.LastTime
			if moving { // the walk moves these; the rest is the script's
				w.Bid, w.Ask, w.Last, w.BidSize, w.Volume = last.Bid, last.Ask, last.Last, last.BidSize, last.Volume
			}
			if compare(nil, nil, w, last) == nil {
				if rapid.Bool().Draw(t, "thenCancelOne") { // so that cancels are as frequent as subscriptions
					m.quoteCancel(t)
				}
				return
			}
		case <-deadline:
			w := want
			w.Time, w.LastTime = last.Time, last.LastTime
			t.Fatalf("SubscribeQuotes(%d) under %v data: no value equal to the script's within %v: %v", c.ConID,
				m.mdType, CallTimeout, compare(nil, nil, w, last))
		}
	}
}

// quoteCancel cancels a drawn open stream: its channel must close within
// 2*PromptBound (and the invariant sees its line leave the gateway).
func (m *machine) quoteCancel(t *rapid.T) {
	if len(m.quotes) == 0 {
		t.Skip("no stream open")
	}
	i := rapid.IntRange(0, len(m.quotes)-1).Draw(t, "quoteToCancel")
	q := m.quotes[i]
	m.quotes = append(m.quotes[:i], m.quotes[i+1:]...)
	q.cancel()
	if !drained(q.ch, 2*PromptBound) {
		t.Fatalf("the stream of %d is still open %v after its ctx was cancelled", q.conID, 2*PromptBound)
	}
}

// quotesLost applies a loss of the session's market data to the model: a
// Broker that restores sessions (Features.Reconnects) keeps every stream open
// when kept is true (and the invariant waits for its lines to come back);
// otherwise every channel must close within CallTimeout.
func (m *machine) quotesLost(t *rapid.T, when string, kept bool) {
	if kept && m.f.Reconnects {
		for _, q := range m.quotes {
			select {
			case _, open := <-q.ch:
				if !open {
					t.Fatalf("the stream of %d closed %s, though the Broker restores sessions", q.conID, when)
				}
			default:
			}
		}
		return
	}
	for _, q := range m.quotes {
		if !drained(q.ch, CallTimeout) {
			t.Fatalf("the stream of %d is still open %v %s", q.conID, CallTimeout, when)
		}
		q.cancel()
	}
	m.quotes = nil
}

// quoteLines waits until the gateway holds one market data line per stream
// of the model (none without a session).
func (m *machine) quoteLines(t *rapid.T) {
	want := len(m.quotes)
	if !m.connected || m.dead {
		want = 0
	}
	ctx, cancel := m.ctx(t)
	defer cancel()
	if err := m.env.Gateway.WaitMarketDataLines(ctx, want); err != nil {
		t.Fatalf("market data lines: the model has %d streams: %v", want, err)
	}
}

// drained reads ch until it is closed (true) or d has passed (false).
func drained[T any](ch <-chan T, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case _, open := <-ch:
			if !open {
				return true
			}
		case <-deadline:
			return false
		}
	}
}
