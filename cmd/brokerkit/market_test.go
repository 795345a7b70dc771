package main

import (
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/brokerkit/brokerkit/fakes"
)

// TestMarketCommands: contract, quote and bars print the script's values,
// as tables, JSON (the worker's shapes) and CSV; flags may follow symbols.
func TestMarketCommands(t *testing.T) {
	gw := gatewayWith(t, fakes.Faults{})
	port := strconv.Itoa(gw.Port())
	code, out, errs := run(t, "contract", "AAPL", "--port", port, "--client-id", "61")
	if code != 0 || !strings.Contains(out, "APPLE INC") || !strings.Contains(out, "265598") || !strings.Contains(out, "NASDAQ") {
		t.Errorf("contract AAPL: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = run(t, "contract", "AAPL", "--sec-type", "", "--exchange", "", "--json", "--port", port, "--client-id", "62")
	var cd struct {
		Contracts []struct {
			Contract struct {
				ConID   int64  `json:"con_id"`
				SecType string `json:"sec_type"`
				Strike  string `json:"strike"`
			} `json:"contract"`
			LongName string `json:"long_name"`
			MinTick  string `json:"min_tick"`
		} `json:"contracts"`
	}
	if err := json.Unmarshal([]byte(out), &cd); code != 0 || err != nil || len(cd.Contracts) != 2 ||
		cd.Contracts[1].Contract.SecType != "OPT" || cd.Contracts[1].Contract.Strike != "200" || cd.Contracts[0].MinTick != "0.01" {
		t.Errorf("contract AAPL --json (any type): exit %d, %v\n%s%s", code, err, out, errs)
	}
	code, out, errs = run(t, "quote", "AAPL", "MSFT", "GME", "--port", port, "--client-id", "63")
	if code != 0 || !strings.Contains(out, "189.49") || !strings.Contains(out, "415.25") || !strings.Contains(out, "HALTED") ||
		!strings.Contains(out, "45210034.5") {
		t.Errorf("quote: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = run(t, "quote", "--json", "IBM", "--type", "delayed", "--port", port, "--client-id", "64")
	var qd struct {
		Quotes []struct {
			Bid  string `json:"bid"`
			Type string `json:"market_data_type"`
		} `json:"quotes"`
	}
	if err := json.Unmarshal([]byte(out), &qd); code != 0 || err != nil || len(qd.Quotes) != 1 || qd.Quotes[0].Bid != "241.1" || qd.Quotes[0].Type != "delayed" {
		t.Errorf("quote IBM --type delayed --json: exit %d, %v\n%s%s", code, err, out, errs)
	}
	if code, _, errs := run(t, "quote", "IBM", "--port", port, "--client-id", "65"); code != 1 || !strings.Contains(errs, "--type delayed") {
		t.Errorf("quote IBM live: exit %d, %s", code, errs)
	}
	code, out, errs = run(t, "bars", "AAPL", "--duration", "1D", "--bar", "1h", "--rth", "--end", "2026-12-01T21:00:00Z", "--csv",
		"--port", port, "--client-id", "66")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != 1+6 || rows[0][0] != "time" || rows[1][0] != "2026-12-01T15:00:00Z" {
		t.Errorf("bars --csv: exit %d, %v, %d rows\n%s%s", code, err, len(rows), out, errs)
	}
	for _, bad := range [][]string{{"bars", "AAPL", "--bar", "7x"}, {"bars", "AAPL", "--duration", "D1"}, {"quote"},
		{"contract", "AAPL", "MSFT"}, {"quote", "AAPL", "--type", "sometimes"}} {
		if code, _, _ := run(t, append(bad, "--port", port)...); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage)", bad, code)
		}
	}
}

func TestIBBarSizeAndDuration(t *testing.T) {
	for in, want := range map[string]string{"5m": "5 mins", "1m": "1 min", "1h": "1 hour", "4h": "4 hours", "1d": "1 day",
		"30s": "30 secs", "1w": "1 week", "5 mins": "5 mins"} {
		if got, err := ibBarSize(in); err != nil || got != want {
			t.Errorf("ibBarSize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"1D": "1 D", "2w": "2 W", "30 S": "30 S", "1Y": "1 Y"} {
		if got, err := ibDuration(in); err != nil || got != want {
			t.Errorf("ibDuration(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
