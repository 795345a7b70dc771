// Package broker is brokerkit's port: the Broker interface that every adapter,
// transport and decorator implements, with its value types, events and errors.
// It imports nothing else of brokerkit, so the trading program, the out-of-process
// transports and the Interactive Brokers adapter all meet here and nowhere else.
//
// # The contract
//
// The comments on [Broker] are the contract. Implementations are checked against
// it by the conformance package; callers may rely on every sentence of it whatever
// implementation (in-process adapter, child process, decorator) they hold.
//
// # Errors
//
// Every implementation returns errors that match the sentinels of this package with
// [errors.Is] (for example [ErrNotConnected]), on either side of a process boundary.
// Errors cross a boundary as a stable code (see [ErrorCode] and [ErrorFromCode]);
// error types do not survive the crossing, sentinels and [APIError] do.
//
// # Exact decimals
//
// Quantities and money values are [Decimal]s: arbitrary-precision decimal text
// that is never rounded through float64 on any path.
package broker
