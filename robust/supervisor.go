package robust

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// The supervisor: one goroutine per connected period that restores lost
// sessions and runs the health monitor.

func (b *Broker) startSupervisorLocked() {
	ctx, stop := context.WithCancel(b.root)
	done := make(chan struct{})
	b.superStop, b.superDone = stop, done
	b.wg.Add(1)
	go b.supervise(ctx, done)
}

// supervise restores lost sessions and runs the health monitor until ctx is done.
func (b *Broker) supervise(ctx context.Context, done chan struct{}) {
	defer b.wg.Done()
	defer close(done)
	misses := 0
	var tick Timer
	arm := func() {
		if tick != nil {
			tick.Stop()
		}
		if b.cfg.healthInterval > 0 {
			tick = b.cfg.clock.NewTimer(b.cfg.healthInterval)
		}
	}
	tickC := func() <-chan time.Time {
		if tick == nil {
			return nil
		}
		return tick.C()
	}
	arm()
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for {
		if b.needsRecovery() {
			b.recover(ctx)
			misses = 0
			arm()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		case <-b.probe:
			misses = b.check(ctx, misses)
		case <-tickC():
			misses = b.check(ctx, misses)
			arm()
		}
	}
}

// sessionWanted reports whether the user's Connect succeeded with no Disconnect since.
func (b *Broker) sessionWanted() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wanted
}

func (b *Broker) needsRecovery() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.closed && b.wanted && !b.sessionOK
}

// check pings the session once and returns the updated count of missed pings.
func (b *Broker) check(ctx context.Context, misses int) int {
	b.mu.Lock()
	in, gen, ok := b.inner, b.gen, b.sessionOK && b.wanted
	b.mu.Unlock()
	if !ok || in == nil {
		return misses
	}
	pctx, cancel := withTimeout(ctx, b.cfg.clock, b.cfg.healthTimeout)
	err := in.Ping(pctx)
	expired := err != nil && ctx.Err() == nil && timedOut(pctx)
	cancel()
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil:
		return misses
	case expired || errors.Is(err, broker.ErrTimeout):
		misses++
		b.log.Warn("health ping missed", "misses", misses, "of", b.cfg.healthMisses)
		if misses >= b.cfg.healthMisses {
			b.lost(in, gen, fmt.Errorf("%w: %d health ping(s) missed", broker.ErrUnavailable, misses), true)
			return 0
		}
		select { // check again soon rather than after a whole interval
		case b.probe <- struct{}{}:
		default:
		}
		return misses
	default:
		b.observe(in, gen, err, false)
		return misses
	}
}

// recover re-establishes the session with the last parameters, with backoff, until it
// succeeds, the session is no longer wanted, or ctx is done.
func (b *Broker) recover(ctx context.Context) {
	if err := b.lock(ctx); err != nil {
		return
	}
	defer b.unlock()
	for n := 1; ; n++ {
		b.mu.Lock()
		if b.closed || !b.wanted || b.sessionOK {
			b.mu.Unlock()
			return
		}
		p := b.params
		b.mu.Unlock()
		timeout := b.cfg.attemptTimeout
		if timeout > 0 {
			timeout = max(timeout, p.Timeout)
		}
		actx, cancel := withTimeout(ctx, b.cfg.clock, timeout)
		_, err := b.establish(actx, p, false)
		expired := err != nil && ctx.Err() == nil && timedOut(actx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		if expired {
			b.markRestart()
			err = fmt.Errorf("%w: reconnect attempt timed out after %v (%v)", broker.ErrTimeout, timeout, err)
		}
		b.noteError(err)
		b.mu.Lock()
		b.cause = err
		b.mu.Unlock()
		d := b.cfg.backoff.Delay(n, b.cfg.rand())
		b.log.Warn("reconnect failed", "attempt", n, "wait", d, "error", err)
		if sleep(ctx, b.cfg.clock, d, b.closing) != nil {
			return
		}
	}
}
