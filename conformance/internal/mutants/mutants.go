// Package mutants holds deliberately broken Brokers for the conformance kit's
// mutation tests: each wraps a correct Broker (the in-process ibkr adapter in
// the kit's tests) and breaks exactly one sentence of the broker.Broker
// contract, the way a plausible bug would. conformance's mutants_test.go runs
// the cases each mutant names through conformance.Record and fails unless
// every one of them fails; conformance/CONTRACT.md is the table of sentences,
// cases and mutants. It is a test helper only.
package mutants

import (
	"fmt"
	"io"

	"github.com/brokerkit/brokerkit/broker"
)

// Sentence is one sentence of the broker.Broker contract.
type Sentence struct {
	ID   string // short id used by CONTRACT.md and Mutant.Sentence
	Text string // the sentence, abridged
}

// Sentences lists every sentence of the contract in broker/broker.go, in order.
var Sentences = []Sentence{
	{"concurrent", "A Broker is safe for concurrent use by multiple goroutines."},
	{"ctx-prompt", "When the context is done before the call completes, the call returns promptly ..."},
	{"ctx-error", "... with an error for which errors.Is reports ctx.Err() ..."},
	{"ctx-usable", "... and the Broker stays usable for other and later calls."},
	{"new-disconnected", "A new Broker is disconnected."},
	{"connect-establishes", "Connect establishes the session; Disconnect ends it and may be followed by another Connect."},
	{"close-releases", "Close releases everything the Broker holds (sockets, goroutines, child processes)."},
	{"closed-errors", "After Close every method returns an error for which errors.Is reports ErrClosed."},
	{"api-error", "Errors reported by the gateway carry an *APIError with IB's numeric code."},
	{"connect-info", "Connect returns the managed accounts and the negotiated server version."},
	{"connect-invalid", "Connect fails with ErrInvalidArgument if p is invalid."},
	{"connect-already", "Connect fails with ErrAlreadyConnected if a session is open."},
	{"connect-unreachable", "Connect fails with ErrGatewayUnreachable if nothing accepts the TCP connection."},
	{"connect-timeout", "Connect fails with ErrTimeout if the handshake does not complete within p.Timeout."},
	{"connect-handshake", "Connect fails with ErrHandshakeFailed if the gateway closes or answers nonsense during the handshake."},
	{"connect-clientid", "Connect fails with ErrClientIDInUse if the gateway refuses p.ClientID (IB code 326)."},
	{"connect-failed-clean", "A failed Connect leaves the Broker disconnected, holding no socket."},
	{"disconnect-socket", "Disconnect ends the session and closes the socket to the gateway."},
	{"disconnect-idempotent", "Disconnect is idempotent: disconnecting a disconnected Broker returns nil."},
	{"accounts-order", "Accounts returns the accounts managed by this session, in the gateway's order."},
	{"accounts-notconnected", "Accounts fails with ErrNotConnected if there is no session."},
	{"positions-every", "Positions returns every position of every managed account ..."},
	{"positions-order", "... in the order the gateway reported them ..."},
	{"positions-end", "... once the gateway has signalled the end of the list."},
	{"positions-notconnected", "Positions fails with ErrNotConnected if there is no session."},
	{"summary-tags", "AccountSummary returns the summary values of every managed account for the given tags ..."},
	{"summary-default", "... (DefaultSummaryTags when none are given) ..."},
	{"summary-per-account", "... one AccountSummary per account ..."},
	{"summary-order", "... in the order the gateway first named each account."},
	{"summary-notconnected", "AccountSummary fails with ErrNotConnected if there is no session."},
	{"updates-account", "AccountUpdates returns the values and portfolio of one managed account (REQ_ACCOUNT_UPDATES) ..."},
	{"updates-end", "... once the gateway has signalled the end of its first download; the subscription does not outlive the call."},
	{"updates-notconnected", "AccountUpdates fails with ErrNotConnected if there is no session ..."},
	{"updates-invalid", "... and with ErrInvalidArgument if account is not one of Accounts (or is \"\" while the session manages several)."},
	{"executions-filter", "Executions returns the executions of the current day that match f ..."},
	{"executions-order", "... in the gateway's order, each with its commission report, once the gateway has signalled the end of the list."},
	{"executions-notconnected", "Executions fails with ErrNotConnected if there is no session."},
	{"openorders-list", "OpenOrders returns the open orders of this client id (REQ_OPEN_ORDERS), in the gateway's order ..."},
	{"openorders-notconnected", "OpenOrders fails with ErrNotConnected if there is no session."},
	{"completed-list", "CompletedOrders returns the completed orders the gateway reports (REQ_COMPLETED_ORDERS) ..."},
	{"completed-notconnected", "CompletedOrders fails with ErrNotConnected if there is no session."},
	{"stream-state", "SubscribeAccountUpdates returns a channel of the account's whole state: after the first download, then after every change ..."},
	{"stream-ctx", "The channel is closed when ctx is done ..."},
	{"stream-invalid", "It fails like AccountUpdates: ... ErrInvalidArgument for an account the session does not manage ..."},
	{"ping-roundtrip", "Ping makes one round trip to the gateway (REQ_CURRENT_TIME) and returns nil if it answered."},
	{"ping-notconnected", "Ping fails with ErrNotConnected if there is no session."},
	{"details-match", "ContractDetails returns the details of every instrument that c matches, in the gateway's order ..."},
	{"details-errors", "It fails with ErrNotFound when nothing matches (IB code 200) and with ErrInvalidArgument when c names no instrument ..."},
	{"snapshot-quote", "Snapshot returns one snapshot of c's top of book, exact decimals as the gateway sent them, ..."},
	{"snapshot-type", "... of the market data type last set by SetMarketDataType (live by default)."},
	{"snapshot-errors", "It fails with ErrNotFound when c matches no instrument or several (IB code 200) and with ErrNotSubscribed when the session may not see c's market data (IB codes 354 and 10089 ...)."},
	{"snapshot-warning", "Warning 10167 (delayed data shown instead) is no error: the Quote's DataType says which."},
	{"bars-window", "HistoricalBars returns the bars of c over r's window, oldest first."},
	{"bars-errors", "It fails with ErrInvalidArgument when r is malformed or the gateway refuses it (IB code 321), with ErrNotFound ... (200), and with ErrPacing ... (162)."},
	{"mdtype-invalid", "SetMarketDataType ... fails with ErrInvalidArgument for a type other than IB's four."},
	{"market-notconnected", "ContractDetails, Snapshot, HistoricalBars and SetMarketDataType fail with ErrNotConnected if there is no session."},
	{"quotes-value", "SubscribeQuotes (broker.QuoteStreamer) returns a channel of c's top of book: one value per change, each the whole quote as Snapshot reports it ..."},
	{"quotes-conflate", "... conflated (Conflate): a subscriber that does not keep up finds the newest state and a count of what it missed, and the Broker is never slowed."},
	{"quotes-ctx", "The channel is closed when ctx is done (and the subscription is cancelled on the wire) ..."},
	{"quotes-close", "... on Close ..."},
	{"quotes-lost", "... and when the session ends; a decorator that restores sessions (robust) subscribes again instead, keeps the channel open and sends a gap first."},
	{"quotes-errors", "It fails like Snapshot (ErrNotFound, ErrNotSubscribed, ErrPacing for IB 101) and with ErrNotConnected without a session."},
	{"subscribe-events", "Subscribe returns a channel of events (connection lost and restored, gateway notices)."},
	{"subscribe-ctx", "The channel is closed when ctx is done ..."},
	{"subscribe-close", "... or the Broker is closed."},
	{"subscribe-besteffort", "Delivery is best effort: a subscriber that does not keep up loses events rather than slowing the Broker."},
	{"subscribe-closed", "Subscribe on a closed Broker fails with ErrClosed."},
	{"close-disconnects", "Close disconnects if needed and releases every resource."},
	{"close-idempotent", "Close is idempotent."},
	{"close-concurrent", "Close is safe to call concurrently with other methods, which then fail with ErrClosed."},
	// broker.OrderTrader and broker.OrderStreamer (broker/orders.go)
	{"order-place", "PlaceOrder sends r as a new order with a fresh order id (never one used before) and r.Key as its orderRef, and returns once the gateway acknowledged it."},
	{"order-key", "Two PlaceOrders with the same Key make at most one order (sequentially or concurrently); the same key with other terms is ErrInvalidArgument."},
	{"order-readonly", "PlaceOrder fails with ErrReadOnly when the session is read-only (nothing is sent) or the gateway refuses orders in read-only mode."},
	{"order-rejected", "PlaceOrder fails with ErrRejected when the gateway rejects the order (IB codes 201, 110, ...)."},
	{"order-outcome", "... ErrOutcomeUnknown when the session was lost or the context ended after the order was sent and before its acknowledgement: look its Key up before placing it again."},
	{"order-modify", "ModifyOrder sends new terms for the open order id (the same id, IB's way) and returns once the gateway acknowledged them."},
	{"order-cancel", "CancelOrder returns once the gateway reported the order cancelled (or already final); ErrNotFound when the gateway knows no such order (IB code 10147)."},
	{"order-events", "SubscribeOrders returns a channel of the session's order status changes and fills, queued, not conflated."},
}

