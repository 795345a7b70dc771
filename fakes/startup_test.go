package fakes_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/brokerkit/brokerkit/fakes"
)

// fieldCount is how many fields (message id included) scmhub's decoder.go and
// @stoqey/ib's decoder.js read from each message at server version v, written
// from their sources independently of the gateway's encoders.
func fieldCount(id string, v int) int {
	b := func(cond bool) int {
		if cond {
			return 1
		}
		return 0
	}
	switch id {
	case "6": // ACCT_VALUE v2: version, key, value, currency, account
		return 6
	case "7": // PORTFOLIO_VALUE v8: version, 11 contract fields, position, price, value, avgCost, unreal, real, account
		return 20
	case "8", "53", "54", "55", "62", "64", "72", "74": // version + one field, or version alone (53, 62)
		if id == "53" || id == "62" {
			return 2
		}
		return 3
	case "102": // COMPLETED_ORDERS_END: no version
		return 1
	case "11": // EXECUTION_DATA: see processExecutionDetailsMsg
		return 29 + b(v < 136) + b(v >= 103) + b(v >= 136) + b(v >= 178) + b(v >= 198)
	case "59": // COMMISSION_REPORT v1
		return 8
	case "71": // POSITION_MULTI: version, reqId, account, 11 contract fields, pos, avgCost, modelCode
		return 18
	case "73": // ACCOUNT_UPDATE_MULTI: version, reqId, account, modelCode, key, value, currency
		return 8
	case "94": // PNL: reqId, daily [, unrealized ≥129] [, realized ≥135]
		return 3 + b(v >= 129) + b(v >= 135)
	case "95": // PNL_SINGLE: reqId, pos, daily [, unrealized] [, realized], value
		return 5 + b(v >= 129) + b(v >= 135)
	case "4": // ERR_MSG
		return 5 + b(v >= 166)
	}
	return -1
}

// TestStartupFieldCounts sends a real client's startup requests and the other
// account requests over the raw wire at several versions and checks every
// reply's id sequence and field count, under -race too.
func TestStartupFieldCounts(t *testing.T) {
	for _, v := range []int{100, 130, 136, 178, 193, 197, 198, 200} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			s := fakes.DefaultScript()
			s.ServerVersion = v
			g := startGateway(t, s)
			c := dialRaw(t, g)
			if f := c.hello(fakes.Handshake{MinVersion: 100, MaxVersion: fakes.VersionRawIDs - 1}); f[0] != strconv.Itoa(v) {
				t.Fatalf("negotiated %s, want %d", f[0], v)
			}
			c.send("71", "2", "1", "")
			for range 5 {
				c.read()
			}
			a1 := s.Accounts[0]
			n1 := 0
			for _, p := range s.Positions {
				if p.Account == a1 {
					n1++
				}
			}
			steps := []struct {
				req  []string
				want []string // reply ids in order; "*N" repeats the next id N times
			}{
				{[]string{"5", "1"}, []string{"53"}},
				{[]string{"16", "1"}, []string{"53"}},
				{[]string{"99", "0"}, []string{"102"}},
				{[]string{"6", "2", "1", a1}, append(append(rep("6", len(s.Summary[0].Values)), rep("7", n1)...), "8", "54")},
				{[]string{"7", "3", "7", "0", "", "", "", "", "", ""}, []string{"11", "59", "11", "59", "55"}},
				{[]string{"7", "3", "8", "0", "", "", "SPY", "", "", ""}, []string{"11", "59", "55"}},
				{[]string{"74", "1", "21", a1, ""}, append(rep("71", n1), "72")},
				{[]string{"76", "1", "22", a1, "", "1"}, append(rep("73", len(s.Summary[0].Values)), "74")},
				{[]string{"92", "23", a1, ""}, []string{"94"}},
				{[]string{"94", "24", a1, "", "265598"}, []string{"95"}},
				{[]string{"9", "8", "25", "0", "NOPE", "STK"}, []string{"4"}},
				{[]string{"3", "5", "1"}, []string{"4"}},
				{[]string{"123456"}, []string{"4"}},
			}
			for _, st := range steps {
				c.send(st.req...)
				for i, id := range st.want {
					f := c.read()
					if f[0] != id || len(f) != fieldCount(id, v) {
						t.Fatalf("request %q reply %d: id %s with %d fields %q, want id %s with %d fields",
							st.req, i, f[0], len(f), f, id, fieldCount(id, v))
					}
					if id == "4" && v >= 194 {
						if _, err := strconv.ParseInt(f[len(f)-1], 10, 64); err != nil {
							t.Fatalf("ERR_MSG errorTime %q", f[len(f)-1])
						}
					}
				}
			}
			// Cancellations, REQ_MARKET_DATA_TYPE, REQ_AUTO_OPEN_ORDERS and an
			// unsubscribe are not answered: the next frame is CURRENT_TIME's.
			for _, r := range [][]string{{"75", "1", "21"}, {"77", "1", "22"}, {"93", "23"}, {"95", "24"},
				{"59", "1", "3"}, {"15", "1", "1"}, {"6", "2", "0", a1}, {"64", "1"}, {"63", "1", "9"}} {
				c.send(r...)
			}
			c.send("49", "1")
			if f := c.read(); f[0] != "49" {
				t.Fatalf("got %q after cancellations, want CURRENT_TIME", f)
			}
		})
	}
}

