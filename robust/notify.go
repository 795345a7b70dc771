package robust

// Notifications: state changes queued under b.mu and delivered to the hook in
// order, outside every lock.

// signalLocked wakes everyone waiting for a change.
func (b *Broker) signalLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// setStateLocked changes the connection state and queues the hook's notification.
func (b *Broker) setStateLocked(s State, cause error) {
	if s == b.state {
		return
	}
	br := b.brk.current(b.cfg.clock.Now())
	b.pending = append(b.pending, Change{
		Time: b.cfg.clock.Now(), From: b.state, To: s, BreakerFrom: br, Breaker: br, Err: cause,
	})
	b.state = s
	b.signalLocked()
}

// breakerChanged queues the hook's notification of a breaker transition.
func (b *Broker) breakerChanged(tr *transition, cause error) {
	if tr == nil {
		return
	}
	b.mu.Lock()
	b.pending = append(b.pending, Change{
		Time: b.cfg.clock.Now(), From: b.state, To: b.state, BreakerFrom: tr.from, Breaker: tr.to, Err: cause,
	})
	b.unlockAndFlush()
	if tr.to == BreakerOpen {
		b.log.Warn("circuit breaker open", "error", cause)
	} else {
		b.log.Info("circuit breaker "+tr.to.String(), "from", tr.from.String())
	}
}

// unlockAndFlush releases b.mu and delivers queued hook notifications in order.
// Only one goroutine delivers at a time; others leave their notifications to it, so
// the hook may itself call into the Broker.
func (b *Broker) unlockAndFlush() {
	if b.cfg.hook == nil {
		b.pending = nil
		b.mu.Unlock()
		return
	}
	if b.flushing {
		b.mu.Unlock()
		return
	}
	b.flushing = true
	for len(b.pending) > 0 {
		c := b.pending[0]
		b.pending = b.pending[1:]
		b.mu.Unlock()
		b.cfg.hook(c)
		b.mu.Lock()
	}
	b.flushing = false
	b.mu.Unlock()
}