// Env is what a mutant may use besides the Broker it wraps.
type Env struct {
	Addr string          // the case's fake gateway, "127.0.0.1:PORT"
	Done <-chan struct{} // closed once the case has ended: release what the mutant leaked
	Hold func(io.Closer) // keeps c open until the case has ended, without a goroutine
}

// Mutant is one broken Broker.
type Mutant struct {
	Name     string   // what the bug is
	Sentence string   // the Sentence.ID it breaks
	Kills    []string // the cases (conformance.Case.Name) that must each fail
	Wrap     func(b broker.Broker, env Env) broker.Broker
}

// All returns every mutant.
func All() []Mutant {
	w := func(f func(broker.Broker) broker.Broker) func(broker.Broker, Env) broker.Broker {
		return func(b broker.Broker, _ Env) broker.Broker { return f(b) }
	}
	return append([]Mutant{
		{"crossed summary answers", "concurrent", []string{"Concurrent"}, w(func(b broker.Broker) broker.Broker { return &crossedSummary{Broker: b} })},

		{"Positions ignores ctx", "ctx-prompt", []string{"Cancellation", "CancelMidCall", "ExpiredDeadline"}, w(func(b broker.Broker) broker.Broker { return ignoresCtx{b, "Positions"} })},
		{"AccountSummary ignores ctx", "ctx-prompt", []string{"CancelMidCall", "ExpiredDeadline"}, w(func(b broker.Broker) broker.Broker { return ignoresCtx{b, "AccountSummary"} })},
		{"Ping ignores ctx", "ctx-prompt", []string{"CancelMidCall", "ExpiredDeadline"}, w(func(b broker.Broker) broker.Broker { return ignoresCtx{b, "Ping"} })},
		{"Connect ignores ctx", "ctx-prompt", []string{"CancelMidCall", "ExpiredDeadline"}, w(func(b broker.Broker) broker.Broker { return ignoresCtx{b, "Connect"} })},
		{"goroutine leaked per cancelled call", "ctx-prompt", []string{"CancelledContext", "CancelMidCall", "ExpiredDeadline"}, func(b broker.Broker, env Env) broker.Broker { return leaksOnCancel{b, env.Done, nil, false} }},
		{"file leaked per cancelled call", "ctx-prompt", []string{"CancelledContext", "CancelMidCall", "ExpiredDeadline"}, func(b broker.Broker, env Env) broker.Broker { return leaksOnCancel{b, env.Done, env.Hold, true} }},
		{"ctx error reported as ErrTimeout", "ctx-error", []string{"Cancellation", "CancelledContext", "CancelMidCall", "ExpiredDeadline"}, w(func(b broker.Broker) broker.Broker { return ctxAsTimeout{b} })},
		{"Ping succeeds with a done ctx", "ctx-error", []string{"Cancellation", "CancelledContext"}, w(func(b broker.Broker) broker.Broker { return pingIgnoresDone{b} })},
		{"session dropped after a cancelled call", "ctx-usable", []string{"Cancellation"}, w(func(b broker.Broker) broker.Broker { return breaksOnCancel{b} })},

		{"new Broker pretends a session", "new-disconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &pretendsConnected{Broker: b} })},
		{"Connect after Disconnect refused", "connect-establishes", []string{"Reconnect"}, w(func(b broker.Broker) broker.Broker { return &noReconnect{Broker: b} })},
		{"Disconnect does nothing", "connect-establishes", []string{"NotConnected", "Reconnect"}, w(func(b broker.Broker) broker.Broker { return disconnectNoop{b} })},
		{"goroutine left by Close", "close-releases", []string{"Close"}, func(b broker.Broker, env Env) broker.Broker { return leaksOnClose{b, env.Done} }},
		{"socket left by Close", "close-releases", []string{"Close"}, func(b broker.Broker, env Env) broker.Broker {
			return &sideSocket{Broker: b, env: env, keepOnClose: true}
		}},
		{"ErrNotConnected after Close", "closed-errors", []string{"Close"}, w(func(b broker.Broker) broker.Broker { return forgetsClosed{b} })},
		{"326 without its APIError", "api-error", []string{"ClientIDInUse"}, w(func(b broker.Broker) broker.Broker { return stripsAPIError{b} })},

		{"wrong server version", "connect-info", []string{"Connect"}, w(func(b broker.Broker) broker.Broker { return connectInfo{b, false} })},
		{"ConnectInfo accounts sorted", "connect-info", []string{"Connect"}, w(func(b broker.Broker) broker.Broker { return connectInfo{b, true} })},
		{"invalid params reported as unreachable", "connect-invalid", []string{"InvalidParams"}, w(func(b broker.Broker) broker.Broker {
			return connectErr{b, func(err error, p broker.ConnectParams) error {
				if p.Validate() != nil {
					return fmt.Errorf("mutant: %w", broker.ErrGatewayUnreachable)
				}
				return err
			}}
		})},
		{"second Connect succeeds", "connect-already", []string{"AlreadyConnected"}, w(func(b broker.Broker) broker.Broker { return connectErr{b, remap(broker.ErrAlreadyConnected, nil)} })},
		{"unreachable reported as timeout", "connect-unreachable", []string{"Unreachable"}, w(func(b broker.Broker) broker.Broker {
			return connectErr{b, remap(broker.ErrGatewayUnreachable, broker.ErrTimeout)}
		})},
		{"timeout reported as handshake failure", "connect-timeout", []string{"StalledHandshake"}, w(func(b broker.Broker) broker.Broker {
			return connectErr{b, remap(broker.ErrTimeout, broker.ErrHandshakeFailed)}
		})},
		{"p.Timeout ignored", "connect-timeout", []string{"StalledHandshake"}, w(func(b broker.Broker) broker.Broker { return ignoresTimeout{b} })},
		{"handshake failure reported as unreachable", "connect-handshake", []string{"CloseBeforeHandshake"}, w(func(b broker.Broker) broker.Broker {
			return connectErr{b, remap(broker.ErrHandshakeFailed, broker.ErrGatewayUnreachable)}
		})},
		{"326 reported as handshake failure", "connect-clientid", []string{"ClientIDInUse"}, w(func(b broker.Broker) broker.Broker {
			return connectErr{b, remap(broker.ErrClientIDInUse, broker.ErrHandshakeFailed)}
		})},
		{"failed Connect leaves a session behind", "connect-failed-clean", []string{"StalledHandshake"}, w(func(b broker.Broker) broker.Broker { return &failedConnectSticks{Broker: b} })},
		{"failed Connect leaves a socket", "connect-failed-clean", []string{"CloseBeforeHandshake", "CancelledContext", "CancelMidCall", "ExpiredDeadline"}, func(b broker.Broker, env Env) broker.Broker {
			return &sideSocket{Broker: b, env: env, onFailure: true}
		}},

		{"Disconnect leaves a socket", "disconnect-socket", []string{"NotConnected"}, func(b broker.Broker, env Env) broker.Broker { return &sideSocket{Broker: b, env: env} }},
		{"Disconnect of a disconnected Broker fails", "disconnect-idempotent", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &disconnectOnce{Broker: b} })},

		{"Accounts sorted", "accounts-order", []string{"Connect", "Concurrent"}, w(func(b broker.Broker) broker.Broker { return sortsAccounts{b} })},
		{"Accounts answered without a session", "accounts-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &cachedWhenDown{Broker: b, op: "Accounts"} })},

		{"last position dropped", "positions-every", []string{"Positions"}, w(func(b broker.Broker) broker.Broker { return positionsEdit{b, dropLast} })},
		{"decimals rounded through float64", "positions-every", []string{"Positions"}, w(func(b broker.Broker) broker.Broker { return positionsEdit{b, roundDecimals} })},
		{"positions deduplicated by contract", "positions-every", []string{"Positions"}, w(func(b broker.Broker) broker.Broker { return positionsEdit{b, dedupeConID} })},
		{"positions sorted by account", "positions-order", []string{"Positions"}, w(func(b broker.Broker) broker.Broker { return positionsEdit{b, sortByAccount} })},
		{"positions answered from the first list", "positions-end", []string{"Positions"}, w(func(b broker.Broker) broker.Broker { return &stalePositions{Broker: b} })},
		{"positions returned before the end", "positions-end", []string{"Positions"}, w(func(b broker.Broker) broker.Broker { return positionsEdit{b, firstHalf} })},
		{"Positions answered without a session", "positions-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &cachedWhenDown{Broker: b, op: "Positions"} })},

		{"summary tags ignored", "summary-tags", []string{"AccountSummary", "Concurrent"}, w(func(b broker.Broker) broker.Broker { return summaryTags{b, false} })},
		{"every tag when none are given", "summary-default", []string{"AccountSummary"}, w(func(b broker.Broker) broker.Broker { return summaryTags{b, true} })},
		{"one entry per group of tags", "summary-per-account", []string{"AccountSummary"}, w(func(b broker.Broker) broker.Broker { return summaryEdit{b, splitEntries} })},
		{"summary sorted by account", "summary-order", []string{"AccountSummary"}, w(func(b broker.Broker) broker.Broker { return summaryEdit{b, sortSummary} })},
		{"summary in managed accounts' order", "summary-order", []string{"AccountSummary"}, w(func(b broker.Broker) broker.Broker { return &summaryManagedFirst{Broker: b} })},
		{"AccountSummary answered without a session", "summary-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &cachedWhenDown{Broker: b, op: "AccountSummary"} })},

		{"last portfolio row dropped", "updates-account", []string{"AccountUpdates"}, w(func(b broker.Broker) broker.Broker { return updatesEdit{b, dropLastPortfolio} })},
		{"unrealized PnL rounded to cents", "updates-account", []string{"AccountUpdates"}, w(func(b broker.Broker) broker.Broker { return updatesEdit{b, roundPnL} })},
		{"account values sorted by value", "updates-account", []string{"AccountUpdates"}, w(func(b broker.Broker) broker.Broker { return updatesEdit{b, sortValues} })},
		{"account updates answered from the first download", "updates-end", []string{"AccountUpdates"}, w(func(b broker.Broker) broker.Broker { return &staleUpdates{Broker: b} })},
		{"AccountUpdates answered without a session", "updates-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return readWhenDown{b, broker.OpAccountUpdates} })},
		{"unmanaged account answered empty", "updates-invalid", []string{"AccountUpdates"}, w(func(b broker.Broker) broker.Broker { return anyAccount{b} })},
		{"execution filter ignored", "executions-filter", []string{"Executions"}, w(func(b broker.Broker) broker.Broker {
			return executionsEdit{Broker: b, filter: func(broker.ExecutionFilter) broker.ExecutionFilter { return broker.ExecutionFilter{} }}
		})},
		{"commission reports dropped", "executions-order", []string{"Executions"}, w(func(b broker.Broker) broker.Broker { return executionsEdit{Broker: b, edit: dropCommission} })},
		{"executions reversed", "executions-order", []string{"Executions"}, w(func(b broker.Broker) broker.Broker { return executionsEdit{Broker: b, edit: reverseExecutions} })},
		{"Executions answered without a session", "executions-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return readWhenDown{b, broker.OpExecutions} })},
		{"open orders answered from memory", "openorders-list", []string{"Orders"}, w(func(b broker.Broker) broker.Broker { return ordersFromMemory{b, broker.OpOpenOrders} })},
		{"OpenOrders answered without a session", "openorders-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return readWhenDown{b, broker.OpOpenOrders} })},
		{"completed orders answered from memory", "completed-list", []string{"Orders"}, w(func(b broker.Broker) broker.Broker { return ordersFromMemory{b, broker.OpCompletedOrders} })},
		{"CompletedOrders answered without a session", "completed-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return readWhenDown{b, broker.OpCompletedOrders} })},
		{"stream stops after the first state", "stream-state", []string{"AccountUpdatesStream"}, func(b broker.Broker, env Env) broker.Broker { return streamEdit{b, env.Done, streamFirstOnly} }},
		{"stream outlives its ctx", "stream-ctx", []string{"AccountUpdatesStream"}, func(b broker.Broker, env Env) broker.Broker { return streamEdit{b, env.Done, streamIgnoresCtx} }},
		{"stream of an unmanaged account accepted", "stream-invalid", []string{"AccountUpdatesStream"}, func(b broker.Broker, env Env) broker.Broker { return streamEdit{b, env.Done, streamAnyAccount} }},
		{"Ping answered from memory", "ping-roundtrip", []string{"Ping"}, w(func(b broker.Broker) broker.Broker { return &pingFromMemory{Broker: b} })},
		{"Ping answered without a session", "ping-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return &cachedWhenDown{Broker: b, op: "Ping"} })},

		{"Snapshot ignores ctx", "ctx-prompt", []string{"MarketDataCancel"}, w(func(b broker.Broker) broker.Broker { return snapshotIgnoresCtx{b} })},
		{"last contract dropped", "details-match", []string{"ContractDetails"}, w(func(b broker.Broker) broker.Broker { return detailsEdit{b, dropLastDetails} })},
		{"long names as byte lists", "details-match", []string{"ContractDetails"}, w(func(b broker.Broker) broker.Broker { return detailsEdit{b, byteListNames} })},
		{"nothing found answered as an empty list", "details-errors", []string{"ContractDetails"}, w(func(b broker.Broker) broker.Broker { return notFoundEmpty{b} })},
		{"snapshot prices rounded to cents", "snapshot-quote", []string{"Snapshot"}, w(func(b broker.Broker) broker.Broker { return centsQuote{b} })},
		{"SetMarketDataType does nothing", "snapshot-type", []string{"Snapshot"}, w(func(b broker.Broker) broker.Broker { return &typeNoop{Broker: b} })},
		{"not subscribed reported as not found", "snapshot-errors", []string{"Snapshot"}, w(func(b broker.Broker) broker.Broker { return notSubscribedAsNotFound{b} })},
		{"warning 10167 fails the snapshot", "snapshot-warning", []string{"Snapshot"}, w(func(b broker.Broker) broker.Broker { return &failsOnDelayed{Broker: b} })},
		{"bars newest first", "bars-window", []string{"HistoricalBars"}, w(func(b broker.Broker) broker.Broker { return barsReversed{b} })},
		{"bars errors flattened to text", "bars-errors", []string{"HistoricalBars"}, w(func(b broker.Broker) broker.Broker { return barsErrorsText{b} })},
		{"invalid market data type accepted", "mdtype-invalid", []string{"Snapshot"}, w(func(b broker.Broker) broker.Broker { return acceptsAnyType{b} })},
		{"market data type set without a session", "market-notconnected", []string{"NotConnected"}, w(func(b broker.Broker) broker.Broker { return typeWithoutSession{b} })},

		{"quote prices rounded to cents", "quotes-value", []string{"QuoteStream"}, func(b broker.Broker, env Env) broker.Broker { return newQuoteEdit(b, env, quoteCents) }},
		{"blocking quote delivery", "quotes-conflate", []string{"QuoteStreamSlowSubscriber"}, func(b broker.Broker, env Env) broker.Broker { return newQuoteEdit(b, env, quoteBlocking) }},
		{"replaced quotes not counted", "quotes-conflate", []string{"QuoteStreamSlowSubscriber"}, func(b broker.Broker, env Env) broker.Broker { return newQuoteEdit(b, env, quoteUncounted) }},
		{"quote stream outlives its ctx", "quotes-ctx", []string{"QuoteStream", "QuoteStreamCancel"}, func(b broker.Broker, env Env) broker.Broker { return newQuoteEdit(b, env, quoteIgnoresCtx) }},
		{"quote stream not cancelled on the wire", "quotes-ctx", []string{"QuoteStream", "QuoteStreamCancel"}, func(b broker.Broker, env Env) broker.Broker { return newQuoteEdit(b, env, quoteNoWireCancel) }},
		{"quote stream outlives Close", "quotes-close", []string{"QuoteStreamClose"}, func(b broker.Broker, env Env) broker.Broker { return newQuoteEdit(b, env, quoteOutlivesClose) }},
		{"quote stream left open when market data is lost", "quotes-lost", []string{"QuoteStreamLost"}, func(b broker.Broker, env Env) broker.Broker {
			return newQuoteEdit(b, env, quoteOutlivesClose)
		}},
		{"max tickers reported as not subscribed", "quotes-errors", []string{"QuoteStreamErrors"}, func(b broker.Broker, env Env) broker.Broker {
			return newQuoteEdit(b, env, quoteMaxTickersNotSubscribed)
		}},

		{"connection loss hidden", "subscribe-events", []string{"GatewayDrop"}, w(func(b broker.Broker) broker.Broker { return filterEvents{b, broker.EventConnectionLost} })},
		{"notices hidden", "subscribe-events", []string{"Notices"}, w(func(b broker.Broker) broker.Broker { return filterEvents{b, broker.EventNotice} })},
		{"subscription outlives its ctx", "subscribe-ctx", []string{"SubscribeCancel"}, w(func(b broker.Broker) broker.Broker { return subscribeIgnoresCtx{b} })},
		{"subscription outlives Close", "subscribe-close", []string{"Close"}, w(func(b broker.Broker) broker.Broker { return subscriptionOutlivesClose{b} })},
		{"blocking delivery", "subscribe-besteffort", []string{"SlowSubscriber"}, w(func(b broker.Broker) broker.Broker { return &blockingDelivery{Broker: b, sem: make(chan struct{}, 1)} })},
		{"Subscribe after Close succeeds", "subscribe-closed", []string{"Close"}, w(func(b broker.Broker) broker.Broker { return subscribeAfterClose{b} })},

		{"Close without disconnecting", "close-disconnects", []string{"Close"}, w(func(b broker.Broker) broker.Broker { return &closeKeepsSession{Broker: b} })},
		{"second Close fails", "close-idempotent", []string{"Close"}, w(func(b broker.Broker) broker.Broker { return &closeOnce{Broker: b} })},
		{"calls in flight during Close fail with ErrNotConnected", "close-concurrent", []string{"CloseInFlight"}, w(func(b broker.Broker) broker.Broker { return &inFlightForgetsClose{Broker: b} })},
	}, orderMutants()...)
}
