// Package conformance checks that a broker.Broker keeps the contract written on
// the broker.Broker interface, by running it against fresh scripted fake IB
// Gateways (package fakes). Every adapter, transport and decorator of brokerkit
// calls Run from its tests; a third-party implementation can do the same.
//
// # Use
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, func(t *testing.T, env conformance.Env) broker.Broker {
//			b := mybroker.New()
//			t.Cleanup(func() { b.Close() })
//			return b
//		}, conformance.Features{})
//	}
//
// Run runs one subtest per property, each with its own gateway (Env) and its own
// Broker from the factory; some cases ask the factory for a second Broker on
// the same gateway. The factory must not connect: the cases do. It should
// register Close with t.Cleanup; the cases call Close themselves where it
// matters, and Close must be idempotent anyway.
//
// Each case is also exported (TestConnect, TestPositions, ...) and listed by
// Cases, so that an implementation can rerun one case, and each takes a TB
// rather than a *testing.T, so that the kit's own tests can run a case against
// a deliberately broken Broker and observe that it fails.
//
// # Data
//
// The gateway serves StandardScript: accounts, positions with fractional,
// negative, large and tiny quantities and non-ASCII symbols, and an account
// summary with negative, large and non-numeric values. Its numbers stay inside
// what the TWS API carries exactly (quantities with at most 7 fractional digits
// below 1e11, prices with at most 15 significant digits), so an implementation
// that loses a digit is wrong, not unlucky.
//
// # Timing
//
// Every case runs under a watchdog (CaseTimeout): a case that hangs panics with
// every goroutine's stack rather than waiting for go test's global timeout.
// Bounds on durations are generous upper bounds meant to catch hangs and
// ignored contexts, never speed; the whole kit takes a few seconds and is meant
// to run under -race.
//
// # Crashes
//
// A Broker whose client runs in a child process sets Features.Crash to a hook
// that kills that process (KillPID); TestChildCrash then checks that calls fail
// at once with broker.ErrUnavailable, or, with Features.Reconnects, that they
// succeed again. Run skips the case, naming the field, when the hook is nil.
//
// # State machine and generators
//
// RunStateMachine drives a Broker with random sequences of actions (connect,
// disconnect, every read, concurrent bursts, new generated scripts, slow
// replies, stalled handshakes, refused client ids, gateway drops, 1100/1102,
// crashes where Features allow) beside a model of what the contract predicts,
// with pgregory.net/rapid; failing sequences are saved under testdata/rapid
// and replayed first on the next run. The generators (GenScript, GenPosition,
// GenQuantity, ...) produce data within what the TWS API carries exactly, for
// third-party tests too.
package conformance
