// Package stdiojson carries the broker.Broker port over a child process that speaks
// JSON lines on its stdin and stdout, so that the IB API client runs, and can freeze
// or crash, outside the trading program. The host side is [Start], which returns a
// [*Client] implementing broker.Broker; the child side is [Serve], wrapped for real
// processes by [RunWorker] and [MaybeRunWorker].
//
// # The protocol
//
// One JSON object per line in each direction; requests carry an "id" that their
// response echoes, so many calls are in flight at once and a call abandoned by its
// context never desynchronises the stream. Requests without an id are the original
// plan's lines: they are executed one after another and answered in order, with
// nothing else on the stream. Errors travel as the stable codes of
// [broker.ErrorCode] and come back as the same sentinels, so errors.Is works alike
// in-process and across the pipe. Streams (account updates, quotes) are event
// lines named by a host-chosen subscription; quotes are conflated by the worker
// and the host, so a host that reads slowly costs neither memory nor other
// answers (stream_quotes.go). PROTOCOL.md beside this file specifies every
// message, for clients in any language.
//
// The Client is also a broker.OrderTrader and broker.OrderStreamer
// (place_order, modify_order, cancel_order, subscribe_orders; ops_orders.go).
// An order command is never retried, and one whose line reached the worker but
// whose answer could not be read (the worker died, the context ended, Close)
// fails with broker.ErrOutcomeUnknown wrapping that cause: the worker may have
// sent the order (PROTOCOL.md, "Orders").
//
// # Two ways to run the worker
//
// A separate worker binary: the brokerkit command's "brokerkit worker" subcommand
// serves the IBKR adapter; the host starts it with
//
//	c, err := stdiojson.Start(ctx, stdiojson.WithCommand("/usr/local/bin/brokerkit", "worker"))
//
// One binary that is both host and worker: call [MaybeRunWorker] first thing in
// main, and start the worker with [WithSelf]. The host re-executes its own
// executable with the environment variable [EnvWorker] set, and in that child
// MaybeRunWorker serves the Broker and exits instead of returning:
//
//	func main() {
//		stdiojson.MaybeRunWorker(func() broker.Broker { return ibkr.New() })
//		c, err := stdiojson.Start(ctx, stdiojson.WithSelf())
//		...
//	}
//
// # Stdout hygiene and lifetime
//
// [RunWorker] moves the protocol to a private duplicate of file descriptor 1 and
// points both fd 1 and os.Stdout at stderr, so a stray print anywhere in the worker
// (scmhub/ibapi has one) lands in the log instead of corrupting the stream. The
// worker exits when its stdin closes or on SIGTERM or SIGINT, disconnecting from
// the gateway first, and (on Linux) is killed when its parent dies, even if it
// is stopped. The host forwards the worker's
// stderr line by line into its hclog logger; when the worker dies, every call in
// flight and every later call fails at once with broker.ErrUnavailable; Close
// disconnects, closes stdin, waits a grace period, kills if need be, and always
// reaps the child.
package stdiojson
