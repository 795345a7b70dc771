// Package conformance checks that a broker.Broker keeps the contract written on
// the broker.Broker interface, by running it against fresh scripted fake IB
// Gateways (package fakes). Every adapter, transport and decorator of brokerkit
// calls Run from its tests; a third-party implementation can do the same.
//
// # Use
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, func(t conformance.TB, env conformance.Env) broker.Broker {
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
// matters, and Close must be idempotent anyway. The same Factory serves Run,
// Record and RunStateMachine; its TB is a *testing.T, the kit's recorder or a
// *rapid.T, so a factory uses only the methods of TB.
//
// # Harnesses
//
// Each case is also exported (TestConnect, TestPositions, ...) and listed by
// Cases. Record(case, factory, features) runs one case and returns a Result
// (failures, logs, skip reason, whether it hung and every goroutine's stack if
// so) instead of failing a test, so that a third party's harness, or the kit's
// own mutation tests, decide what a failure means. A case that does not apply
// skips itself saying why (TestChildCrash without Features.Crash names the
// field), whether it is run by Run, by Record or called directly.
//
// # Parallelism
//
// Cases must not run in parallel with each other or with other tests of the
// same process: several of them compare the process's goroutines and file
// descriptors before and after (goleak), which another test's goroutines would
// blur. Run runs its subtests one after the other and never calls t.Parallel;
// do not call it from a parallel test. To go faster, run cases in separate
// processes (as TestMutants does).
//
// # Data
//
// The gateway serves StandardScript: accounts, positions with fractional,
// negative, large and tiny quantities and non-ASCII symbols, and an account
// summary with negative, large and non-numeric values. Its numbers stay inside
// what the TWS API carries exactly (quantities with at most 7 fractional digits
// below 1e11, prices with at most 15 significant digits), so an implementation
// that loses a digit is wrong, not unlucky. Its order exposes an implementation
// that reorders: accounts are not sorted, positions of different accounts
// interleave and repeat contracts, and the summary names accounts in yet
// another order, including one the gateway does not manage and one named twice.
//
// # Timing
//
// Run and Record put every case under a watchdog (CaseTimeout, or
// Features.CaseTimeout): a case that hangs fails with every goroutine's stack,
// and nothing panics. Bounds on durations are generous upper bounds meant to
// catch hangs and ignored contexts, never speed: a call returns within
// PromptBound (250 ms) once its context is done, and the gateway sees a
// connection the Broker let go closed within SocketBound. The whole kit takes
// a few seconds over the in-process adapter and is meant to run under -race.
//
// # Crashes
//
// A Broker whose client runs in a child process sets Features.Crash to a hook
// that kills that process (KillPID); TestChildCrash then checks that calls fail
// at once with broker.ErrUnavailable, or, with Features.Reconnects, that they
// succeed again. The case skips itself, naming the field, when the hook is nil.
//
// # Proof
//
// conformance/CONTRACT.md maps every sentence of the broker.Broker contract to
// the cases that check it and to the mutants (deliberately broken Brokers,
// conformance/internal/mutants) that prove they do: `make mutants` fails if
// any mutant passes the cases that should kill it.
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
