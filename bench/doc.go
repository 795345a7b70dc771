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
//   - PingGateway: Ping through the IBKR adapter to the fake gateway, in process
//     and through each transport.
//   - Throughput: Ping from 1, 8 and 64 concurrent callers through each transport
//     to the in-memory Broker (ops/s).
//   - Positions: 100, 10 000 and 100 000 positions from the fake gateway through
//     the IBKR adapter, in process and through each transport (time and bytes
//     allocated by the calling process).
//   - ColdStart: spawn the worker, handshake, Connect and the first Accounts.
//   - KillRecover: through package robust, the time from SIGKILL of the worker to
//     the next successful call (median and p95 over batches of 20 kills).
//
// Workers are this test binary run again with a first argument naming the
// transport (go-plugin's helper-process pattern), so nothing needs building first.
package bench
