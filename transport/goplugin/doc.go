// Package goplugin runs a broker.Broker in a child process and talks to it over
// gRPC, using HashiCorp go-plugin to start, handshake with and end the child.
// The host holds a *Client, which is itself a broker.Broker; the child is a
// program whose main is one call to RunWorker (or MaybeRunWorker, to ship one
// binary).
//
// # Host and child
//
//	// child (for example `brokerkit plugin`):
//	func main() {
//		if err := goplugin.RunWorker(context.Background(), func() broker.Broker { return ibkr.New() }); err != nil {
//			os.Exit(1)
//		}
//	}
//
//	// host:
//	c, err := goplugin.Start(ctx, goplugin.WithCommand("/usr/local/bin/brokerkit", "plugin"))
//	...
//	defer c.Close() // closes the child's Broker, then kills the child
//
// The handshake is Handshake (magic cookie plus protocol version); the plugin
// set holds one GRPCPlugin, Plugin, under PluginName. The connection is mutual
// TLS with fresh ECDSA P-256 certificates made by the host at every start
// (WithGoPluginAutoMTLS for go-plugin's own AutoMTLS, WithoutAutoMTLS for none). The child's log lines
// (JSON on its stderr) and anything it prints arrive in the host's logger.
//
// # The shape both transports share
//
// This package and transport/stdiojson have the same public shape: Start(ctx,
// opts...) returns a *Client that is a broker.Broker; WithCommand, WithSelf,
// WithEnv, WithLogger (default: hclog to os.Stderr at info) and WithGracePeriod
// mean the same in both; Dialer(opts...) is a robust.Dialer that starts a fresh
// child per dial; the child side is RunWorker(ctx, newBroker, opts...) or, in a
// one-binary program, MaybeRunWorker(newBroker, opts...) first thing in main,
// with WithServeLogger for the child's logger. Serve and MaybeServe are the old
// names of RunWorker and MaybeRunWorker, deprecated and kept for one release.
//
// # Wire
//
// The service is brokerkit.goplugin.v1.Broker in internal/pb/broker.proto, one
// RPC per method of broker.Broker plus a server stream for Subscribe, one for
// SubscribeAccountUpdates (broker.AccountStreamer, docs/adr/0014) and one for
// SubscribeQuotes (broker.QuoteStreamer; quotes are conflated in the child, so
// a consumer that does not read blocks only its own stream: stream_quotes.go). Exact
// decimals travel as canonical decimal strings and are never rounded. A failed
// call ends with a gRPC status carrying an Error detail {code, message, ib_code}:
// code is broker.ErrorCode of the child's error, and the host rebuilds it with
// broker.ErrorFromCode, so errors.Is(err, broker.ErrNotConnected) and
// errors.As(err, &apiErr) hold on the host exactly as in the child. The status
// code mirrors the wire code coarsely for clients that ignore details. nil and
// empty slices and maps are not told apart.
//
// Orders (broker.OrderTrader and broker.OrderStreamer) are a second service,
// brokerkit.goplugin.v1.Orders in internal/pb/orders.proto: PlaceOrder,
// ModifyOrder, CancelOrder and the SubscribeOrders server stream (queued
// events, a gap event on overflow). A child built before it answers
// Unimplemented, which the host reports as broker.ErrUnsupported.
//
// # Failure
//
// The caller's context crosses with each call (deadline and cancellation), and
// a call whose context ends returns an error matching ctx.Err(). When the child
// process exits or is killed, every call in flight and every later call fails at
// once with an error matching broker.ErrUnavailable; the Client does not restart
// the child (that is a decorator's job). An order call is the exception: once
// its RPC has started, a lost answer (the child exited, Close, the context
// ended) fails with broker.ErrOutcomeUnknown wrapping that cause, since the
// child may have sent the order; the child's own error answers cross as they are. A panic in the child's Broker fails
// that call with code "internal" and leaves the child serving.
//
// The child exits when its host dies, which go-plugin does not arrange by
// itself (go-plugin issue #210): on Linux the kernel sends it SIGKILL when its
// parent dies (PR_SET_PDEATHSIG; SIGKILL because a stopped child would leave
// any other signal pending), and on every Unix the child also polls its parent
// pid, then closes its Broker before it exits. The child's socket file is
// removed as soon as the host has connected, so no exit leaves it behind.
//
// Close is bounded by the grace period (WithGracePeriod): a child that has not
// exited by then, however stuck or stopped, is killed with SIGKILL. A decorator
// such as robust that pings the child therefore replaces a frozen child within
// its health interval × misses + the grace period.
//
// # Stray output
//
// go-plugin reads its handshake line from the child's stdout, so a library that
// prints to stdout before the handshake breaks the start (go-plugin issue #199).
// In a process a host started, this package puts a guard on file descriptor 1
// when it is initialised, before main: only the handshake line reaches the host's
// stdout pipe, and every other write, before or after the handshake, through
// fmt.Println, os.Stdout or the raw descriptor, is logged in the host as a
// "stray write to stdout". (After the handshake go-plugin also points os.Stdout
// and os.Stderr at pipes that it forwards to the host; Start logs those too.)
// The guard is Linux only.
package goplugin
