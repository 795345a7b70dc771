package ibkr

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Pacing is the rate the adapter keeps its requests within, on the client side
// (docs/adr/0015-market-data-and-pacing.md): IB disconnects a client that sends
// more than 50 messages in a second (error 100) and refuses historical requests
// beyond about 60 in 10 minutes or identical to one made in the last 15 seconds
// (error 162). A call that would break a limit waits for its turn, and the
// wait counts against its context.
type Pacing struct {
	// MessagesPerSecond bounds the messages sent in any one second, every
	// message of the session included (requests, cancels, pings). The adapter
	// keeps a margin below it for scheduling jitter (see messageBucket).
	MessagesPerSecond int
	// HistoricalRequests bounds the historical requests within HistoricalWindow.
	HistoricalRequests int
	HistoricalWindow   time.Duration
	// IdenticalWithin is how long an identical historical request waits after the last.
	IdenticalWithin time.Duration
}

// IBPacing returns the limits IB documents.
func IBPacing() Pacing {
	return Pacing{MessagesPerSecond: 50, HistoricalRequests: 60, HistoricalWindow: 10 * time.Minute,
		IdenticalWithin: 15 * time.Second}
}

// WithPacing sets the limits the adapter keeps (IBPacing by default); a zero
// field keeps IB's value. A gateway configured stricter than IB (a test's fake)
// is matched by passing its limits.
func WithPacing(p Pacing) Option {
	return func(o *options) {
		d := IBPacing()
		if p.MessagesPerSecond <= 0 {
			p.MessagesPerSecond = d.MessagesPerSecond
		}
		if p.HistoricalRequests <= 0 {
			p.HistoricalRequests = d.HistoricalRequests
		}
		if p.HistoricalWindow <= 0 {
			p.HistoricalWindow = d.HistoricalWindow
		}
		if p.IdenticalWithin <= 0 {
			p.IdenticalWithin = d.IdenticalWithin
		}
		o.pacing = p
	}
}

// pacer holds the adapter's message bucket and historical request history.
// Time is read through now, so that tests can reason about the schedule.
type pacer struct {
	now func() time.Time

	mu       sync.Mutex
	interval time.Duration // one message per interval on average
	burst    int           // messages that may go at once after a quiet spell
	next     time.Time     // the earliest time of the next slot, tokens spent ahead
	hist     []time.Time   // historical requests admitted within the window
	last     map[string]time.Time
	p        Pacing
}

// newPacer keeps at most rate+burst messages in any second: rate is 80% of the
// limit and the burst a tenth of it, so a one-second window holds 90% of the
// limit at most; the rest absorbs the jitter between a slot and its write and
// the handshake's messages.
func newPacer(p Pacing) *pacer {
	rate := max(p.MessagesPerSecond*8/10, 1)
	return &pacer{now: time.Now, interval: time.Second / time.Duration(rate),
		burst: max(p.MessagesPerSecond/10, 1), last: map[string]time.Time{}, p: p}
}

// reserveLocked takes the next message slot and returns when it opens.
func (p *pacer) reserveLocked(now time.Time) time.Time {
	floor := now.Add(-time.Duration(p.burst-1) * p.interval)
	if p.next.Before(floor) {
		p.next = floor
	}
	at := p.next
	p.next = p.next.Add(p.interval)
	if at.Before(now) {
		return now
	}
	return at
}

// take spends a slot without waiting, for messages that must go now (cancels,
// handshake, the operations that predate pacing): later callers wait longer.
func (p *pacer) take() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reserveLocked(p.now())
}

// wait takes n message slots and waits until the last opens, or until ctx ends.
func (p *pacer) wait(ctx context.Context, n int) error {
	p.mu.Lock()
	now := p.now()
	var at time.Time
	for range n {
		at = p.reserveLocked(now)
	}
	p.mu.Unlock()
	return sleepUntil(ctx, p.now, at)
}

// waitHistorical waits until a historical request with key may go: fewer than
// HistoricalRequests in the window and none identical within IdenticalWithin.
// The request is recorded as made when wait returns nil.
func (p *pacer) waitHistorical(ctx context.Context, key string) error {
	for {
		p.mu.Lock()
		now := p.now()
		i := 0
		for i < len(p.hist) && now.Sub(p.hist[i]) >= p.p.HistoricalWindow {
			i++
		}
		p.hist = p.hist[i:]
		for k, t := range p.last {
			if now.Sub(t) >= p.p.IdenticalWithin {
				delete(p.last, k)
			}
		}
		var until time.Time
		if t, ok := p.last[key]; ok {
			until = t.Add(p.p.IdenticalWithin)
		}
		if len(p.hist) >= p.p.HistoricalRequests {
			if t := p.hist[0].Add(p.p.HistoricalWindow); t.After(until) {
				until = t
			}
		}
		if until.IsZero() {
			p.hist = append(p.hist, now)
			p.last[key] = now
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
		if err := sleepUntil(ctx, p.now, until); err != nil {
			return err
		}
	}
}

// sleepUntil waits until at (by now's clock) or until ctx ends.
func sleepUntil(ctx context.Context, now func() time.Time, at time.Time) error {
	d := at.Sub(now())
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ibkr: waiting for IB's pacing: %w", ctx.Err())
	}
}
