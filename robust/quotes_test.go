package robust

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// ---- the stub's quote streams ----

// opSubscribeQuotes counts and scripts the stub's SubscribeQuotes.
const opSubscribeQuotes broker.Op = "subscribe_quotes"

// stubQuotes is one of a stub's quote subscriptions; the test sends its values.
type stubQuotes struct {
	c   broker.Contract
	ctx context.Context // the subscription's context, as the stub received it
	ch  chan broker.QuoteUpdate

	mu    sync.Mutex
	ended bool
}

// send delivers u without blocking; false if the channel is full or closed.
func (q *stubQuotes) send(u broker.QuoteUpdate) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended {
		return false
	}
	select {
	case q.ch <- u:
		return true
	default:
		return false
	}
}

func (q *stubQuotes) end() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.ended {
		q.ended = true
		close(q.ch)
	}
}

func (s *stub) SubscribeQuotes(ctx context.Context, c broker.Contract) (<-chan broker.QuoteUpdate, error) {
	if err := s.run(ctx, opSubscribeQuotes, true); err != nil {
		return nil, err
	}
	q := &stubQuotes{c: c, ctx: ctx, ch: make(chan broker.QuoteUpdate, 64)}
	s.mu.Lock()
	s.quotes = append(s.quotes, q)
	keep := s.keepOpen
	s.mu.Unlock()
	if !keep {
		context.AfterFunc(ctx, q.end)
	}
	return q.ch, nil
}

// endQuotesLocked closes the quote channels, as a session's end does (a
// keepOpen stub keeps them open until Close).
func (s *stub) endQuotesLocked() {
	if s.keepOpen && !s.closed {
		return
	}
	for _, q := range s.quotes {
		q.end()
	}
}

// quoteSub waits for the stub's i-th quote subscription.
func (s *stub) quoteSub(t testing.TB, i int) *stubQuotes {
	t.Helper()
	var q *stubQuotes
	eventually(t, fmt.Sprintf("quote subscription %d on stub %d", i, s.id), func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if i < len(s.quotes) {
			q = s.quotes[i]
			return true
		}
		return false
	})
	return q
}

// quote is a value of stubAAPL's stream whose bid tells who sent it.
func quote(bid int64) broker.QuoteUpdate {
	return broker.QuoteUpdate{Quote: broker.Quote{Contract: stubAAPL, Bid: broker.DecimalFromInt(bid)}}
}

func bidOf(u broker.QuoteUpdate) int64 {
	return int64(u.Quote.Bid.Float64())
}

// recvQuote reads one value, failing the test if none comes or ch closes.
func recvQuote(t *testing.T, ch <-chan broker.QuoteUpdate, what string) broker.QuoteUpdate {
	t.Helper()
	select {
	case u, open := <-ch:
		if !open {
			t.Fatalf("%s: the stream closed", what)
		}
		return u
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing after 10s", what)
	}
	panic("unreachable")
}

// awaitClosed drains ch until it closes.
func awaitClosed(t *testing.T, ch <-chan broker.QuoteUpdate, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-deadline:
			t.Fatalf("%s: the stream is still open after 10s", what)
		}
	}
}

// isGapMarker reports whether u is a bare gap marker of stubAAPL.
func isGapMarker(u broker.QuoteUpdate) bool {
	return u.Gap != "" && u.Quote == (broker.Quote{Contract: stubAAPL})
}

// subscriptions counts the quote subscriptions the stubs granted (a
// subscription asked of a session that has just ended is refused).
func (f *farm) subscriptions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.stubs {
		s.mu.Lock()
		n += len(s.quotes)
		s.mu.Unlock()
	}
	return n
}

// ---- the tests ----

