package stdiojson

import (
	"testing"

	"github.com/brokerkit/brokerkit/broker"
)

// TestServeOpsCoverThePort holds the codec table to the port: every operation
// of broker.Ops has a worker entry and is announced by hello, and the table has
// no entry for an operation the port does not list.
func TestServeOpsCoverThePort(t *testing.T) {
	announced := map[string]bool{}
	for _, name := range commandNames() {
		announced[name] = true
	}
	ops := map[broker.Op]bool{}
	for _, op := range broker.Ops() {
		ops[op] = true
		if serveOps[op] == nil {
			t.Errorf("operation %q has no entry in serveOps (ops.go)", op)
		}
		if !announced[string(op)] {
			t.Errorf("operation %q is not announced by hello", op)
		}
	}
	for op := range serveOps {
		if !ops[op] {
			t.Errorf("serveOps has an entry for %q, which broker.Ops does not list", op)
		}
	}
}
