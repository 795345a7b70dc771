// Package robust is a decorator that keeps any broker.Broker connected: it retries
// idempotent operations with capped, jittered exponential backoff, sheds load with a
// circuit breaker, pings the session, and replaces a dead or stalled inner Broker
// (for a transport, its child process) and reconnects it with the last Connect
// parameters.
//
// A *Broker from [New] is itself a broker.Broker and honours its whole contract, so a
// trading program holds it like any other. It builds its inner Brokers through a
// [Dialer] and never imports a transport.
//
// # What is retried
//
// Only operations that broker.Op.Idempotent reports as safe are retried; the table
// lives in package broker and nowhere else, so an operation added later (orders) is
// never repeated blindly. Cancellation of the caller's context is never retried and
// never counts as a failure. The final error of a retried call reads
// "giving up after N attempt(s): <last cause>" and wraps the last cause, so errors.Is
// still matches the broker sentinels.
//
// # Circuit breaker
//
// After a number of consecutive failed attempts the breaker opens and calls fail at
// once with [ErrCircuitOpen] (which errors.Is also reports as broker.ErrUnavailable).
// After a cool-down one probe call is let through (half-open); its success closes the
// breaker, its failure opens it again.
//
// # Keeping the session
//
// After a successful Connect, a supervisor goroutine pings the session periodically.
// A session is re-established when the inner Broker reports it lost (an
// EventConnectionLost without an IB code, ErrNotConnected, which a session-ending
// protocol error carries too) or when WithSickAfter calls in a row time out while
// pings pass; a protocol error of one call's data (ErrProtocol alone) is that
// call's error, neither retried nor a loss. The inner
// Broker is replaced when it is dead (ErrUnavailable, ErrClosed, its event stream ends,
// it implements [Exiter] and exits) or misses its pings. Callers that arrive meanwhile
// wait, within their attempt timeout, and are served by the new session. IB's 1100
// (the gateway lost IB) moves the state to reconnecting without touching the socket;
// 1101/1102 move it back. Streams (account updates, quotes) outlive sessions:
// robust subscribes again on the new session by itself, and a quote stream
// first sends a gap marker (broker.QuoteUpdate.Gap), also after a 1101 (market
// data lost), which re-subscribes on the same session; see SubscribeQuotes. After a user's Disconnect nothing reconnects; Close closes
// the inner Broker and stops every goroutine.
//
// # Time
//
// All waiting (backoff, attempt timeouts, breaker cool-down, health interval) goes
// through an injectable [Clock], so tests drive it without sleeping.
package robust
