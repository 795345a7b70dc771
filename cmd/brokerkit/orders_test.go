package main

import (
	"encoding/json"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// TestOrderLiveGuard: an order command against a live-trading port refuses
// without --live, with exit status 2 and one line naming the flag, before
// connecting (nothing listens there: a connect would fail with exit 1).
func TestOrderLiveGuard(t *testing.T) {
	for _, args := range [][]string{
		{"order", "buy", "1", "AAPL", "--port", "4001"},
		{"order", "sell", "1", "AAPL", "--limit", "500", "--port", "7496"},
		{"cancel", "7", "--port", "4001"},
	} {
		start := time.Now()
		code, out, errs := run(t, append(args, "--timeout", "1s")...)
		if code != 2 || out != "" || !strings.Contains(errs, "--live") || !strings.Contains(errs, "real money") ||
			strings.Count(strings.TrimSpace(errs), "\n") > 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 naming --live", args, code, out, errs)
		}
		if strings.Contains(errs, "connect") || time.Since(start) > 900*time.Millisecond {
			t.Errorf("%q: tried to connect before refusing: %q", args, errs)
		}
	}
	// With --live the guard lets it through: the connect is tried (and fails, nothing listens).
	if code, _, errs := run(t, "order", "buy", "1", "AAPL", "--port", "4001", "--live", "--timeout", "1s", "--key", "k"); code != 1 ||
		strings.Contains(errs, "--live") {
		t.Errorf("--live: exit %d, stderr %q; want the connect's failure (exit 1)", code, errs)
	}
}

// TestOrderUsage: a malformed order is a usage error (exit 2), nothing sent.
func TestOrderUsage(t *testing.T) {
	for _, args := range [][]string{
		{"order"},
		{"order", "hold", "1", "AAPL"},
		{"order", "buy", "one", "AAPL"},
		{"order", "buy", "0", "AAPL"},
		{"order", "buy", "1", "AAPL", "--limit", "1e3"},
		{"order", "buy", "1", "AAPL", "--tif", "FOREVER"},
		{"order", "buy", "1", "AAPL", "--key", "two words"},
		{"order", "buy", "1", "AAPL", "MSFT"},
		{"cancel"},
		{"cancel", "x"},
		{"cancel", "-3"},
	} {
		if code, out, errs := run(t, append(args, "--port", "1")...); code != 2 || out != "" || errs == "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want a usage error", args, code, out, errs)
		}
	}
}

var keyLine = regexp.MustCompile(`key (bk-[0-9a-f]{16}) \(to retry this same order, rerun with --key bk-[0-9a-f]{16}\)`)

