package ibkr_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/fakes"
)

// stdoutMu serialises the swaps of os.Stdout by captureStdout.
var stdoutMu sync.Mutex

// captureStdout points os.Stdout at a pipe while fn runs and returns what was
// written to it. scmhub writes with fmt.Println, which goes through the
// os.Stdout variable, so the swap catches it; writes straight to file
// descriptor 1 would not be caught (scmhub has none).
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	func() {
		defer func() { os.Stdout = saved }()
		fn()
	}()
	_ = w.Close()
	s := <-out
	_ = r.Close()
	return s
}

// typed reports whether err is one a caller can act on: it matches one of
// broker's sentinels or holds an *broker.APIError.
func typed(err error) bool {
	return broker.ErrorCode(err) != broker.CodeInternal
}

// FuzzAdapterGatewayMessages connects the adapter to a fake gateway, has the
// gateway send one arbitrary message (fields separated by NUL in the input),
// then checks the adapter:
//
//   - no panic escapes (scmhub's decoder panics on bad input; the adapter
//     must keep that inside);
//   - a Ping right after answers, or fails with a typed error (the session
//     ended: broker.ErrNotConnected), never hangs until its deadline;
//   - then Positions, AccountSummary and Accounts answer or fail typed, and
//     a session the message ended can be connected again;
//   - nothing is written to os.Stdout while the session stays alive. scmhub
//     prints an undecodable integer field with fmt.Println before ending the
//     session (a documented limit of the in-process adapter, contained by the
//     out-of-process transports); output is therefore allowed only when the
//     message ended the session, and is logged.
func FuzzAdapterGatewayMessages(f *testing.F) {
	for _, seed := range []string{
		"49\x001\x001767225600", // CURRENT_TIME
		"49\x001\x00not-an-int", // undecodable integer: scmhub prints it and ends the session
		"4\x00-1\x002104\x00Market data farm OK\x00\x001767225600000", // notice
		"4\x00-1\x001100\x00Connectivity lost\x00\x001767225600000",
		"4\x00-1\x001102\x00Connectivity restored\x00\x00",
		"4\x001048577\x00200\x00No security definition\x00\x00",
		"4\x00-1\x00326\x00client id in use\x00\x00",
		"15\x001\x00DU1,DU2,,U3", // MANAGED_ACCTS
		"9\x001\x00-5",           // NEXT_VALID_ID
		"61\x003\x00DU1\x00265598\x00AAPL\x00STK\x00\x000\x00\x00\x00SMART\x00USD\x00AAPL\x00NMS\x00100\x00150.25", // unsolicited POSITION_DATA
		"61\x003\x00DU1\x00x\x00AAPL", // truncated POSITION_DATA
		"62\x001",                     // POSITION_END with nothing pending
		"63\x001\x001048577\x00DU1\x00NetLiquidation\x00100\x00USD",
		"64\x001\x001048577",
		"61\x003\x00DU1\x00265598\x00AAPL\x00STK\x00\x00NaN\x00\x00\x00SMART\x00USD\x00AAPL\x00NMS\x00\x00Infinity",
		"", "0", "-1", "999999", "1\x00", "4", "4\x00\x00\x00",
		strings.Repeat("9", 40),
		"\xff\xfe\x00\x80",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		fields := strings.Split(raw, "\x00")
		g, err := fakes.NewGateway(conformance.StandardScript())
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		a := ibkr.New()
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		p := broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: 5, Timeout: 5 * time.Second}
		if _, err := a.Connect(ctx, p); err != nil {
			t.Fatalf("Connect: %v", err)
		}

		var pingErr error
		out := captureStdout(t, func() {
			if g.SendRaw(fields...) == 0 {
				return // not frameable (too long, no field): nothing was sent
			}
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			defer pcancel()
			pingErr = a.Ping(pctx)
		})
		switch {
		case errors.Is(pingErr, context.DeadlineExceeded):
			t.Fatalf("Ping after message %q hung until its deadline: the session broke silently", fields)
		case pingErr != nil && !typed(pingErr):
			t.Fatalf("Ping after message %q: untyped error %v", fields, pingErr)
		case pingErr == nil && out != "":
			t.Fatalf("message %q wrote %q to stdout and the session lives on", fields, out)
		case out != "":
			t.Logf("scmhub wrote %q to stdout before ending the session (documented)", out)
		}

		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		if _, err := a.Positions(cctx); err != nil && (!typed(err) || errors.Is(err, context.DeadlineExceeded)) {
			t.Fatalf("Positions after message %q: %v", fields, err)
		}
		if _, err := a.AccountSummary(cctx, "NetLiquidation"); err != nil && (!typed(err) || errors.Is(err, context.DeadlineExceeded)) {
			t.Fatalf("AccountSummary after message %q: %v", fields, err)
		}
		if _, err := a.Accounts(cctx); err != nil && !typed(err) {
			t.Fatalf("Accounts after message %q: %v", fields, err)
		}
		if pingErr != nil {
			// The session ended: the adapter must connect again.
			for deadline := time.Now().Add(5 * time.Second); len(g.LiveClientIDs()) > 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("gateway still holds sessions %v", g.LiveClientIDs())
				}
			}
			if _, err := a.Connect(cctx, p); err != nil {
				t.Fatalf("Connect after message %q ended the session: %v", fields, err)
			}
			if err := a.Ping(cctx); err != nil {
				t.Fatalf("Ping on the new session: %v", err)
			}
		}
	})
}

