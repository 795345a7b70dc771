// Package bench holds brokerkit's cross-transport benchmarks: each figure is
// measured beside a baseline in the same run (a raw pipe echo, the in-process
// adapter), so that `make bench` can print ratios that mean something on any machine.
//
// The package has no API; its content is bench_test.go. Run it with
//
//	go test -run='^$' -bench=. -benchmem ./bench/ | tee bench.txt
//	go run ./scripts/benchtable < bench.txt
//
// # What is measured
//
//   - Ping: one round trip through each transport to a Broker that answers from
//     memory, against a raw pipe echo of the same request bytes by a child process.
//   - PingFloor: the physical floors in the same run: a cat(1) echo of the
//     stdiojson ping line (a child with no runtime to wake); a bare gRPC unary
//     echo to a child over a Unix socket with the transport's options, with and
//     without its mutual TLS; go-plugin's net/rpc protocol.
//   - PingGateway: Ping through the IBKR adapter to the fake gateway, in process
//     and through each transport.
//   - Throughput: Ping from 1 to 256 concurrent callers through each transport
//     to the in-memory Broker (ops/s); ThroughputFloor: a raw pipe (Go echo
//     child, and cat) with 64 requests in flight.
//   - Latency: the percentiles of one caller's round trips, per transport and floor.
//   - Positions: 10 to 100 000 positions from the fake gateway through the IBKR
//     adapter, in process and through each transport (time and bytes allocated
//     by the calling process).
//   - ColdStart: spawn the worker, handshake, Connect and the first Accounts
//     (goplugin with its default P-256 mutual TLS, without TLS, and with
//     go-plugin's P-521 AutoMTLS).
//   - KillRecover: through package robust, the time from SIGKILL of the worker to
//     the next successful call (median and p95 over batches of 20 kills).
//   - QuoteTicks, QuoteLatency (quotes_test.go): quote updates received per
//     second with 1 and 500 subscribed contracts while the fake gateway writes
//     more steps than any path delivers (the rest is conflated and counted), and
//     the latency from the gateway's write of a step to the subscriber's
//     receive, in process, behind each transport and behind robust around
//     stdiojson. `make bench` runs them in its first QUOTECOUNT passes (default 2).
//
// With BROKERKIT_BENCH_BUSY=1 (make bench BUSY=1) every benchmark runs beside
// one unrelated process spinning a core for the whole run; on an idle VM the
// floors are bimodal (CPU idle exits), so the targets apply to the busy run.
//
// Workers are this test binary run again with a first argument naming the
// transport (go-plugin's helper-process pattern), so nothing needs building first.
package bench
