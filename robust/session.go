package robust

import (
	"context"
	"errors"
	"fmt"

	"github.com/brokerkit/brokerkit/broker"
)

// The session: acquiring the inner Broker of the current session, noticing
// that it is lost, establishing a new one (dialing a fresh inner Broker when
// needed) and forwarding the inner Broker's events.

// acquire returns the inner Broker of the current session, waiting (within ctx) while
// the session is being restored.
func (b *Broker) acquire(ctx context.Context) (broker.Broker, uint64, error) {
	for {
		b.mu.Lock()
		switch {
		case b.closed:
			b.mu.Unlock()
			return nil, 0, permanent(broker.ErrClosed)
		case !b.wanted:
			b.mu.Unlock()
			return nil, 0, permanent(broker.ErrNotConnected)
		case b.sessionOK && b.inner != nil:
			in, gen := b.inner, b.gen
			b.mu.Unlock()
			return in, gen, nil
		}
		ch, cause := b.changed, b.cause
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			if cause == nil {
				cause = errors.New("session lost")
			}
			return nil, 0, fmt.Errorf("%w: reconnecting: %v", broker.ErrUnavailable, cause)
		}
	}
}

// countTimeouts counts calls in a row (not attempts: a call counts once, after
// its retries) that timed out on a session still deemed up, and recovers the session as a lost one after WithSickAfter of them: an
// operation wedged on the gateway side (a lost end marker, say) is invisible to
// health pings, which are answered.
func (b *Broker) countTimeouts(in broker.Broker, gen uint64, err error, expired bool) {
	switch {
	case err == nil:
		b.timeouts.Store(0)
	case expired, errors.Is(err, broker.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		n := b.timeouts.Add(1)
		if n < int64(b.cfg.sickAfter) {
			return
		}
		b.timeouts.Store(0)
		b.log.Warn("calls keep timing out while the session is up: recovering it", "calls", n, "last_error", err)
		b.lost(in, gen, fmt.Errorf("%w: %d calls in a row timed out (last: %v)", broker.ErrNotConnected, n, err), false)
	}
}

// dataError reports whether err is a protocol error of one call's data (a
// malformed value) rather than of the session: the session goes on.
func dataError(err error) bool {
	return errors.Is(err, broker.ErrProtocol) && !errors.Is(err, broker.ErrNotConnected) &&
		!errors.Is(err, broker.ErrUnavailable)
}

// observe looks at an inner Broker's failure and asks for recovery if it says the
// session or the inner Broker is gone (and then reports true), or for a health check
// if the call timed out. A data error (dataError) is the call's alone.
func (b *Broker) observe(in broker.Broker, gen uint64, err error, expired bool) bool {
	switch {
	case expired:
		select {
		case b.probe <- struct{}{}:
		default:
		}
	case errors.Is(err, broker.ErrUnavailable), errors.Is(err, broker.ErrClosed):
		b.lost(in, gen, err, true)
		return true
	case errors.Is(err, broker.ErrNotConnected): // a session-ending protocol error carries it too
		b.lost(in, gen, err, false)
		return true
	}
	return false
}

// lost marks the session of (in, gen) lost and wakes the supervisor; restart says the
// inner Broker itself must be replaced. It ignores news about an older session.
func (b *Broker) lost(in broker.Broker, gen uint64, cause error, restart bool) {
	b.mu.Lock()
	if b.closed || !b.wanted || b.inner != in || (gen != 0 && gen != b.gen) {
		b.mu.Unlock()
		return
	}
	if !b.sessionOK {
		b.needRestart = b.needRestart || restart || !b.cfg.inPlace
		b.mu.Unlock()
		return
	}
	restart = restart || !b.cfg.inPlace
	b.sessionOK = false
	b.needRestart = restart
	b.cause = cause
	b.setStateLocked(StateReconnecting, cause)
	// Published under b.mu (Publish never blocks), so that it cannot be overtaken
	// by the EventConnectionRestored of the session that replaces this one.
	b.hub.Publish(broker.Event{
		Kind:    broker.EventConnectionLost,
		Time:    b.cfg.clock.Now(),
		Message: fmt.Sprintf("robust: session lost (%v); reconnecting", cause),
	})
	b.unlockAndFlush()
	b.log.Warn("session lost; reconnecting", "restart", restart, "error", cause)
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// establish makes one attempt to open a session with p: it dials an inner Broker if
// needed (or if the last attempt left it suspect), connects it, and on success makes
// it the current session. user says the caller is Connect rather than recovery.
func (b *Broker) establish(ctx context.Context, p broker.ConnectParams, user bool) (broker.ConnectInfo, error) {
	b.mu.Lock()
	in, restart, conflicts := b.inner, b.needRestart, b.conflicts
	b.mu.Unlock()
	fresh := false
	if in == nil || restart || exited(in) {
		if in != nil {
			b.dropInner(in)
		}
		var err error
		if in, err = b.dialInner(ctx); err != nil {
			return broker.ConnectInfo{}, err
		}
		fresh = true
	} else if !user {
		// Reuse after a loss: make sure the inner Broker forgets the old session.
		if err := in.Disconnect(ctx); err != nil {
			b.markRestart()
			return broker.ConnectInfo{}, fmt.Errorf("robust: reset inner broker: %w", err)
		}
	}
	q := p
	q.ClientID = b.cfg.clientID(p.ClientID, conflicts)
	info, err := in.Connect(ctx, q)
	if err != nil {
		b.mu.Lock()
		switch {
		case errors.Is(err, broker.ErrClientIDInUse):
			b.conflicts++
		case errors.Is(err, broker.ErrGatewayUnreachable), errors.Is(err, broker.ErrInvalidArgument):
			// the inner Broker is fine; the gateway is not there
		case errors.Is(err, broker.ErrAlreadyConnected):
			b.mu.Unlock()
			_ = in.Disconnect(ctx)
			return broker.ConnectInfo{}, fmt.Errorf("robust: inner broker was still connected; reset it: %w", broker.ErrUnavailable)
		case errors.Is(err, broker.ErrUnavailable), errors.Is(err, broker.ErrClosed):
			// a dead worker: the next attempt dials a fresh one without waiting
			b.needRestart = true
			err = sessionLostError{err}
		default:
			// stalled or failed handshake: start afresh next time
			b.needRestart = true
		}
		b.mu.Unlock()
		return broker.ConnectInfo{}, err
	}
	b.mu.Lock()
	if b.closed || b.inner != in || (!user && !b.wanted) {
		closed := b.closed
		b.mu.Unlock()
		_ = in.Disconnect(context.WithoutCancel(ctx))
		if closed {
			return broker.ConnectInfo{}, permanent(broker.ErrClosed)
		}
		return broker.ConnectInfo{}, permanent(broker.ErrNotConnected)
	}
	b.gen++
	b.sessionOK = true
	b.needRestart = false
	b.conflicts = 0
	b.cause = nil
	b.params = p
	b.clientID = q.ClientID
	reconnected := b.wanted
	if reconnected {
		b.reconnects.Add(1) // before anyone can be served by the new session
	}
	if user {
		b.wanted = true
		b.startSupervisorLocked()
	}
	b.setStateLocked(StateConnected, nil)
	if reconnected { // under b.mu: ordered after the EventConnectionLost it answers
		b.hub.Publish(broker.Event{
			Kind:    broker.EventConnectionRestored,
			Time:    b.cfg.clock.Now(),
			Message: "robust: session restored",
		})
	}
	b.signalLocked()
	b.unlockAndFlush()
	if reconnected {
		b.log.Info("session restored", "fresh_inner", fresh, "client_id", q.ClientID)
	}
	return info, nil
}

func (b *Broker) markRestart() {
	b.mu.Lock()
	b.needRestart = true
	b.mu.Unlock()
}

func exited(in broker.Broker) bool {
	e, ok := in.(Exiter)
	if !ok {
		return false
	}
	select {
	case <-e.Exited():
		return true
	default:
		return false
	}
}

// dialInner dials a fresh inner Broker and makes it current.
func (b *Broker) dialInner(ctx context.Context) (broker.Broker, error) {
	in, err := b.dial(ctx)
	if err != nil {
		if !errors.Is(err, broker.ErrInvalidArgument) && !errors.Is(err, broker.ErrUnavailable) && ctx.Err() == nil {
			err = fmt.Errorf("%w: dial: %w", broker.ErrUnavailable, err)
		}
		return nil, err
	}
	if in == nil {
		return nil, fmt.Errorf("%w: dialer returned no broker", broker.ErrUnavailable)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = in.Close()
		return nil, permanent(broker.ErrClosed)
	}
	wctx, stop := context.WithCancel(b.root)
	ch, serr := in.Subscribe(wctx)
	if serr != nil {
		b.log.Warn("cannot subscribe to the inner broker's events", "error", serr)
	}
	b.inner, b.innerStop = in, stop
	b.needRestart = false
	first := !b.dialed
	b.dialed = true
	b.wg.Add(1)
	go b.watch(wctx, in, ch)
	b.mu.Unlock()
	if !first {
		b.restarts.Add(1)
	}
	b.log.Debug("dialed inner broker", "pid", pidOf(in))
	return in, nil
}

func pidOf(in broker.Broker) int {
	if p, ok := in.(PIDer); ok {
		return p.Pid()
	}
	return 0
}

// dropInner closes in if it is still the current inner Broker.
func (b *Broker) dropInner(in broker.Broker) {
	b.mu.Lock()
	if b.inner != in {
		b.mu.Unlock()
		return
	}
	stop := b.innerStop
	b.inner, b.innerStop = nil, nil
	b.sessionOK = false
	// Close the old inner Broker in the background: a transport's Close may wait a
	// grace period for a stuck child, and the replacement should not wait with it.
	// Close waits for it (the Add happens before Close can start waiting).
	async := !b.closed
	if async {
		b.wg.Add(1)
	}
	b.mu.Unlock()
	if stop != nil {
		stop()
	}
	closeInner := func() {
		if err := in.Close(); err != nil {
			b.log.Debug("closing the old inner broker", "error", err)
		}
	}
	if !async {
		closeInner()
		return
	}
	go func() {
		defer b.wg.Done()
		closeInner()
	}()
}

// watch forwards in's events and turns its death into a recovery.
func (b *Broker) watch(ctx context.Context, in broker.Broker, ch <-chan broker.Event) {
	defer b.wg.Done()
	var died <-chan struct{}
	if e, ok := in.(Exiter); ok {
		died = e.Exited()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-died:
			died = nil
			b.lost(in, 0, fmt.Errorf("%w: worker exited", broker.ErrUnavailable), true)
		case e, ok := <-ch:
			if !ok {
				if ctx.Err() == nil {
					b.lost(in, 0, fmt.Errorf("%w: inner broker's event stream ended", broker.ErrUnavailable), true)
				}
				ch = nil
				if died == nil {
					return
				}
				continue
			}
			b.onEvent(in, e)
		}
	}
}

func (b *Broker) onEvent(in broker.Broker, e broker.Event) {
	switch {
	case e.Kind == broker.EventConnectionLost && e.Code == broker.IBCodeConnectivityLost:
		// The gateway lost IB; our socket is fine and the gateway reconnects by itself.
		b.mu.Lock()
		if b.inner == in && b.sessionOK && b.state == StateConnected {
			b.setStateLocked(StateReconnecting, broker.ErrorFromCode(broker.CodeNotConnected, e.Message, e.Code))
		}
		b.unlockAndFlush()
		b.hub.Publish(e)
	case e.Kind == broker.EventConnectionLost:
		// The socket to the gateway is gone: our own event says so once recovery starts.
		b.lost(in, 0, fmt.Errorf("%w: %s", broker.ErrNotConnected, e.Message), false)
	case e.Kind == broker.EventConnectionRestored && (e.Code == broker.IBCodeRestoredDataLost || e.Code == broker.IBCodeRestoredDataMaintained):
		b.mu.Lock()
		if b.inner == in && b.sessionOK && b.state == StateReconnecting {
			b.setStateLocked(StateConnected, nil)
		}
		if b.inner == in && b.sessionOK && e.Code == broker.IBCodeRestoredDataLost {
			// The gateway dropped its market data subscriptions: quote
			// streams subscribe again on this same session (quotes.go).
			b.dataLost++
			b.signalLocked()
		}
		b.unlockAndFlush()
		b.hub.Publish(e)
	default:
		b.hub.Publish(e)
	}
}
