package robust

import (
	"math/rand/v2"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults of the options.
const (
	DefaultMaxAttempts      = 5
	DefaultAttemptTimeout   = 10 * time.Second
	DefaultBreakerThreshold = 10
	DefaultBreakerCooldown  = 5 * time.Second
	DefaultHealthInterval   = 2 * time.Second
	DefaultHealthTimeout    = 3 * time.Second
	DefaultHealthMisses     = 2
	DefaultSickAfter        = 3
)

// Option configures a Broker built by New.
type Option func(*config)

type config struct {
	maxAttempts       int
	backoff           Backoff
	attemptTimeout    time.Duration
	breakerThreshold  int
	breakerCooldown   time.Duration
	healthInterval    time.Duration
	healthTimeout     time.Duration
	healthMisses      int
	clock             Clock
	rand              func() float64
	logger            hclog.Logger
	hook              func(Change)
	clientID          ClientIDPolicy
	inPlace           bool
	sickAfter         int
	lookupBeforePlace bool
}

func defaultConfig() config {
	return config{
		maxAttempts:       DefaultMaxAttempts,
		backoff:           Backoff{}.withDefaults(),
		attemptTimeout:    DefaultAttemptTimeout,
		breakerThreshold:  DefaultBreakerThreshold,
		breakerCooldown:   DefaultBreakerCooldown,
		healthInterval:    DefaultHealthInterval,
		healthTimeout:     DefaultHealthTimeout,
		healthMisses:      DefaultHealthMisses,
		clock:             SystemClock(),
		rand:              rand.Float64,
		logger:            hclog.NewNullLogger(),
		clientID:          SameClientID,
		sickAfter:         DefaultSickAfter,
		lookupBeforePlace: true,
	}
}

// WithMaxAttempts sets how many times an idempotent operation is attempted in all,
// the first attempt included (default DefaultMaxAttempts; values below 1 mean 1).
// Operations that are not idempotent are attempted once whatever this says.
func WithMaxAttempts(n int) Option {
	return func(c *config) { c.maxAttempts = max(n, 1) }
}

// WithBackoff sets the exponential backoff between attempts and between
// reconnection attempts (default DefaultBackoffBase doubling up to DefaultBackoffMax,
// with full jitter). Zero fields take their defaults.
func WithBackoff(b Backoff) Option {
	return func(c *config) { c.backoff = b.withDefaults() }
}

// WithAttemptTimeout bounds each attempt of an operation, including the wait for a
// session being re-established (default DefaultAttemptTimeout; 0 means no bound
// beyond the caller's context). A Connect attempt is bounded by the larger of this
// and the ConnectParams' Timeout.
func WithAttemptTimeout(d time.Duration) Option {
	return func(c *config) { c.attemptTimeout = max(d, 0) }
}

// WithBreaker sets the circuit breaker: it opens after threshold consecutive failed
// attempts and lets a probe through after cooldown (defaults DefaultBreakerThreshold
// and DefaultBreakerCooldown). A threshold of 0 disables the breaker.
func WithBreaker(threshold int, cooldown time.Duration) Option {
	return func(c *config) {
		c.breakerThreshold = max(threshold, 0)
		c.breakerCooldown = max(cooldown, 0)
	}
}

// WithHealthCheck sets the health monitor: while connected, the session is pinged
// every interval with the given timeout, and after misses consecutive pings that time
// out the inner Broker is replaced (defaults DefaultHealthInterval,
// DefaultHealthTimeout, DefaultHealthMisses). An interval of 0 disables periodic
// pings; loss is then detected only from events and failed calls.
func WithHealthCheck(interval, timeout time.Duration, misses int) Option {
	return func(c *config) {
		c.healthInterval = max(interval, 0)
		c.healthTimeout = max(timeout, 0)
		c.healthMisses = max(misses, 1)
	}
}

// WithClock sets the clock used for every wait (default SystemClock()).
func WithClock(clk Clock) Option {
	return func(c *config) {
		if clk != nil {
			c.clock = clk
		}
	}
}

// WithRand sets the source of jitter: a function returning uniform values in [0, 1)
// that is safe for concurrent use (default math/rand/v2.Float64).
func WithRand(f func() float64) Option {
	return func(c *config) {
		if f != nil {
			c.rand = f
		}
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l hclog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithStateHook registers f to be told of every change of connection state or breaker
// state, in order. f runs on whichever goroutine made the change, never under the
// Broker's locks; it may call Stats but should return quickly.
func WithStateHook(f func(Change)) Option {
	return func(c *config) { c.hook = f }
}

// WithSickAfter sets how many calls in a row may time out (their attempt's
// timeout, broker.ErrTimeout, or the caller's deadline) while the session is
// otherwise up before the session is deemed sick and recovered as a lost one
// (default DefaultSickAfter; values below 1 mean 1). Health pings cannot see a
// session whose pings are answered but whose operations are wedged; this can.
// A call that succeeds starts the count again; a data error (broker.ErrProtocol
// without broker.ErrNotConnected) does not count.
func WithSickAfter(n int) Option {
	return func(c *config) { c.sickAfter = max(n, 1) }
}

// WithClientIDPolicy sets how a (re)connection chooses its client id after the gateway
// refused one as in use (IB 326); default SameClientID.
func WithClientIDPolicy(p ClientIDPolicy) Option {
	return func(c *config) {
		if p != nil {
			c.clientID = p
		}
	}
}

// WithReconnectInPlace makes recovery from a lost session (dropped socket,
// ErrNotConnected, a sick session) reconnect the same inner Broker instead of
// replacing it with a fresh one from the Dialer. It saves a child process start, but
// relies on the inner Broker's Connect being safe while calls of the lost session are
// still in flight on it. By default every recovery uses a fresh inner Broker, which
// also clears whatever state the lost session left behind. A dead, stalled or exited
// inner Broker is replaced either way.
func WithReconnectInPlace() Option {
	return func(c *config) { c.inPlace = true }
}

// ClientIDPolicy returns the client id to use for a connect attempt, given the id the
// user asked for and how many consecutive attempts were refused with "client id in
// use". Whatever it returns, attempts are separated by backoff: never a tight loop.
type ClientIDPolicy func(requested int64, conflicts int) int64

// SameClientID keeps the requested client id: the stale session holding it usually
// goes away within seconds.
func SameClientID(requested int64, _ int) int64 { return requested }

// NextClientID returns a policy that moves to requested+1, requested+2, ... after
// each refusal, cycling through span ids in all (span < 1 means 1: the same id).
func NextClientID(span int) ClientIDPolicy {
	span = max(span, 1)
	return func(requested int64, conflicts int) int64 {
		id := requested + int64(conflicts%span)
		if id > 2147483647 {
			id -= int64(span)
		}
		return id
	}
}

// WithLookupBeforePlace sets whether PlaceOrder looks an order's key up at the
// gateway (OpenOrders, CompletedOrders, Executions) before its first send
// (default true). The lookup makes a repeated key safe even across restarts
// of the calling program; it costs three requests per new key. Off, a key is
// looked up only after a send whose outcome was unknown, and the caller
// promises never to reuse a key that this Broker did not place itself.
func WithLookupBeforePlace(on bool) Option {
	return func(c *config) { c.lookupBeforePlace = on }
}