func rep(id string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = id
	}
	return out
}

// TestShortRequestsAreRefused: a request with fewer fields than its layout
// (what a protobuf request the fake cannot decode yet becomes from server
// version 201) gets error 321 naming it, never silence nor a guessed answer.
func TestShortRequestsAreRefused(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c := connectRaw(t, g, 1)
	for _, req := range [][]string{{"6"}, {"7", "3"}, {"99"}, {"92", "23"}, {"74", "1", "21"}} {
		c.send(req...)
		f := c.read()
		if f[0] != "4" || f[3] != "321" || !strings.Contains(f[4], "cannot read message id "+req[0]) {
			t.Fatalf("%q: got %q, want ERR_MSG 321", req, f)
		}
	}
}

// TestNoEndMarkerCoversStartup: Faults.NoEndMarkerRequest drops the end marker
// of the new startup answers too (here ACCT_DOWNLOAD_END), keeping the rows.
func TestNoEndMarkerCoversStartup(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.NoEndMarkerRequest = 1
	g := startGateway(t, s)
	c := connectRaw(t, g, 1)
	a1 := s.Accounts[0]
	c.send("6", "2", "1", a1)
	c.send("49", "1")
	var ids []string
	for {
		f := c.read()
		if f[0] == "49" {
			break
		}
		ids = append(ids, f[0])
	}
	if len(ids) == 0 || ids[len(ids)-1] != "8" {
		t.Fatalf("replies %q: want the values, portfolio and ACCT_UPDATE_TIME without ACCT_DOWNLOAD_END", ids)
	}
}

// TestExecutionFilter: REQ_EXECUTIONS keeps the script's executions that match
// every non-empty filter field; time keeps those at or after it, in either
// form IB accepts.
func TestExecutionFilter(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c := connectRaw(t, g, 1)
	for _, tc := range []struct {
		filter []string // clientId, acctCode, time, symbol, secType, exchange, side
		want   []string // exec ids
	}{
		{[]string{"0", "", "", "", "", "", ""}, []string{"0000e0d5.6745a3b1.01.01", "0000e0d5.6745a3b2.01.01"}},
		{[]string{"0", "", "20261201-15:40:00", "", "", "", ""}, []string{"0000e0d5.6745a3b2.01.01"}},
		{[]string{"0", "", "20261201 15:30:01", "", "", "", ""}, []string{"0000e0d5.6745a3b1.01.01", "0000e0d5.6745a3b2.01.01"}},
		{[]string{"0", "", "", "aapl", "", "", ""}, []string{"0000e0d5.6745a3b1.01.01"}},
		{[]string{"0", "", "", "", "", "", "SLD"}, []string{"0000e0d5.6745a3b2.01.01"}},
		{[]string{"2", "", "", "", "", "", ""}, nil},
		{[]string{"0", "DU7654321", "", "", "", "", ""}, nil},
	} {
		c.send(append([]string{"7", "3", "5"}, tc.filter...)...)
		var got []string
		for {
			f := c.read()
			if f[0] == "55" {
				break
			}
			if f[0] == "11" {
				got = append(got, f[14])
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("filter %q: executions %q, want %q", tc.filter, got, tc.want)
		}
	}
}
