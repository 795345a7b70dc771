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
// lives in package broker and nowhere else, so an operation added later is never
// repeated blindly. Orders are not idempotent; what robust does with them instead is
// the section "Orders". Cancellation of the caller's context is never retried and
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
// # Orders
//
// A *Broker is a broker.OrderTrader and a broker.OrderStreamer over inner Brokers
// that are (else their methods fail with broker.ErrUnsupported). It never repeats an
// order call blindly. Like NautilusTrader's command outcomes, it sorts each
// inner call's result into three:
//
//   - done: the gateway acknowledged it;
//   - refused, a definite answer that nothing was done: broker.ErrRejected,
//     ErrReadOnly, ErrInvalidArgument, ErrUnsupported, ErrNotFound, or any other
//     error carrying an IB code (IB 103, 10148, ...). Returned as is, never retried;
//   - unknown, the call may or may not have reached the gateway:
//     broker.ErrOutcomeUnknown; ErrUnavailable, ErrClosed and ErrNotConnected (the
//     worker or the session ended during the call: a transport cannot tell whether
//     the worker wrote the order before it died, and an inner Broker may report a
//     socket that dropped mid-call as not connected); ErrTimeout and the context's
//     errors (the call was abandoned, not answered); any other error (ErrProtocol,
//     an unmapped I/O error).
//
// Only when robust never handed the call to an inner Broker (no session within the
// attempt timeout, the breaker open) does it know that nothing was sent.
//
// PlaceOrder is exactly-once by the request's Key, which travels as the order's
// orderRef. One call per key is in flight: concurrent calls with the same key wait
// for it and share its outcome (Existing set, for them). An order placed or found
// is remembered by key (the last 10000), and a later call with the key returns it
// with Existing set, sending nothing (or fails with ErrInvalidArgument if its
// terms differ from those the order was placed with).
// Before the first send of a key it does not remember, robust looks the key up
// at the gateway (WithLookupBeforePlace, default on: three requests, about 0.15 ms
// against the fake gateway in process, three round trips to a real one), so that a
// restarted program that places the same key again finds its order. After an
// unknown outcome, robust restores the session (replacing a dead worker,
// reconnecting a dropped socket) and looks the key up in OpenOrders,
// CompletedOrders and Executions of the new session: found, that order is
// returned with Existing set (its id from the execution when IB's completed order
// has none); not found, the order is sent once more, and the same rule applies
// again, at most WithMaxAttempts sends in all, within the caller's context. When
// it cannot decide (the context ends, a lookup fails, the attempts are spent) it
// fails with an error matching broker.ErrOutcomeUnknown, and remembers the key:
// the next PlaceOrder with it looks it up before sending anything.
//
// What is guaranteed: through one Broker, or one after another with the lookup on, the
// gateway receives at most one order per key, and a call that succeeds returns
// that order's id, whatever fails and wherever in the exchange: a worker killed
// before the send, after it, or after the gateway's acknowledgement; the gateway
// connection dropped at any of those points; a stall, a timeout. This holds as
// long as the gateway keeps the order and lists it (OpenOrders: this client id's
// working orders; CompletedOrders and Executions: the day's), and the session that
// looks the key up uses the client id that sent it: robust refuses to send again
// under another client id (a ClientIDPolicy other than SameClientID after IB 326)
// and says the outcome is unknown instead. Order ids are the inner Broker's (IB's
// next valid id of each new session), never chosen by robust.
//
// What is not guaranteed: a gateway that loses an order, or forgets it (a key
// reused on a later day, after the gateway dropped the day's completed orders and
// executions, places a new order); orders that other clients, or a person in TWS,
// placed with the same orderRef (robust takes such an order for its own and
// places nothing: keys must be unique per account, not per client id); a reused
// key with the lookup off and a Broker that does not remember it (a second order);
// an order the gateway had received but not yet listed when the restored session
// looked the key up (a window IB does not close, narrowed by looking up only after
// a new session is established); a rejected order, which is not an order (the key
// may be placed again). If the calling program itself dies mid-call, the order is
// placed at most once, and exactly once if the program calls PlaceOrder again with
// the same key.
//
// ModifyOrder and CancelOrder are sent once. After an unknown outcome robust reads
// the order back (OpenOrders, then CompletedOrders and Executions): a modification
// is done if the open order has the new terms, sent once more if it has the old
// ones, and fails with ErrNotFound on a final order; a cancel is done if the order
// is final (cancelled, filled, inactive), sent once more if it still works. A
// cancelled order without fills is recognised among IB's completed orders (which
// carry no order id) only if this Broker placed or found it.
//
// SubscribeOrders keeps the caller's channel open across restored sessions, as
// SubscribeAccountUpdates does: it subscribes again on each new session and sends
// an OrderEventGap (GapSessionRestored) before that session's events, since events
// of the lost session may be missing; re-read OpenOrders, CompletedOrders and
// Executions then.
//
// # Time
//
// All waiting (backoff, attempt timeouts, breaker cool-down, health interval) goes
// through an injectable [Clock], so tests drive it without sleeping.
package robust
