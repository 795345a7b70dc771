package robust

import (
	"fmt"
	"sync"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// ErrCircuitOpen is returned, without calling the inner Broker, while the circuit
// breaker is open (or half-open with its probe in flight). errors.Is reports it as
// broker.ErrUnavailable too, so callers and transports that only know the port's
// sentinels treat it as "try later".
var ErrCircuitOpen = fmt.Errorf("robust: circuit breaker open: %w", broker.ErrUnavailable)

// BreakerState is the state of the circuit breaker.
type BreakerState int

// The breaker's states.
const (
	BreakerClosed   BreakerState = iota // calls go through; consecutive failures are counted
	BreakerOpen                         // calls fail at once with ErrCircuitOpen until the cool-down ends
	BreakerHalfOpen                     // one probe call goes through; its outcome closes or reopens the breaker
)

var breakerNames = [...]string{"closed", "open", "half-open"}

// String returns closed, open or half-open.
func (s BreakerState) String() string {
	if s >= 0 && int(s) < len(breakerNames) {
		return breakerNames[s]
	}
	return fmt.Sprintf("BreakerState(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler with String.
func (s BreakerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// outcome is what an attempt tells the breaker.
type outcome int

const (
	outcomeSuccess outcome = iota // the inner Broker answered
	outcomeFailure                // the attempt failed for a reason that says the service is unwell
	outcomeNeutral                // cancelled by the caller, or a permanent error: says nothing about health
)

// breaker is a consecutive-failure circuit breaker in the manner of sony/gobreaker.
// Outcomes are tagged with the generation they were admitted in, so the result of a
// call admitted before a transition never counts against the state after it.
type breaker struct {
	threshold int           // consecutive failures that open the breaker; <= 0 disables it
	cooldown  time.Duration // time open before a probe

	mu       sync.Mutex
	state    BreakerState
	gen      uint64
	failures int // consecutive failures while closed
	openedAt time.Time
	probing  bool // half-open: the probe is in flight
}

type ticket struct {
	gen   uint64
	probe bool
}

// transition is a change of breaker state, for the state-change hook.
type transition struct {
	from, to BreakerState
}

func (b *breaker) current(now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !now.Before(b.openedAt.Add(b.cooldown)) {
		return BreakerHalfOpen
	}
	return b.state
}

// allow admits a call or refuses it; tr is non-nil if admitting moved the breaker
// from open to half-open.
func (b *breaker) allow(now time.Time) (t ticket, ok bool, tr *transition) {
	if b.threshold <= 0 {
		return ticket{}, true, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen {
		if now.Before(b.openedAt.Add(b.cooldown)) {
			return ticket{}, false, nil
		}
		tr = b.set(BreakerHalfOpen, now)
	}
	if b.state == BreakerHalfOpen {
		if b.probing {
			return ticket{}, false, tr
		}
		b.probing = true
		return ticket{gen: b.gen, probe: true}, true, tr
	}
	return ticket{gen: b.gen}, true, tr
}

// done records the outcome of an admitted call.
func (b *breaker) done(t ticket, o outcome, now time.Time) *transition {
	if b.threshold <= 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen != b.gen {
		return nil // admitted under an earlier state
	}
	switch b.state {
	case BreakerClosed:
		switch o {
		case outcomeSuccess:
			b.failures = 0
		case outcomeFailure:
			b.failures++
			if b.failures >= b.threshold {
				return b.set(BreakerOpen, now)
			}
		}
	case BreakerHalfOpen:
		if !t.probe {
			return nil
		}
		switch o {
		case outcomeSuccess:
			return b.set(BreakerClosed, now)
		case outcomeFailure:
			return b.set(BreakerOpen, now)
		default:
			b.probing = false // let another call probe
		}
	}
	return nil
}

func (b *breaker) set(s BreakerState, now time.Time) *transition {
	tr := &transition{from: b.state, to: s}
	b.state = s
	b.gen++
	b.failures = 0
	b.probing = false
	if s == BreakerOpen {
		b.openedAt = now
	}
	return tr
}
