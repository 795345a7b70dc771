// Package fakes provides a scripted fake IB Gateway that speaks the real TWS API
// wire protocol (server versions 100..225: text, raw ids and protobuf as the
// real Gateway speaks them) on a loopback TCP port, so that real API
// clients such as scmhub/ibapi can be tested without Interactive Brokers.
// A Script says what the gateway answers (accounts, positions, account summary)
// and which faults it injects (stalled or refused handshakes, dropped, closed,
// half-open and malformed replies, timed connectivity notices).
//
// # Protocol
//
// Per connection the gateway reads "API\0" and the client's version range,
// answers min(script version, client max) with the connection time, reads
// START_API and then sends MANAGED_ACCTS, NEXT_VALID_ID and the 2104, 2106 and
// 2158 farm notices (id -1). A client id already held by a live connection is
// refused with error 326; the socket closes about 300 ms later.
//
// It answers every request a real client sends at startup, with what a real
// Gateway sends (fakes/serve.go has one handler per request, messages.go one
// encoder per message): REQ_CURRENT_TIME, REQ_IDS, REQ_MANAGED_ACCTS,
// REQ_POSITIONS, REQ_ACCOUNT_SUMMARY, REQ_ACCT_DATA (ACCT_VALUE, PORTFOLIO_VALUE
// with the script's Marks, ACCT_UPDATE_TIME, ACCT_DOWNLOAD_END), REQ_EXECUTIONS
// (EXECUTION_DATA and COMMISSION_REPORT per matching Execution, then
// EXECUTION_DATA_END), REQ_OPEN_ORDERS/REQ_ALL_OPEN_ORDERS and
// REQ_COMPLETED_ORDERS (end markers: the fake holds no orders),
// REQ_POSITIONS_MULTI, REQ_ACCOUNT_UPDATES_MULTI, REQ_PNL and REQ_PNL_SINGLE.
// Cancels, REQ_MARKET_DATA_TYPE and REQ_AUTO_OPEN_ORDERS get no answer, as in
// real TWS. Anything it cannot serve gets the error real TWS gives, never
// silence: 200 for a request about a contract it does not know (see Market
// data), 321 for PLACE_ORDER (a read-only session), 10147 for
// CANCEL_ORDER, 321 naming the message otherwise. Decimals go on the wire as
// broker.Decimal.String(), never through a float.
//
// A connection that does not start with "API\0", announces a version range
// that excludes the script's version, sends anything but START_API first, or
// sends a frame over MaxFrameLen, or does not finish its handshake and
// START_API within the handshake timeout (WithHandshakeTimeout) is closed and
// the reason recorded in its ConnRecord; the gateway itself keeps serving.
// Records are bounded (RecordLimits): the latest requests of each connection
// and the latest closed connections, so a long-running gateway holds flat
// memory.
//
// # Scripts
//
// A Script is plain data: build one in Go (start from DefaultScript) or load
// it from JSON with LoadScript. In JSON, keys are snake_case, decimals are
// strings ("0.5", "-2") so that no value passes through a float, and durations
// are Go duration strings ("150ms"); unknown keys are errors. testdata/demo.json
// is DefaultScript in that form. Faults apply per connection, from the script
// current when the connection was accepted; answers come from the script
// current when each request is read, so SetScript can change them mid-session.
//
// # Live control
//
// Tests drive chaos while clients are connected: DropConnections resets every
// socket, Notify sends a notice such as 1100/1101/1102 to every session,
// SendRaw sends arbitrary fields, SetScript changes the answers, and
// Connections/WaitConnections observe what clients did. WaitRequest (and
// WaitRequests, RequestCount) waits until a request with a given message id
// (MsgReqPositions, ...) has reached the gateway: the way a test knows a call
// is in flight, without sleeping.
//
// # Orders
//
// Each Gateway holds one order book, shared by its connections as IB's orders
// belong to the account (docs/adr/0013): PLACE_ORDER is acknowledged with
// OPEN_ORDER and ORDER_STATUS, fills at Script.Quotes (or an instrument's last
// price) as EXECUTION_DATA and COMMISSION_REPORT, and moves the script's
// positions and executions; CANCEL_ORDER cancels; bad orders get IB's codes
// (201, 110, 103, 10147, and 321 with Script.ReadOnlyAPI). SetPrice moves a
// price and fills what it crosses, Orders returns every order for assertions,
// and Faults.DropAfterOrder, Gateway.DropNextOrder and Faults.AckDelay break
// the exchange on purpose (a drop after the ack is DropConnections).
//
// # Market data
//
// Script.Instruments are the contracts the gateway knows (docs/adr/0012;
// DefaultInstruments, in DefaultScript): REQ_CONTRACT_DATA answers
// CONTRACT_DATA and CONTRACT_DATA_END, REQ_MATCHING_SYMBOLS SYMBOL_SAMPLES,
// REQ_MKT_DATA snapshots (TICK_SNAPSHOT_END) and streams (static quotes, or a
// seeded random walk at Instrument.TicksPerSecond, one bounded pump goroutine
// per connection) honouring REQ_MARKET_DATA_TYPE and delayed-only instruments
// (10089, 10167), CANCEL_MKT_DATA stops a stream at once, SetHalted halts one
// live, and REQ_HISTORICAL_DATA returns bars generated deterministically from
// the instrument's seed. Faults.Market injects 354, 10089, 10167, 101, 162,
// 200, 321, a slow first tick and a stream that goes silent; Script.Pacing
// enforces IB's 50 messages/s (error 100, then disconnect) and historical
// limits (162). For quote streams (docs/adr/0017): Notify(1101) makes every
// connection forget its streams as IB does, MarketDataLines and
// WaitMarketDataLines count the live ones (a cancel or a re-subscription taking
// effect), and WithTickHook with Instrument.StepInBidSize tell a benchmark when
// the gateway wrote the step a subscriber received.
//
// # Frame codec
//
// The TWS framing the gateway speaks is a supported API of this package, for
// tests that talk to the gateway or to a client by hand: AppendFrame,
// EncodeFrame and ReadFrame (a 4-byte big-endian length, then NUL-terminated
// fields; MaxFrameLen, ErrFrameTooLarge), and a client's opening with
// Handshake, EncodeHandshake, ReadHandshake and ParseHandshake. Malformed input
// is a typed error matching broker.ErrProtocol (or broker.ErrInvalidArgument
// for a frame that cannot be encoded), never a panic, except in EncodeFrame,
// which is for literal fields (see ExampleReadFrame).
//
// # Record and replay
//
// A Recorder is a transparent proxy in front of a real TWS or IB Gateway that
// records every frame both ways, with timing, as a Session (JSON, see
// docs/adr/0009; Session.Redact replaces account ids). A Replayer serves a
// Session to any client, answering each request with what followed the same
// request in the recording, and reports a request it cannot answer with error
// 321, a logged error and Mismatches. testdata/sessions holds examples.
//
// # Memory
//
// Where no wire is wanted (a transport's or a decorator's own tests, benchmarks
// that should measure the transport alone), Memory serves a Script as an
// in-memory broker.Broker that keeps the whole contract; a Hook injects errors,
// delays and side effects per operation.
package fakes
