package ibkr_test

import (
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t conformance.TB, env conformance.Env) broker.Broker {
		a := ibkr.New(ibkr.WithLogger(testLogger(t)))
		t.Cleanup(func() { _ = a.Close() })
		return a
	}, conformance.Features{})
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
