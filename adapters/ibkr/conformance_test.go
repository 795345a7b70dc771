package ibkr_test

import (
	"strconv"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/fakes"
)

func newConformanceAdapter(t conformance.TB, _ conformance.Env) broker.Broker {
	a := ibkr.New(ibkr.WithLogger(testLogger(t)))
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// serverVersions is the matrix the kit runs at: ib_async's newest version
// (178), the newest text version (193, what @stoqey/ib gets), the first binary
// one (201), the one where accounts, positions and the summary move to
// protobuf (207), the one where START_API, REQ_IDS and REQ_CURRENT_TIME do
// (213), and the fake's default, the newest scmhub speaks (225).
var serverVersions = []int{178, fakes.TextServerVersion, fakes.VersionRawIDs, fakes.VersionProtobufAccounts,
	fakes.VersionProtobufRest3, fakes.DefaultServerVersion}

// TestConformance runs the whole kit at every version of the matrix (about
// five seconds each).
func TestConformance(t *testing.T) {
	for _, v := range serverVersions {
		t.Run(strconv.Itoa(v), func(t *testing.T) {
			conformance.Run(t, newConformanceAdapter, conformance.Features{ServerVersion: v})
		})
	}
}

// TestStateMachineVersions runs the model-based test at each version of the
// matrix (conformance's own TestStateMachineAdapter runs it at the default).
func TestStateMachineVersions(t *testing.T) {
	for _, v := range serverVersions {
		t.Run(strconv.Itoa(v), func(t *testing.T) {
			conformance.RunStateMachine(t, func(t conformance.TB, env conformance.Env) broker.Broker {
				a := ibkr.New()
				t.Cleanup(func() { _ = a.Close() })
				return a
			}, conformance.StateMachineFeatures{Features: conformance.Features{ServerVersion: v}, Checks: 3, Steps: 15})
		})
	}
}

// testLogger writes through t.Log at Debug when -v is given, else discards.
func testLogger(t conformance.TB) hclog.Logger {
	if !testing.Verbose() {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Debug, Output: tWriter{t}})
}

type tWriter struct{ t conformance.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Logf("%s", p)
	return len(p), nil
}
