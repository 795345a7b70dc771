package fakes

import (
	"context"
	"fmt"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// This file is the Memory's quote streams (broker.QuoteStreamer): values are
// what Snapshot answers from the Script, and SetQuote and QuoteGap let a test
// produce ticks and gap markers at any rate without a gateway.

var _ broker.QuoteStreamer = (*Memory)(nil)

// quoteSub is one subscriber of a Memory's quote stream.
type quoteSub struct {
	contract broker.Contract // as the subscriber named it
	conID    int64           // the instrument's, which tells instruments apart
	dataType broker.MarketDataType
	ch       chan broker.QuoteUpdate
	last     quoteState // the state last delivered
	stop     func() bool
}

// quoteState is what a change of an instrument's top of book is judged by.
type quoteState struct {
	q      InstrumentQuote
	halted bool
}

// SubscribeQuotes implements broker.QuoteStreamer: the channel receives
// Snapshot's answer at once (the hook sees broker.OpSnapshot, and the call
// fails as Snapshot does), then the instrument's quote after every SetQuote
// for it and every SetScript that changes it, and the gap markers QuoteGap
// sends, conflated by broker.Conflate. Each value is Instrument.SnapshotAs of
// the market data type set when the stream was opened, with the caller's
// Contract. It is closed when ctx is done, on Disconnect and on Close.
func (m *Memory) SubscribeQuotes(ctx context.Context, c broker.Contract) (<-chan broker.QuoteUpdate, error) {
	q, err := m.Snapshot(ctx, c)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || !m.connected {
		return nil, m.sessionErrLocked()
	}
	in, err := m.script.lookupOne(c)
	if err != nil { // SetScript removed it meanwhile
		return nil, err
	}
	ch := make(chan broker.QuoteUpdate, 1)
	ch <- broker.QuoteUpdate{Quote: q}
	sub := &quoteSub{contract: c, conID: in.Contract.ConID, dataType: m.dataType, ch: ch,
		last: quoteState{q: in.Quote, halted: in.Halted}}
	if m.quoteSubs == nil {
		m.quoteSubs = map[*quoteSub]struct{}{}
	}
	m.quoteSubs[sub] = struct{}{}
	m.quoteSubsChangedLocked()
	sub.stop = context.AfterFunc(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.endQuoteSubLocked(sub)
	})
	return ch, nil
}

// SetQuote sets the scripted quote of the one instrument c names (as
// Snapshot finds it) and sends it to every quote stream of that instrument as
// one tick, even when it repeats the previous quote. It returns how many
// streams it reached, or the error Snapshot would answer for c (no session is
// needed). Instruments are told apart by con id.
func (m *Memory) SetQuote(c broker.Contract, q InstrumentQuote) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in, err := m.script.lookupOne(c)
	if err != nil {
		return 0, err
	}
	for i := range m.script.Instruments {
		if m.script.Instruments[i].Contract.ConID == in.Contract.ConID {
			m.script.Instruments[i].Quote = q
		}
	}
	in.Quote = q
	return m.tickLocked(in), nil
}

// QuoteGap sends a gap marker with reason (a QuoteUpdate whose Quote is zero
// but for Contract, broker.QuoteUpdate.Gap) to every quote stream of the one
// instrument c names, as a decorator that restores a stream does, and returns
// how many streams it reached. reason must not be empty.
func (m *Memory) QuoteGap(c broker.Contract, reason string) (int, error) {
	if reason == "" {
		return 0, fmt.Errorf("%w: a gap needs a reason", broker.ErrInvalidArgument)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	in, err := m.script.lookupOne(c)
	if err != nil {
		return 0, err
	}
	n := 0
	for sub := range m.quoteSubs {
		if sub.conID == in.Contract.ConID {
			broker.Conflate(sub.ch, broker.QuoteUpdate{Quote: broker.Quote{Contract: sub.contract}, Gap: reason})
			n++
		}
	}
	return n, nil
}

// tickLocked sends in's quote to each of its streams as one tick and returns
// how many it reached.
func (m *Memory) tickLocked(in Instrument) int {
	n := 0
	now := time.Now()
	for sub := range m.quoteSubs {
		if sub.conID == in.Contract.ConID && sub.deliver(in, now) {
			n++
		}
	}
	return n
}

// publishQuotesLocked sends every quote stream its instrument's quote from the
// current Script if it changed (SetScript).
func (m *Memory) publishQuotesLocked() {
	now := time.Now()
	for sub := range m.quoteSubs {
		in, err := m.script.lookupOne(sub.contract)
		if err == nil && in.Contract.ConID == sub.conID && sub.last != (quoteState{q: in.Quote, halted: in.Halted}) {
			sub.deliver(in, now)
		}
	}
}

// deliver conflates in's quote at now into sub's channel, unless the stream's
// market data type is one the instrument does not serve. Under the Memory's mu.
func (sub *quoteSub) deliver(in Instrument, now time.Time) bool {
	q, err := in.SnapshotAs(sub.dataType, now)
	if err != nil {
		return false
	}
	q.Contract = sub.contract
	sub.last = quoteState{q: in.Quote, halted: in.Halted}
	broker.Conflate(sub.ch, broker.QuoteUpdate{Quote: q})
	return true
}

// endQuoteSubLocked closes sub's channel, once.
func (m *Memory) endQuoteSubLocked(sub *quoteSub) {
	if _, ok := m.quoteSubs[sub]; ok {
		delete(m.quoteSubs, sub)
		sub.stop()
		close(sub.ch)
		m.quoteSubsChangedLocked()
	}
}

// quoteSubsChangedLocked wakes the callers of WaitQuoteStreams.
func (m *Memory) quoteSubsChangedLocked() {
	if m.quoteSubsChanged != nil {
		close(m.quoteSubsChanged)
		m.quoteSubsChanged = nil
	}
}

// QuoteStreams reports how many quote streams are live.
func (m *Memory) QuoteStreams() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.quoteSubs)
}

// WaitQuoteStreams waits until exactly n quote streams are live, or ctx is
// done: a test's way to see that a subscription or its cancellation reached
// the Memory.
func (m *Memory) WaitQuoteStreams(ctx context.Context, n int) error {
	for {
		m.mu.Lock()
		got := len(m.quoteSubs)
		if m.quoteSubsChanged == nil {
			m.quoteSubsChanged = make(chan struct{})
		}
		changed := m.quoteSubsChanged
		m.mu.Unlock()
		if got == n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("fakes: memory: wait for %d quote stream(s) (have %d): %w", n, got, ctx.Err())
		}
	}
}
