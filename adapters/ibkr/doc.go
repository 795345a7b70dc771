// Package ibkr is brokerkit's real adapter: a broker.Broker that talks to
// Interactive Brokers' TWS or IB Gateway through the Go TWS API client
// github.com/scmhub/ibapi (v0.10.47), in process. It adds what scmhub lacks for
// a long-running service: bounded connects, typed errors, clean teardown and
// safe concurrent use.
//
// # Connecting
//
// Connect first dials the gateway itself (bounded by ConnectParams.Timeout and
// the context) so that "nothing listens" (broker.ErrGatewayUnreachable) is told
// apart from a failed handshake, then runs scmhub's Connect under a watchdog.
// scmhub's Connect has no timeout, blocks forever on a gateway that never
// answers, and returns nil when the gateway closes first; the adapter detects
// both, and on timeout shuts the read side of scmhub's socket so that Connect
// returns, then closes the socket, leaving no goroutine, no socket and nothing
// in CLOSE_WAIT (broker.ErrTimeout). A gateway closing during the handshake is
// broker.ErrHandshakeFailed; IB error 326 is broker.ErrClientIDInUse, wrapping
// the *broker.APIError. Connect returns once the gateway has sent MANAGED_ACCTS
// and NEXT_VALID_ID and answered one REQ_CURRENT_TIME, all within the timeout.
//
// To interrupt a stalled Connect the adapter needs scmhub's socket, which
// scmhub does not expose: it reads two unexported fields by reflection
// (socket.go). TestSocketLayout fails if an scmhub upgrade moves them.
//
// # Requests
//
// Positions (REQ_POSITIONS) carries no request id, so concurrent calls share
// the one request in flight and each gets its own copy of the complete list; a
// request whose callers all gave up is cancelled on the wire at once, and the
// next one waits behind a REQ_CURRENT_TIME fence, so that the abandoned
// request's rows never leak into it and a lost POSITION_END costs one call.
// AccountSummary uses a fresh request id per call, cancels on context end, and
// keeps at most two requests open (IB's limit; WithMaxConcurrentSummaries).
// One list answer is bounded (WithMaxAnswer): past it the call fails with
// broker.ErrProtocol. Ping is one REQ_CURRENT_TIME; answers carry no id, so
// waiters are released in the order their requests went out, and a waiter that
// gives up leaves the queue (docs/adr/0007). ContractDetails, Snapshot and
// HistoricalBars use a fresh request id each; a snapshot or bars request whose
// context ends is cancelled on the wire. SubscribeQuotes (broker.QuoteStreamer)
// holds one streaming REQ_MKT_DATA per subscriber, conflates its ticks into a
// channel of capacity 1 and cancels it on the wire when its context ends; Close,
// the session's end and IB 1101 close the channel (docs/adr/0017).
//
// # Pacing
//
// Every message to the gateway takes a slot of one token bucket per Adapter,
// below IB's 50 messages per second; the market data operations wait for their
// slot, and HistoricalBars also for IB's historical limits (60 per 10 minutes,
// identical requests 15 s apart), with the wait counted in the caller's
// context (WithPacing, docs/adr/0015). Other clients of the gateway are not
// counted.
//
// # Orders
//
// The Adapter implements broker.OrderTrader and broker.OrderStreamer
// (docs/adr/0016). Order ids are allocated by the Adapter: never below the
// session's NEXT_VALID_ID nor at or below any id it used before, in any
// session, and sent in allocation order; a gateway that still refuses an id as
// a duplicate (IB 103) is asked for a fresh one (REQ_IDS) and the order is
// placed once more. The idempotency key travels as the orderRef; within a
// session a key makes one order. PlaceOrder returns at the gateway's first
// OPEN_ORDER or ORDER_STATUS for the id, or its ERR_MSG naming the id (201 and
// 110 broker.ErrRejected, 321 in read-only mode broker.ErrReadOnly); a session
// lost or a context ended in between is broker.ErrOutcomeUnknown. A session
// connected with ConnectParams.ReadOnly refuses every order operation with
// broker.ErrReadOnly and sends nothing. The PLACE_ORDER, CANCEL_ORDER and
// REQ_IDS frames are scmhub's own, built on an offline EClient at the
// session's server version (orders_frames.go). A ModifyOrder is acknowledged
// by an OPEN_ORDER of the order showing the new quantity, prices and type
// (or refused by an ERR_MSG naming it).
//
// # Decimals
//
// scmhub rounds quantities to 7 fractional digits and carries average costs
// and strikes as float64. The adapter reads those three fields of each
// POSITION_DATA frame itself before scmhub decodes it (raw.go), in the form of
// the negotiated server version, so they arrive exactly as the gateway sent
// them, up to broker.MaxDecimalDigits: as text below 207 (with a raw id from
// 201); from 207, where POSITION_DATA is protobuf, the quantity is still text
// but the schema carries the average cost and strike as doubles, exact whenever
// they have at most 15 significant digits. A quantity that is empty, one of
// IB's "no value" markers, or not a decimal fails the call with
// broker.ErrProtocol (a data error: the session goes on) rather than reading
// as zero.
//
// # Session end
//
// When the gateway drops the connection, or sends a message scmhub cannot decode
// (its decoder panics, recovers and ends the session), calls in flight and
// later calls fail with broker.ErrNotConnected (also matching
// broker.ErrProtocol for a malformed message, best effort when several Adapters
// share a process) and subscribers receive broker.EventConnectionLost. The
// Adapter stays usable: Connect starts a new session. IB codes 1100, 1101 and
// 1102 become connection lost/restored events; other gateway messages without a
// waiting request become broker.EventNotice.
//
// scmhub prints an undecodable integer token to standard output before it ends
// the session. This package cannot prevent that; the out-of-process transports
// contain it by moving the worker's file descriptor 1.
//
// # Logging
//
// scmhub logs through a process-global zerolog logger (to stderr by default).
// The first New in a process replaces it, once, with one that forwards every
// record to hclog at Debug level (to the logger of the latest Adapter created
// WithLogger and not yet closed; discarded otherwise). SetConsoleWriter, which
// writes to stdout, is never called. A program that also uses scmhub directly
// should not call ibapi.SetLogger concurrently with New.
//
// # As
//
// As(**ibapi.EClient) lends the scmhub client of the current session, for
// requests the port does not cover. See Adapter.As for the rules.
//
// # Known limits of scmhub
//
// Exactly one goroutine ever calls scmhub's Disconnect (its own watcher); the
// adapter ends a session by shutting the socket's read side. scmhub's request
// methods read fields its teardown rewrites without synchronisation, so a
// request racing a gateway drop would be a data race inside scmhub. Below
// server version 201 (no protobuf) the adapter therefore writes its few
// requests' frames (REQ_CURRENT_TIME, REQ_POSITIONS, CANCEL_POSITIONS,
// REQ_ACCOUNT_SUMMARY, CANCEL_ACCOUNT_SUMMARY, fixed text encodings) straight
// to the socket and never calls those methods after Connect; from 201 on it
// calls scmhub's methods, and stops calling them as soon as the session's
// context ends, which leaves that race open only at the very instant of a drop.
// scmhub re-dials on a failed write of its own; the fake gateway and real TWS
// refuse such a connection since it skips the handshake.
package ibkr
