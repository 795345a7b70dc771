package robust

import (
	"math"
	"time"
)

// Backoff is exponential backoff with full jitter: the wait before retry n (n >= 1)
// is drawn uniformly from [0, Bound(n)), where Bound(n) = min(Max, Base·2^(n-1)).
// Full jitter spreads reconnecting clients apart so that they do not hit a gateway
// that just came back all at once.
type Backoff struct {
	Base time.Duration // bound of the first wait; DefaultBackoffBase if zero
	Max  time.Duration // cap on every bound; DefaultBackoffMax if zero
}

// Defaults of Backoff.
const (
	DefaultBackoffBase = 25 * time.Millisecond
	DefaultBackoffMax  = 2 * time.Second
)

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = DefaultBackoffBase
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Max < b.Base {
		b.Max = b.Base
	}
	return b
}

// Bound returns the upper bound of the wait before retry n: min(Max, Base·2^(n-1)).
// Retries are numbered from 1; n < 1 is treated as 1. It never overflows.
func (b Backoff) Bound(n int) time.Duration {
	b = b.withDefaults()
	if n < 1 {
		n = 1
	}
	// Base·2^(n-1) exceeds Max as soon as 2^(n-1) > Max/Base.
	if n-1 >= 62 || float64(b.Base)*math.Exp2(float64(n-1)) >= float64(b.Max) {
		return b.Max
	}
	return b.Base << (n - 1)
}

// Delay returns the wait before retry n for a uniform random u in [0, 1):
// u·Bound(n). Values of u outside [0, 1) are clamped.
func (b Backoff) Delay(n int, u float64) time.Duration {
	bound := b.Bound(n)
	switch {
	case u <= 0 || math.IsNaN(u):
		return 0
	case u >= 1:
		u = math.Nextafter(1, 0)
	}
	d := time.Duration(u * float64(bound))
	if d >= bound {
		d = bound - 1
	}
	return d
}
