package robust

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// Retries: call runs one operation of the port on the current session, do
// retries it by its Op's idempotency with backoff, under the breaker, and
// classifies each attempt's error (permanent, session lost, retryable).

// call runs f on the current session's inner Broker with retries.
func call[T any](b *Broker, ctx context.Context, op broker.Op, f func(context.Context, broker.Broker) (T, error)) (T, error) {
	if !b.isClosed() && !b.sessionWanted() {
		// No session is wanted (never connected, after Disconnect or a failed
		// Connect): the port's answer is ErrNotConnected, whatever the breaker says.
		b.calls.Add(1)
		return *new(T), broker.ErrNotConnected
	}
	var (
		last    broker.Broker // inner Broker of the last attempt that reached one
		lastGen uint64
		expired bool // the last attempt timed out and did not start a recovery
	)
	v, err := do(b, ctx, op, b.cfg.attemptTimeout, func(actx context.Context) (T, error) {
		var zero T
		last, expired = nil, false
		in, gen, err := b.acquire(actx)
		if err != nil {
			return zero, err
		}
		last, lastGen = in, gen
		v, err := f(actx, in)
		if err != nil && b.observe(in, gen, err, timedOut(actx)) {
			// The next attempt waits in acquire for the restored session; a backoff
			// on top would only delay the caller.
			last = nil
			err = sessionLostError{err}
		}
		expired = timedOut(actx)
		return v, err
	})
	if last != nil {
		b.countTimeouts(last, lastGen, err, expired)
	}
	return v, err
}

// permanentError marks an error that must be returned at once, not retried, and not
// counted by the breaker.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// sessionLostError marks a failure that started (or joined) a recovery: the retry
// needs no backoff because it waits for the new session.
type sessionLostError struct{ err error }

func (e sessionLostError) Error() string { return e.err.Error() }
func (e sessionLostError) Unwrap() error { return e.err }

// retryable reports whether err (from an inner Broker or a Dialer) may go away by
// itself, which makes it worth a retry and a failure for the breaker.
func retryable(err error) bool {
	var p permanentError
	switch {
	case errors.As(err, &p),
		dataError(err), // the same data would fail again
		errors.Is(err, broker.ErrInvalidArgument),
		errors.Is(err, broker.ErrUnsupported),
		errors.Is(err, broker.ErrNotFound),
		errors.Is(err, broker.ErrNotSubscribed),
		errors.Is(err, broker.ErrPacing), // a retry would make the gateway's pacing worse
		errors.Is(err, broker.ErrAlreadyConnected):
		return false
	case errors.Is(err, broker.ErrUnavailable),
		errors.Is(err, broker.ErrNotConnected),
		errors.Is(err, broker.ErrTimeout),
		errors.Is(err, broker.ErrGatewayUnreachable),
		errors.Is(err, broker.ErrHandshakeFailed),
		errors.Is(err, broker.ErrClientIDInUse),
		errors.Is(err, broker.ErrProtocol),
		errors.Is(err, broker.ErrClosed):
		return true
	}
	// A gateway error with a code that means nothing above (no security definition,
	// invalid request, ...) is an answer, not an outage. Anything else (an I/O error a
	// transport did not map) is presumed transient.
	return broker.IBCode(err) == 0
}

// do runs attempt until it succeeds, fails permanently, the caller's context is done,
// or op has had its attempts; in between it waits a jittered backoff.
func do[T any](b *Broker, ctx context.Context, op broker.Op, timeout time.Duration, attempt func(context.Context) (T, error)) (T, error) {
	var zero T
	b.calls.Add(1)
	maxAttempts := 1
	if op.Idempotent() {
		maxAttempts = b.cfg.maxAttempts
	}
	var last error
	for n := 1; ; n++ {
		if b.isClosed() {
			return zero, broker.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return zero, canceled(err, n-1, last)
		}
		t, ok, tr := b.brk.allow(b.cfg.clock.Now())
		b.breakerChanged(tr, nil)
		if !ok {
			if last != nil {
				return zero, fmt.Errorf("giving up after %d attempt(s): %w (last error: %w)", n-1, ErrCircuitOpen, last)
			}
			return zero, ErrCircuitOpen
		}
		if n > 1 {
			b.retries.Add(1)
		}
		actx, cancel := withTimeout(ctx, b.cfg.clock, timeout)
		v, err := attempt(actx)
		expired := err != nil && ctx.Err() == nil && timedOut(actx)
		cancel()
		switch {
		case err == nil:
			b.breakerChanged(b.brk.done(t, outcomeSuccess, b.cfg.clock.Now()), nil)
			return v, nil
		case ctx.Err() != nil:
			b.breakerChanged(b.brk.done(t, outcomeNeutral, b.cfg.clock.Now()), nil)
			return zero, canceled(ctx.Err(), n, err)
		case expired:
			err = fmt.Errorf("%w: %s attempt timed out after %v (%v)", broker.ErrTimeout, op, timeout, err)
		}
		if b.isClosed() {
			b.breakerChanged(b.brk.done(t, outcomeNeutral, b.cfg.clock.Now()), nil)
			return zero, broker.ErrClosed
		}
		if !retryable(err) {
			b.breakerChanged(b.brk.done(t, outcomeNeutral, b.cfg.clock.Now()), nil)
			var p permanentError
			if errors.As(err, &p) {
				err = p.err
			}
			return zero, err
		}
		var lostErr sessionLostError
		waitForSession := errors.As(err, &lostErr)
		if waitForSession {
			err = lostErr.err
		}
		b.failures.Add(1)
		b.noteError(err)
		b.breakerChanged(b.brk.done(t, outcomeFailure, b.cfg.clock.Now()), err)
		last = err
		if n >= maxAttempts {
			return zero, fmt.Errorf("giving up after %d attempt(s): %w", n, err)
		}
		d := b.cfg.backoff.Delay(n, b.cfg.rand())
		if waitForSession {
			d = 0
		}
		b.log.Debug("retrying", "op", op, "attempt", n, "wait", d, "error", err)
		if serr := sleep(ctx, b.cfg.clock, d, b.closing); serr != nil {
			if errors.Is(serr, errStopped) {
				return zero, broker.ErrClosed
			}
			return zero, canceled(serr, n, last)
		}
	}
}

// canceled builds the error of a call whose context ended: it matches ctxErr.
func canceled(ctxErr error, attempts int, last error) error {
	switch {
	case last == nil:
		return ctxErr
	case errors.Is(last, ctxErr):
		return last
	}
	return fmt.Errorf("%w after %d attempt(s) (last error: %v)", ctxErr, attempts, last)
}