// losses are the ways a session ends under a quote stream: which stub serves
// the next session, and with which options.
var losses = []struct {
	name   string
	opts   []Option
	exiter bool
	lose   func(s *stub)
	next   int // the stub of the next session
}{
	{"gateway drop", nil, false, (*stub).dropSession, 1},
	{"gateway drop, reconnect in place", []Option{WithReconnectInPlace()}, false, (*stub).dropSession, 0},
	{"worker crash", nil, true, func(s *stub) { s.kill(); close(s.exited) }, 1},
}

// TestQuoteStreamSurvivesLoss: after a gateway drop (with or without a new
// worker) or a worker's death, the caller's channel stays open, receives a gap
// marker, then the values of a subscription robust made on the new session by
// itself.
func TestQuoteStreamSurvivesLoss(t *testing.T) {
	for _, l := range losses {
		t.Run(l.name, func(t *testing.T) {
			f := &farm{exiter: l.exiter}
			b, _, _ := newTest(t, f, l.opts...)
			connect(t, b)
			ch, err := b.SubscribeQuotes(t.Context(), stubAAPL)
			if err != nil {
				t.Fatal(err)
			}
			s := f.get(t, 0)
			s.quoteSub(t, 0).send(quote(1))
			if u := recvQuote(t, ch, "the first value"); bidOf(u) != 1 || u.Gap != "" {
				t.Fatalf("first value %+v", u)
			}
			l.lose(s)
			gap := recvQuote(t, ch, "the gap marker")
			if !isGapMarker(gap) || !(strings.HasPrefix(gap.Gap, GapSessionLost) || gap.Gap == GapStreamEnded) {
				t.Fatalf("after the loss: %+v, want a gap marker of a lost session", gap)
			}
			eventually(t, "the new session", func() bool { return f.n() > l.next && b.State() == StateConnected })
			next := f.get(t, l.next)
			q := next.quoteSub(t, boolInt(next == s)) // in place: the stub's second subscription
			if q.c != stubAAPL {
				t.Errorf("subscribed again to %+v", q.c)
			}
			q.send(quote(2))
			if u := recvQuote(t, ch, "the fresh value"); bidOf(u) != 2 || u.Gap != "" {
				t.Fatalf("fresh value %+v", u)
			}
			if n := f.subscriptions(); n != 2 {
				t.Errorf("%d inner subscriptions made, want 2", n)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestQuoteStreamNoOldValueAfterGap: an inner Broker whose old subscriptions
// go on sending after the session was lost or after a 1101 (a transport whose
// cancellation lags) never gets a value past the gap marker: every value after
// the marker is the new subscription's.
func TestQuoteStreamNoOldValueAfterGap(t *testing.T) {
	cases := append(losses[:len(losses):len(losses)], struct {
		name   string
		opts   []Option
		exiter bool
		lose   func(s *stub)
		next   int
	}{"IB 1101", nil, false, func(s *stub) {
		s.hub.Publish(broker.Event{Kind: broker.EventConnectionRestored, Code: broker.IBCodeRestoredDataLost})
	}, 0})
	for _, l := range cases {
		t.Run(l.name, func(t *testing.T) {
			f := &farm{exiter: l.exiter, prep: func(s *stub) { s.keepOpen = true }}
			b, _, _ := newTest(t, f, l.opts...)
			connect(t, b)
			ch, err := b.SubscribeQuotes(t.Context(), stubAAPL)
			if err != nil {
				t.Fatal(err)
			}
			s := f.get(t, 0)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			defer wg.Wait()
			defer close(stop)
			pump := func(q *stubQuotes, from int64) {
				defer wg.Done()
				for n := from; ; {
					if q.send(quote(n)) {
						n++
					}
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Microsecond): // a tick rate, not a synchronisation
					}
				}
			}
			wg.Add(1)
			go pump(s.quoteSub(t, 0), 1000) // old values: 1000 and up, forever
			if u := recvQuote(t, ch, "an old value"); bidOf(u) < 1000 || bidOf(u) >= 2000 {
				t.Fatalf("first value %+v", u)
			}
			l.lose(s)
			gapSeen, fresh := false, 0
			started := false
			for fresh < 50 {
				if !started && f.n() > l.next {
					next := f.get(t, l.next)
					next.mu.Lock()
					subs := len(next.quotes)
					next.mu.Unlock()
					if want := 1 + boolInt(next == s); subs >= want {
						started = true
						wg.Add(1)
						go pump(next.quoteSub(t, want-1), 2000) // new values: 2000 and up
					}
				}
				var u broker.QuoteUpdate
				select {
				case v, open := <-ch:
					if !open {
						t.Fatal("the stream closed")
					}
					u = v
				case <-time.After(20 * time.Millisecond):
					continue // look for the new subscription again
				}
				isNew := bidOf(u) >= 2000
				switch {
				case u.Gap != "":
					if gapSeen {
						t.Fatalf("a second gap: %+v", u)
					}
					gapSeen = true
					if !isGapMarker(u) && !isNew {
						t.Fatalf("the gap marker carries an old value: %+v", u)
					}
				case !gapSeen && isNew:
					t.Fatalf("a new value before the gap marker: %+v", u)
				case gapSeen && !isNew:
					t.Fatalf("an old value after the gap marker: %+v", u)
				}
				if isNew {
					fresh++
				}
			}
		})
	}
}

// TestQuoteStream1101ResubscribesOnSameSession1102DoesNot: IB 1100 then 1102
// (data maintained) leaves the subscription alone; 1101 (data lost) cancels it
// and subscribes again on the same session, after a gap marker, without a
// reconnection.
func TestQuoteStream1101ResubscribesOnSameSession1102DoesNot(t *testing.T) {
	f := &farm{}
	b, _, _ := newTest(t, f)
	connect(t, b)
	ch, err := b.SubscribeQuotes(t.Context(), stubAAPL)
	if err != nil {
		t.Fatal(err)
	}
	s := f.get(t, 0)
	q0 := s.quoteSub(t, 0)
	s.hub.Publish(broker.Event{Kind: broker.EventConnectionLost, Code: broker.IBCodeConnectivityLost})
	eventually(t, "reconnecting on 1100", func() bool { return b.State() == StateReconnecting })
	s.hub.Publish(broker.Event{Kind: broker.EventConnectionRestored, Code: broker.IBCodeRestoredDataMaintained})
	eventually(t, "connected on 1102", func() bool { return b.State() == StateConnected })
	// The forwarder was woken by the change; each round trip gives it another
	// chance to act on it, so a resubscription on 1102 would show here.
	for i := range int64(20) {
		q0.send(quote(i))
		if u := recvQuote(t, ch, "a value after 1102"); bidOf(u) != i || u.Gap != "" {
			t.Fatalf("after 1102: %+v, want bid %d and no gap", u, i)
		}
	}
	if n := s.count(opSubscribeQuotes); n != 1 {
		t.Fatalf("%d inner subscriptions after 1102, want 1", n)
	}

	s.hub.Publish(broker.Event{Kind: broker.EventConnectionRestored, Code: broker.IBCodeRestoredDataLost})
	if u := recvQuote(t, ch, "the gap marker"); !isGapMarker(u) || u.Gap != GapDataLost {
		t.Fatalf("after 1101: %+v, want a gap marker %q", u, GapDataLost)
	}
	q1 := s.quoteSub(t, 1)
	if q0.ctx.Err() == nil {
		t.Error("the old subscription was not cancelled")
	}
	q1.send(quote(42))
	if u := recvQuote(t, ch, "the fresh value"); bidOf(u) != 42 || u.Gap != "" {
		t.Fatalf("fresh value %+v", u)
	}
	if st := b.Stats(); st.Reconnects != 0 || f.n() != 1 || s.count(opSubscribeQuotes) != 2 {
		t.Errorf("1101 touched the session or subscribed %d times: %+v", s.count(opSubscribeQuotes), st)
	}
}

// TestQuoteStreamEndsWhenRefusedForGood: a subscription the new session
// refuses as not found or not subscribed ends the channel after the gap.
func TestQuoteStreamEndsWhenRefusedForGood(t *testing.T) {
	for _, refusal := range []error{
		&broker.APIError{ReqID: 3, Code: 200, Message: "No security definition has been found"},
		&broker.APIError{ReqID: 3, Code: 354, Message: "Requested market data is not subscribed."},
	} {
		t.Run(refusal.Error(), func(t *testing.T) {
			f := &farm{prep: func(s *stub) {
				if s.id == 1 {
					s.fail(opSubscribeQuotes, refusal)
				}
			}}
			b, _, _ := newTest(t, f)
			connect(t, b)
			ch, err := b.SubscribeQuotes(t.Context(), stubAAPL)
			if err != nil {
				t.Fatal(err)
			}
			f.get(t, 0).quoteSub(t, 0)
			f.get(t, 0).dropSession()
			if u := recvQuote(t, ch, "the gap marker"); !isGapMarker(u) {
				t.Fatalf("after the loss: %+v", u)
			}
			awaitClosed(t, ch, "after the refusal")
			if n := f.get(t, 1).count(opSubscribeQuotes); n != 1 {
				t.Errorf("asked the new session %d times, want 1", n)
			}
		})
	}
}

// TestQuoteStreamRetriesPassingRefusal: a pacing refusal (IB 101, too many
// tickers) of the new subscription is asked again after a backoff.
func TestQuoteStreamRetriesPassingRefusal(t *testing.T) {
	f := &farm{}
	b, clk, _ := newTest(t, f)
	connect(t, b)
	ch, err := b.SubscribeQuotes(t.Context(), stubAAPL)
	if err != nil {
		t.Fatal(err)
	}
	s := f.get(t, 0)
	s.quoteSub(t, 0)
	s.fail(opSubscribeQuotes, fmt.Errorf("%w: max number of tickers has been reached", broker.ErrPacing))
	s.hub.Publish(broker.Event{Kind: broker.EventConnectionRestored, Code: broker.IBCodeRestoredDataLost})
	if u := recvQuote(t, ch, "the gap marker"); u.Gap != GapDataLost {
		t.Fatalf("after 1101: %+v", u)
	}
	clk.Advance(clk.waitPending(t, -1))
	s.quoteSub(t, 1).send(quote(7))
	if u := recvQuote(t, ch, "the fresh value"); bidOf(u) != 7 {
		t.Fatalf("fresh value %+v", u)
	}
	if n := s.count(opSubscribeQuotes); n != 3 {
		t.Errorf("%d inner subscriptions, want 3 (first, refused, granted)", n)
	}
}

// TestQuoteStreamEnds: the channel closes, and the inner subscription is
// cancelled, when the caller's context ends, on Disconnect and on Close; a
// first subscription's refusal is the caller's error.
func TestQuoteStreamEnds(t *testing.T) {
	f := &farm{}
	b, _, _ := newTest(t, f)
	if _, err := b.SubscribeQuotes(t.Context(), stubAAPL); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("before Connect: %v", err)
	}
	connect(t, b)
	s := f.get(t, 0)

	ctx, cancel := context.WithCancel(t.Context())
	ch, err := b.SubscribeQuotes(ctx, stubAAPL)
	if err != nil {
		t.Fatal(err)
	}
	q := s.quoteSub(t, 0)
	cancel()
	awaitClosed(t, ch, "after cancel")
	eventually(t, "the inner subscription cancelled", func() bool { return q.ctx.Err() != nil })

	s.fail(opSubscribeQuotes, &broker.APIError{ReqID: 3, Code: 200, Message: "No security definition has been found"})
	if _, err := b.SubscribeQuotes(t.Context(), stubAAPL); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("refused: %v", err)
	}

	ch, err = b.SubscribeQuotes(t.Context(), stubAAPL)
	if err != nil {
		t.Fatal(err)
	}
	s.quoteSub(t, 1)
	if err := b.Disconnect(t.Context()); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, ch, "after Disconnect")

	connect(t, b)
	ch, err = b.SubscribeQuotes(t.Context(), stubAAPL)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, ch, "after Close")
	if _, err := b.SubscribeQuotes(t.Context(), stubAAPL); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestQuoteStreamNeedsAnInnerStreamer: an inner Broker without the capability