// TestUnsetQuantity: IB's "no value" marker as a quantity fails Positions with
// broker.ErrProtocol, as a data error of that call: the session stays usable.
func TestUnsetQuantity(t *testing.T) {
	s := conformance.StandardScript()
	s.Positions[1].Quantity = broker.MustDecimal(conformance.UnsetQuantity)
	_, a, ctx := connected(t, s)
	ps, err := a.Positions(ctx)
	if !errors.Is(err, broker.ErrProtocol) || errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("Positions with an unset quantity: %v, %v; want ErrProtocol and a live session", ps, err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Errorf("Ping after the refused quantity: %v", err)
	}
}

// TestExactDecimals: every quantity, average cost and strike arrives exactly
// as the gateway's text, up to broker.MaxDecimalDigits digits, although scmhub
// rounds quantities to 7 fractional digits (NaN from about 9.22e11) and
// carries prices as float64. Before the adapter read the raw fields, these
// arrived as 0, rounded, or failed the whole list with ErrProtocol.
func TestExactDecimals(t *testing.T) {
	// The text protocol, with text or raw ids: from 207 the protocol itself
	// carries costs and strikes as doubles (TestExactQuantitiesProtobuf).
	for _, v := range []int{fakes.TextServerVersion, fakes.VersionRawIDs} {
		t.Run(strconv.Itoa(v), func(t *testing.T) { testExactDecimals(t, v) })
	}
}

func testExactDecimals(t *testing.T, v int) {
	long := strings.Repeat("1234567890", 5) + "." + strings.Repeat("1234567890", 5) // 100 digits
	s := conformance.StandardScript()
	s.ServerVersion = v
	values := []struct{ qty, cost, strike string }{
		{"0.00000001", "150.25", "0"},
		{"100000000001", "-42.4242424242424242", "99999999999999999999.5"},
		{"-123456789012.5", "0.1", "187.123456789012345678"},
		{"922337203685.4775808", "1", "0"},
		{"99999999999999999999", long, "-" + long},
		{long, "1", "0"},
	}
	for i, v := range values {
		p := &s.Positions[i]
		p.Quantity = broker.MustDecimal(v.qty)
		p.AvgCost = broker.MustDecimal(v.cost)
		p.Contract.Strike = broker.MustDecimal(v.strike)
	}
	_, a, ctx := connected(t, s)
	for range 2 { // the second request follows a cancel: the raw fields stay in step
		ps, err := a.Positions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s.Positions, ps); diff != "" {
			t.Errorf("Positions (-script +got):\n%s", diff)
		}
	}
}

// TestExactQuantitiesProtobuf: from 207 POSITION_DATA is protobuf, whose
// quantity is text: quantities beyond scmhub's fixed-point Decimal still
// arrive exactly; costs and strikes are the schema's doubles, exact when they
// have at most 15 significant digits.
func TestExactQuantitiesProtobuf(t *testing.T) {
	s := conformance.StandardScript()
	for i, v := range []struct{ qty, cost, strike string }{
		{"0.00000001", "150.25", "0"},
		{"100000000001", "-42.424242424242", "187.5"},
		{"-123456789012.5", "0.1", "0"},
		{"922337203685.4775808", "1", "0"},
		{"99999999999999999999.123456789", "2", "0"},
	} {
		p := &s.Positions[i]
		p.Quantity, p.AvgCost, p.Contract.Strike = broker.MustDecimal(v.qty), broker.MustDecimal(v.cost), broker.MustDecimal(v.strike)
	}
	_, a, ctx := connected(t, s)
	ps, err := a.Positions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.Positions, ps); diff != "" {
		t.Errorf("Positions at %d (-script +got):\n%s", fakes.DefaultServerVersion, diff)
	}
}

// TestQuantityEdge: the largest quantities scmhub carries arrive exactly.
func TestQuantityEdge(t *testing.T) {
	s := conformance.StandardScript()
	for i, q := range []string{"100000000000", "-100000000000", "100000000000.9999999", "-99999999999.9999999", "0.0000001"} {
		s.Positions[i].Quantity = broker.MustDecimal(q)
	}
	_, a, ctx := connected(t, s)
	ps, err := a.Positions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.Positions, ps); diff != "" {
		t.Errorf("Positions (-script +got):\n%s", diff)
	}
}
