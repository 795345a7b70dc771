package robust

import (
	"context"
	"errors"
	"time"
)

// Clock is the source of time for backoff, attempt timeouts, the breaker's cool-down
// and the health monitor. Tests inject a fake one; [SystemClock] is the default.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a Timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer created by a Clock.
type Timer interface {
	// C returns the channel on which the time is delivered when the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped it.
	Stop() bool
}

// SystemClock returns the Clock of package time.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool          { return t.t.Stop() }

// errAttemptTimeout is the cancellation cause of an attempt that ran out of time.
var errAttemptTimeout = errors.New("robust: attempt timed out")

// withTimeout returns a context that is cancelled with cause errAttemptTimeout after d
// on clock c. A d <= 0 means no timeout.
func withTimeout(ctx context.Context, c Clock, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	if _, ok := c.(systemClock); ok {
		return context.WithTimeoutCause(ctx, d, errAttemptTimeout)
	}
	actx, cancel := context.WithCancelCause(ctx)
	t := c.NewTimer(d)
	go func() {
		select {
		case <-t.C():
			cancel(errAttemptTimeout)
		case <-actx.Done():
			t.Stop()
		}
	}()
	return actx, func() {
		t.Stop() // at once, so that a fake clock sees no stale timer
		cancel(context.Canceled)
	}
}

// timedOut reports whether actx ended because its attempt timeout expired.
func timedOut(actx context.Context) bool {
	return errors.Is(context.Cause(actx), errAttemptTimeout)
}

// sleep waits d on clock c, or until ctx or stop is done.
func sleep(ctx context.Context, c Clock, d time.Duration, stop <-chan struct{}) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return errStopped
	}
}

var errStopped = errors.New("robust: stopped")
