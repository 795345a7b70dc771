package fakes_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

var update = flag.Bool("update", false, "rewrite testdata/demo.json from DefaultScript")

const demoPath = "testdata/demo.json"

func TestDemoJSONIsDefaultScript(t *testing.T) {
	if *update {
		b, err := json.MarshalIndent(fakes.DefaultScript(), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(demoPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := fakes.LoadScript(demoPath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fakes.DefaultScript(), s); diff != "" {
		t.Fatalf("%s differs from DefaultScript (-want +got); run go test -run TestDemoJSON -update:\n%s", demoPath, diff)
	}
}

func TestDefaultScriptIsRealistic(t *testing.T) {
	s := fakes.DefaultScript()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(s.Accounts) != 2 {
		t.Fatalf("accounts %v, want 2", s.Accounts)
	}
	for _, a := range s.Accounts {
		if !strings.HasPrefix(a, "DU") {
			t.Errorf("account %q is not a paper account", a)
		}
	}
	var fractional, short bool
	secTypes := map[string]bool{}
	for _, p := range s.Positions {
		fractional = fractional || !p.Quantity.Rat().IsInt()
		short = short || p.Quantity.Cmp(broker.Decimal{}) < 0
		secTypes[p.Contract.SecType] = true
	}
	if !fractional || !short {
		t.Errorf("positions need a fractional (%v) and a short (%v) quantity", fractional, short)
	}
	for _, st := range []string{"STK", "OPT", "CASH", "FUT"} {
		if !secTypes[st] {
			t.Errorf("no %s position", st)
		}
	}
	for _, a := range s.Summary {
		for _, tag := range broker.DefaultSummaryTags {
			if _, ok := a.Values[tag]; !ok {
				t.Errorf("account %s: no %s in the summary", a.Account, tag)
			}
		}
		if a.Values["NetLiquidation"].Currency == "" {
			t.Errorf("account %s: NetLiquidation has no currency", a.Account)
		}
	}
}

func TestParseScriptErrors(t *testing.T) {
	cases := map[string]string{
		"unknown field":        `{"accounts":[],"positions":[],"summary":[],"colour":"red"}`,
		"unknown nested field": `{"positions":[{"account":"DU1","contract":{"con_id":1,"symbol":"X","sec_type":"STK","isin":"x"},"quantity":"1","avg_cost":"1"}]}`,
		"decimal as number":    `{"positions":[{"account":"DU1","contract":{"con_id":1,"symbol":"X","sec_type":"STK"},"quantity":0.5,"avg_cost":"1"}]}`,
		"bad decimal":          `{"positions":[{"account":"DU1","contract":{"con_id":1,"symbol":"X","sec_type":"STK"},"quantity":"1e3","avg_cost":"1"}]}`,
		"missing quantity":     `{"positions":[{"account":"DU1","contract":{"con_id":1,"symbol":"X","sec_type":"STK"},"avg_cost":"1"}]}`,
		"bad strike":           `{"positions":[{"account":"DU1","contract":{"con_id":1,"symbol":"X","sec_type":"OPT","strike":"abc"},"quantity":"1","avg_cost":"1"}]}`,
		"bad multiplier":       `{"positions":[{"account":"DU1","contract":{"con_id":1,"symbol":"X","sec_type":"OPT","multiplier":"x"},"quantity":"1","avg_cost":"1"}]}`,
		"bad duration":         `{"faults":{"reply_delay":"soon"}}`,
		"duration as number":   `{"faults":{"notices":[{"after":150,"code":1100}]}}`,
		"version out of range": `{"server_version":226}`,
		"comma in account":     `{"accounts":["DU1,DU2"]}`,
		"NUL in text":          `{"accounts":["DU\u0000"]}`,
		"negative fault":       `{"faults":{"close_after_messages":-1}}`,
		"trailing data":        `{} {}`,
		"not JSON":             `accounts: [DU1]`,
	}
	for name, in := range cases {
		if s, err := fakes.ParseScript([]byte(in)); !errors.Is(err, broker.ErrInvalidArgument) {
			t.Errorf("%s: ParseScript = %+v, %v; want ErrInvalidArgument", name, s, err)
		}
	}
	if _, err := fakes.LoadScript(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadScript of a missing file: %v", err)
	}
}

func TestParseScriptFaults(t *testing.T) {
	in := `{"server_version":176,"accounts":["DU1"],"faults":{"stall_handshake":true,"close_before_handshake":true,
	"close_after_messages":4,"reply_delay":"150ms","malformed_after_requests":2,"malformed_fields":["49","1"],
	"half_open_after_requests":3,"notices":[{"after":"1.5s","code":1100},{"after":"2s","code":1102,"message":"back"}],
	"refuse_client_ids":[7]}}`
	got, err := fakes.ParseScript([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := fakes.Script{ServerVersion: 176, Accounts: []string{"DU1"}, Faults: fakes.Faults{
		StallHandshake: true, CloseBeforeHandshake: true, CloseAfterMessages: 4, ReplyDelay: 150 * time.Millisecond,
		MalformedAfterRequests: 2, MalformedFields: []string{"49", "1"}, HalfOpenAfterRequests: 3,
		Notices:         []fakes.TimedNotice{{After: 1500 * time.Millisecond, Code: broker.IBCodeConnectivityLost}, {After: 2 * time.Second, Code: broker.IBCodeRestoredDataMaintained, Message: "back"}},
		RefuseClientIDs: []int64{7},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

// Any valid script survives MarshalJSON → ParseScript unchanged.
func TestScriptJSONRoundTripProperty(t *testing.T) {
	text := rapid.StringMatching(`[A-Za-z0-9 .:$_-]{0,12}`)
	dec := rapid.Custom(func(t *rapid.T) broker.Decimal {
		return broker.MustDecimal(rapid.StringMatching(`-?[0-9]{1,12}(\.[0-9]{1,8})?`).Draw(t, "decimal"))
	})
	rapid.Check(t, func(t *rapid.T) {
		s := fakes.Script{
			ServerVersion: rapid.SampledFrom([]int{0, 100, 166, 193, 200, 201, 207, 225}).Draw(t, "version"),
			Accounts:      rapid.SliceOf(rapid.StringMatching(`DU[0-9]{1,7}`)).Draw(t, "accounts"),
			NextValidID:   rapid.Int64Range(0, 1<<40).Draw(t, "next"),
		}
		for range rapid.IntRange(0, 4).Draw(t, "positions") {
			s.Positions = append(s.Positions, broker.Position{
				Account: text.Draw(t, "account"),
				Contract: broker.Contract{ConID: rapid.Int64().Draw(t, "conid"), Symbol: text.Draw(t, "symbol"),
					SecType: text.Draw(t, "sectype"), Expiry: text.Draw(t, "expiry"), Strike: dec.Draw(t, "strike"),
					Right: text.Draw(t, "right"), Multiplier: rapid.SampledFrom([]string{"", "100", "0.1"}).Draw(t, "mult"),
					Exchange: text.Draw(t, "exch"), Currency: text.Draw(t, "cur"), LocalSymbol: text.Draw(t, "local"),
					TradingClass: text.Draw(t, "class")},
				Quantity: dec.Draw(t, "qty"), AvgCost: dec.Draw(t, "cost"),
			})
		}
		for range rapid.IntRange(0, 3).Draw(t, "summaries") {
			vals := map[string]broker.SummaryValue{}
			for range rapid.IntRange(0, 4).Draw(t, "tags") {
				vals[rapid.StringMatching(`[A-Za-z]{1,10}`).Draw(t, "tag")] = broker.SummaryValue{
					Value: text.Draw(t, "value"), Currency: text.Draw(t, "currency")}
			}
			s.Summary = append(s.Summary, broker.AccountSummary{Account: text.Draw(t, "sacct"), Values: vals})
		}
		if rapid.Bool().Draw(t, "faults") {
			s.Faults = fakes.Faults{
				StallHandshake: rapid.Bool().Draw(t, "stall"), CloseAfterMessages: rapid.IntRange(0, 9).Draw(t, "cam"),
				ReplyDelay:             time.Duration(rapid.Int64Range(0, int64(time.Hour)).Draw(t, "delay")),
				MalformedAfterRequests: rapid.IntRange(0, 9).Draw(t, "mal"),
				Notices: []fakes.TimedNotice{{After: time.Duration(rapid.Int64Range(0, int64(time.Minute)).Draw(t, "after")),
					Code: rapid.Int64Range(1, 3000).Draw(t, "code"), Message: text.Draw(t, "msg")}},
			}
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fakes.ParseScript(b)
		if err != nil {
			t.Fatalf("ParseScript(%s): %v", b, err)
		}
		if diff := cmp.Diff(s, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s\n%s", diff, b)
		}
	})
}

func TestCloneIsDeep(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.Notices = []fakes.TimedNotice{{Code: broker.IBCodeConnectivityLost}}
	s.Faults.MalformedFields = []string{"x"}
	s.Faults.RefuseClientIDs = []int64{1}
	c := s.Clone()
	c.Accounts[0] = "x"
	c.Positions[0].Account = "x"
	c.Summary[0].Values["NetLiquidation"] = broker.SummaryValue{}
	c.Faults.Notices[0].Code = 1
	c.Faults.MalformedFields[0] = "y"
	c.Faults.RefuseClientIDs[0] = 2
	want := fakes.DefaultScript()
	want.Faults.Notices = []fakes.TimedNotice{{Code: broker.IBCodeConnectivityLost}}
	want.Faults.MalformedFields = []string{"x"}
	want.Faults.RefuseClientIDs = []int64{1}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Fatalf("Clone shares memory with the original (-want +got):\n%s", diff)
	}
}

func TestMarshalOmitsZeroFaults(t *testing.T) {
	b, err := json.Marshal(fakes.Script{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"accounts":[],"positions":[],"summary":[]}`; !bytes.Equal(b, []byte(want)) {
		t.Fatalf("got %s, want %s", b, want)
	}
}
