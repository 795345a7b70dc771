package main

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// TestReadJSONMatchesTheWorker: portfolio, executions and orders print, with
// --json, the script's values exactly and the fields of the stdiojson
// worker's answers, field for field.
func TestReadJSONMatchesTheWorker(t *testing.T) {
	gw := gatewayWith(t, fakes.Faults{})
	port := strconv.Itoa(gw.Port())
	clientID := 60
	cli := func(args ...string) map[string]any {
		t.Helper()
		clientID++ // the gateway may not yet have seen the previous command's socket close
		code, out, errs := run(t, append(args, "--port", port, "--client-id", strconv.Itoa(clientID), "--json")...)
		var doc map[string]any
		if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
			t.Fatalf("%v: exit %d, %v: %s %s", args, code, err, out, errs)
		}
		return doc
	}
	s := fakes.DefaultScript()

	var got struct {
		Updates    []broker.AccountUpdate `json:"updates"`
		Executions []broker.Execution     `json:"executions"`
		Orders     []broker.Order         `json:"orders"`
	}
	portfolio := cli("portfolio")
	executions := cli("executions", "--symbol", "SPY")
	open, completed := cli("orders", "--open"), cli("orders", "--completed")
	for _, doc := range []map[string]any{portfolio, executions, open} {
		b, _ := json.Marshal(doc)
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
	}
	for i, acct := range s.Accounts {
		want, _ := s.AccountUpdate(acct)
		if i >= len(got.Updates) {
			t.Fatalf("portfolio printed %d accounts, want %d", len(got.Updates), len(s.Accounts))
		}
		want.UpdateTime = got.Updates[i].UpdateTime
		if diff := cmp.Diff(want, got.Updates[i]); diff != "" {
			t.Errorf("portfolio %s (-script +cli):\n%s", acct, diff)
		}
	}
	if diff := cmp.Diff(s.ExecutionsMatching(broker.ExecutionFilter{Symbol: "SPY"}), got.Executions); diff != "" {
		t.Errorf("executions --symbol SPY (-script +cli):\n%s", diff)
	}
	for name, doc := range map[string]map[string]any{"open": open, "completed": completed} {
		if l, ok := doc["orders"].([]any); !ok || len(l) != 0 {
			t.Errorf("orders --%s: %v, want an empty list", name, doc)
		}
	}

	ask := workerAsker(t)
	ask(1, `{"id":1,"command":"connect","host":"127.0.0.1","port":`+port+`,"client_id":71}`)
	update := ask(2, `{"id":2,"command":"get_account_updates","account":"`+s.Accounts[0]+`"}`)["update"]
	workerExec := ask(3, `{"id":3,"command":"get_executions","filter":{"symbol":"SPY"}}`)["executions"]
	for part, pair := range map[string][2]any{
		"updates":    {[]any{update}, portfolio["updates"]},
		"portfolio":  {update.(map[string]any)["portfolio"], portfolio["updates"].([]any)[0].(map[string]any)["portfolio"]},
		"executions": {workerExec, executions["executions"]},
	} {
		want, got := fieldsOf(pair[0]), fieldsOf(pair[1])
		if len(want) == 0 || !slices.Equal(want, got) {
			t.Errorf("%s fields: worker %v, CLI %v", part, want, got)
		}
	}
}