// TestOrderCommands runs the built command as a process over each transport
// against the fake gateway: a market order with --wait fills and reports its
// fill; the printed key, reused by a new process, finds that order and places
// nothing; a resting limit order shows in `orders --open`, `cancel` cancels
// it and it shows in `orders --completed`. The gateway holds exactly the
// orders placed.
func TestOrderCommands(t *testing.T) {
	s := fakes.DefaultScript()
	s.Quotes = []fakes.Quote{{Symbol: "MSFT", ConID: 272093, Price: broker.MustDecimal("410.5"), FillSize: broker.MustDecimal("2")}}
	gw, err := fakes.NewGateway(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	port := strconv.Itoa(gw.Port())
	for i, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			cid := strconv.Itoa(80 + i)
			conn := []string{"--port", port, "--client-id", cid, "--transport", transport}
			before := len(gw.Orders())
			code, out, errs := runProcess(t, 60*time.Second, append([]string{"order", "buy", "5", "MSFT", "--wait", "--json"}, conn...)...)
			if code != 0 {
				t.Fatalf("order: exit %d, stderr %s", code, errs)
			}
			var doc orderDoc
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			m := keyLine.FindStringSubmatch(errs)
			if m == nil || doc.Placed.Key != m[1] || doc.Placed.OrderID <= 0 || doc.Placed.Existing {
				t.Fatalf("placed %+v, stderr %q", doc.Placed, errs)
			}
			shares := new(big.Rat)
			for _, x := range doc.Fills {
				shares.Add(shares, x.Shares.Rat())
				if x.Price.String() != "410.5" || x.OrderRef != m[1] {
					t.Errorf("fill %+v", x)
				}
			}
			if doc.Order == nil || doc.Order.Status != broker.StatusFilled || doc.Order.Filled.String() != "5" || shares.Cmp(big.NewRat(5, 1)) != 0 ||
				len(doc.Fills) != 3 {
				t.Errorf("after --wait: order %+v, fills %+v; want Filled 5 in lots of 2", doc.Order, doc.Fills)
			}

			code, out, errs = runProcess(t, 60*time.Second, append([]string{"order", "buy", "5", "MSFT", "--key", m[1]}, conn...)...)
			if code != 0 || !strings.Contains(out, "already exists") || !strings.Contains(out, strconv.FormatInt(doc.Placed.OrderID, 10)) {
				t.Errorf("retry with the key: exit %d, stdout %q, stderr %q; want the existing order", code, out, errs)
			}

			code, out, errs = runProcess(t, 60*time.Second, append([]string{"order", "sell", "1", "MSFT", "--limit", "999", "--tif", "GTC", "--key", "rest-" + cid, "--json"}, conn...)...)
			var rest orderDoc
			if code != 0 || json.Unmarshal([]byte(out), &rest) != nil || rest.Placed.Status != fakes.StatusSubmitted {
				t.Fatalf("limit order: exit %d, %s %s", code, out, errs)
			}
			code, out, errs = runProcess(t, 60*time.Second, append([]string{"orders", "--open", "--json"}, conn...)...)
			if code != 0 || !strings.Contains(out, `"order_ref": "rest-`+cid+`"`) || !strings.Contains(out, `"limit_price": "999"`) {
				t.Errorf("orders --open: exit %d, %s %s", code, out, errs)
			}
			id := strconv.FormatInt(rest.Placed.OrderID, 10)
			if code, out, errs = runProcess(t, 60*time.Second, append([]string{"cancel", id}, conn...)...); code != 0 || !strings.Contains(out, "cancelled") {
				t.Errorf("cancel: exit %d, %s %s", code, out, errs)
			}
			code, out, errs = runProcess(t, 60*time.Second, append([]string{"orders", "--completed"}, conn...)...)
			if code != 0 || !strings.Contains(out, "Cancelled") || !strings.Contains(out, "999") {
				t.Errorf("orders --completed: exit %d, %s %s", code, out, errs)
			}

			got := gw.Orders()[before:]
			if len(got) != 2 || got[0].OrderRef != m[1] || got[0].Status != fakes.StatusFilled ||
				got[1].OrderRef != "rest-"+cid || got[1].Status != fakes.StatusCancelled {
				t.Errorf("the gateway holds %+v; want the market order (once) and the cancelled limit", got)
			}
			if code, _, errs := runProcess(t, 60*time.Second, append([]string{"cancel", "99999"}, conn...)...); code != 1 || !strings.Contains(errs, "not found") {
				t.Errorf("cancel of an unknown id: exit %d, stderr %q", code, errs)
			}
		})
	}
}

// TestDemoFillsAnOrder: demo places one market order on the embedded fake and
// reports it filled, as text and JSON.
func TestDemoFillsAnOrder(t *testing.T) {
	code, out, errs := run(t, "demo", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc jsonReport
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	o := doc.Order
	if o == nil || o.Order == nil || o.Order.Status != broker.StatusFilled || len(o.Fills) != 1 || !strings.HasPrefix(o.Placed.Key, "demo-") ||
		o.Fills[0].Price.String() != "189.5" {
		t.Fatalf("demo's order: %+v", o)
	}
	if _, text, _ := run(t, "demo"); !strings.Contains(text, "Final: Filled, filled 1 of 1") {
		t.Errorf("demo's text lacks the filled order:\n%s", text)
	}
}

// TestOrderOnAReadOnlyGateway: a gateway whose API is read-only refuses the
// order (IB 321); the command exits 1 with one line that says what to change.
func TestOrderOnAReadOnlyGateway(t *testing.T) {
	s := fakes.DefaultScript()
	s.ReadOnlyAPI = true
	gw, err := fakes.NewGateway(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	code, out, errs := run(t, "order", "buy", "1", "AAPL", "--port", strconv.Itoa(gw.Port()), "--client-id", "90", "--key", "ro-1")
	if code != 1 || out != "" || !strings.Contains(errs, "Read-Only API") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if n := len(gw.Orders()); n != 0 {
		t.Errorf("the read-only gateway holds %d orders", n)
	}
}

// TestOrderReadOnlyFlag: order and cancel connect read-write unless
// --readonly asks otherwise; then they are refused before anything is sent.
func TestOrderReadOnlyFlag(t *testing.T) {
	gw := gatewayWith(t, fakes.Faults{})
	port := strconv.Itoa(gw.Port())
	for i, args := range [][]string{
		{"order", "buy", "1", "AAPL", "--readonly", "--key", "ro-flag"},
		{"cancel", "1", "--readonly"},
	} {
		code, out, errs := run(t, append(args, "--port", port, "--client-id", strconv.Itoa(91+i))...)
		if code != 1 || out != "" || !strings.Contains(errs, "read-only") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want the read-only refusal", args, code, out, errs)
		}
	}
	if n := len(gw.Orders()); n != 0 {
		t.Errorf("a read-only session sent %d orders", n)
	}
	if _, out, _ := run(t, "order", "-h"); !strings.Contains(out, "ask for a read-only API session: the order is refused") {
		t.Errorf("order -h does not explain --readonly:\n%s", out)
	}
}