// fails the subscription with ErrUnsupported.
func TestQuoteStreamNeedsAnInnerStreamer(t *testing.T) {
	b := New(func(context.Context) (broker.Broker, error) { return struct{ broker.Broker }{newStub(0)}, nil },
		WithHealthCheck(0, 0, 1))
	defer b.Close()
	connect(t, b)
	if _, err := b.SubscribeQuotes(t.Context(), stubAAPL); !errors.Is(err, broker.ErrUnsupported) {
		t.Errorf("got %v, want ErrUnsupported", err)
	}
}

// TestQuoteStreamEndedByInner: a stream the inner Broker ends while its
// session stays up is asked again of the same session after a short grace
// (news of a lost session or a 1101 would come meanwhile), with a gap marker
// first; a stream that keeps ending without a value is asked again only after
// a growing backoff.
func TestQuoteStreamEndedByInner(t *testing.T) {
	f := &farm{}
	b, clk, _ := newTest(t, f)
	connect(t, b)
	ch, err := b.SubscribeQuotes(t.Context(), stubAAPL)
	if err != nil {
		t.Fatal(err)
	}
	s := f.get(t, 0)
	q := s.quoteSub(t, 0)
	q.send(quote(1))
	recvQuote(t, ch, "the first value")
	q.end()
	clk.Advance(clk.waitPending(t, streamEndGrace))
	if u := recvQuote(t, ch, "the gap marker"); !isGapMarker(u) || u.Gap != GapStreamEnded {
		t.Fatalf("after the end: %+v", u)
	}
	q = s.quoteSub(t, 1) // at once: the first stream had delivered
	q.end()              // no value this time
	clk.Advance(clk.waitPending(t, streamEndGrace))
	clk.Advance(clk.waitPending(t, -1)) // the backoff before asking again
	s.quoteSub(t, 2).send(quote(3))
	// The second end's gap marker comes before the fresh value or, when the
	// subscriber had not taken it yet, merged into it (broker.Conflate keeps
	// a gap): either way no fresh value arrives without its gap.
	sawGap := false
	for {
		u := recvQuote(t, ch, "the fresh value")
		sawGap = sawGap || u.Gap == GapStreamEnded
		if bidOf(u) == 3 {
			if !sawGap {
				t.Fatalf("the fresh value came without a gap before or with it: %+v", u)
			}
			break
		}
	}
	if st := b.Stats(); st.Reconnects != 0 || s.count(opSubscribeQuotes) != 3 {
		t.Errorf("subscribed %d times, stats %+v; want 3 on the same session", s.count(opSubscribeQuotes), st)
	}
}

// TestQuoteSubscribeFindsSessionLost: a first subscription that finds the
// worker dead (robust did not know yet) is made again on the replacement.
func TestQuoteSubscribeFindsSessionLost(t *testing.T) {
	f := &farm{}
	b, _, _ := newTest(t, f)
	connect(t, b)
	f.get(t, 0).kill()
	ch, err := b.SubscribeQuotes(t.Context(), stubAAPL)
	if err != nil {
		t.Fatalf("SubscribeQuotes on a dead worker: %v", err)
	}
	f.get(t, 1).quoteSub(t, 0).send(quote(5))
	if u := recvQuote(t, ch, "the first value"); bidOf(u) != 5 || u.Gap != "" {
		t.Fatalf("first value %+v", u)
	}
	if n := f.get(t, 0).count(opSubscribeQuotes); n != 1 {
		t.Errorf("asked the dead worker %d times", n)
	}
}
