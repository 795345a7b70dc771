//go:build !race

// Issue 16 part 1: a real client's startup sequence and the other account
// requests, decoded by scmhub/ibapi at a matrix of server versions. See
// scmhub_test.go for why these tests are left out of -race builds.

package fakes_test

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// logRecorder is an EWrapper that writes each callback it gets as one line of
// a log, and signals each end marker on ends.
type logRecorder struct {
	ibapi.Wrapper

	mu     sync.Mutex
	log    []string
	protos map[string]bool // scmhub's *ProtoBuf callbacks that ran (scmhub_forms_test.go)
	ends   chan string
	errs   chan ibError
	next   chan int64
}

func newLogRecorder() *logRecorder {
	return &logRecorder{ends: make(chan string, 64), errs: make(chan ibError, 64), next: make(chan int64, 4)}
}

func (r *logRecorder) add(format string, a ...any) {
	r.mu.Lock()
	r.log = append(r.log, fmt.Sprintf(format, a...))
	r.mu.Unlock()
}

// take returns the log so far and empties it.
func (r *logRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.log
	r.log = nil
	return l
}

func fl(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func ctr(c *ibapi.Contract) string {
	return fmt.Sprintf("%d/%s/%s/%s/%s/%s/%s/%s/%s/%s/%s", c.ConID, c.Symbol, c.SecType, c.LastTradeDateOrContractMonth,
		fl(c.Strike), c.Right, c.Multiplier, c.Exchange, c.Currency, c.LocalSymbol, c.TradingClass)
}

func (r *logRecorder) NextValidID(id int64) { put(r.next, id) }
func (r *logRecorder) Error(reqID, _ int64, code int64, msg, json string) {
	if code != fakes.CodeMarketDataFarmOK && code != fakes.CodeHistDataFarmOK && code != fakes.CodeSecDefDataFarmOK {
		put(r.errs, ibError{ReqID: reqID, Code: code, Msg: msg, JSON: json})
	}
}
func (r *logRecorder) Position(string, *ibapi.Contract, ibapi.Decimal, float64) {}
func (r *logRecorder) PositionEnd()                                             { put(r.ends, "positions") }
func (r *logRecorder) OpenOrderEnd()                                            { put(r.ends, "open orders") }
func (r *logRecorder) CompletedOrdersEnd()                                      { put(r.ends, "completed orders") }
func (r *logRecorder) UpdateAccountValue(tag, value, currency, account string) {
	r.add("value %s %s=%s %s", account, tag, value, currency)
}
func (r *logRecorder) UpdatePortfolio(c *ibapi.Contract, pos ibapi.Decimal, price, value, avgCost, unreal, real float64,
	account string) {
	r.add("portfolio %s %s pex=%s pos=%s price=%s value=%s avg=%s unreal=%s real=%s", account, ctr(c),
		c.PrimaryExchange, pos.String(),
		fl(price), fl(value), fl(avgCost), fl(unreal), fl(real))
}
func (r *logRecorder) UpdateAccountTime(ts string) {
	if _, err := time.Parse("15:04", ts); err != nil {
		r.add("bad account time %q", ts)
	}
}
func (r *logRecorder) AccountDownloadEnd(account string) { put(r.ends, "download "+account) }
func (r *logRecorder) ExecDetails(reqID int64, c *ibapi.Contract, e *ibapi.Execution) {
	r.add("exec %d %s order=%d id=%s time=%s acct=%s exch=%s side=%s shares=%s price=%s perm=%d client=%d cum=%s avg=%s ref=%s",
		reqID, ctr(c), e.OrderID, e.ExecID, e.Time, e.AcctNumber, e.Exchange, e.Side, e.Shares.String(), fl(e.Price),
		e.PermID, e.ClientID, e.CumQty.String(), fl(e.AvgPrice), e.OrderRef)
}
func (r *logRecorder) CommissionAndFeesReport(c ibapi.CommissionAndFeesReport) {
	r.add("commission %s %s %s realized=%s", c.ExecID, fl(c.CommissionAndFees), c.Currency, fl(c.RealizedPNL))
}
func (r *logRecorder) ExecDetailsEnd(reqID int64) { put(r.ends, fmt.Sprint("executions ", reqID)) }
func (r *logRecorder) PositionMulti(reqID int64, account, model string, c *ibapi.Contract, pos ibapi.Decimal,
	avgCost float64) {
	r.add("posmulti %d %s %s %s pos=%s avg=%s", reqID, account, model, ctr(c), pos.String(), fl(avgCost))
}
func (r *logRecorder) PositionMultiEnd(reqID int64) { put(r.ends, fmt.Sprint("posmulti ", reqID)) }
func (r *logRecorder) AccountUpdateMulti(reqID int64, account, model, key, value, currency string) {
	r.add("acctmulti %d %s %s %s=%s %s", reqID, account, model, key, value, currency)
}
func (r *logRecorder) AccountUpdateMultiEnd(reqID int64) {
	put(r.ends, fmt.Sprint("acctmulti ", reqID))
}
func (r *logRecorder) Pnl(reqID int64, daily, unreal, real float64) {
	r.add("pnl %d daily=%s unreal=%s real=%s", reqID, fl(daily), fl(unreal), fl(real))
	put(r.ends, fmt.Sprint("pnl ", reqID))
}
func (r *logRecorder) PnlSingle(reqID int64, pos ibapi.Decimal, daily, unreal, real, value float64) {
	r.add("pnlsingle %d pos=%s daily=%s unreal=%s real=%s value=%s", reqID, pos.String(), fl(daily), fl(unreal),
		fl(real), fl(value))
	put(r.ends, fmt.Sprint("pnlsingle ", reqID))
}
func (r *logRecorder) CurrentTime(int64) { put(r.ends, "time") }

// waitEnds waits for each end marker in want, in any order.
func waitEnds(t *testing.T, r *logRecorder, want ...string) {
	t.Helper()
	missing := map[string]int{}
	for _, w := range want {
		missing[w]++
	}
	for len(missing) > 0 {
		select {
		case e := <-r.ends:
			if missing[e]--; missing[e] <= 0 {
				delete(missing, e)
			}
		case err := <-r.errs:
			t.Fatalf("error %+v while waiting for %v", err, slices.Sorted(maps.Keys(missing)))
		case <-time.After(hangLimit):
			t.Fatalf("timed out waiting for %v", slices.Sorted(maps.Keys(missing)))
		}
	}
}

// Expected lines, computed from the script alone.

func wantCtr(c broker.Contract) string {
	return fmt.Sprintf("%d/%s/%s/%s/%s/%s/%s/%s/%s/%s/%s", c.ConID, c.Symbol, c.SecType, c.Expiry,
		fl(c.Strike.Float64()), c.Right, c.Multiplier, c.Exchange, c.Currency, c.LocalSymbol, c.TradingClass)
}

func sumFloat(ds ...broker.Decimal) float64 {
	r := new(big.Rat)
	for _, d := range ds {
		r.Add(r, d.Rat())
	}
	f, _ := r.Float64()
	return f
}

func markOf(s fakes.Script, p broker.Position) (fakes.Mark, bool) {
	for _, m := range s.Marks {
		if m.Account == p.Account && m.ConID == p.Contract.ConID {
			return m, true
		}
	}
	return fakes.Mark{}, false
}

// wantPortfolio is what UpdatePortfolio must show for p: the contract with
// its exchange in primaryExch, and the mark (or average cost) computed exactly.
func wantPortfolio(s fakes.Script, p broker.Position) string {
	mult := big.NewRat(1, 1)
	if p.Contract.Multiplier != "" {
		mult = broker.MustDecimal(p.Contract.Multiplier).Rat()
	}
	m, ok := markOf(s, p)
	price := new(big.Rat).Quo(p.AvgCost.Rat(), mult)
	value := new(big.Rat).Mul(p.Quantity.Rat(), p.AvgCost.Rat())
	if ok {
		price = m.MarketPrice.Rat()
		value = new(big.Rat).Mul(p.Quantity.Rat(), price)
		value.Mul(value, mult)
	}
	pf, _ := price.Float64()
	vf, _ := value.Float64()
	c := p.Contract
	c.Exchange = ""
	return fmt.Sprintf("portfolio %s %s pex=%s pos=%s price=%s value=%s avg=%s unreal=%s real=%s", p.Account,
		wantCtr(c), p.Contract.Exchange, p.Quantity, fl(pf), fl(vf), fl(p.AvgCost.Float64()),
		fl(m.UnrealizedPnL.Float64()), fl(m.RealizedPnL.Float64()))
}

func TestScmhubStartupSequence(t *testing.T) {
	for _, v := range []int{130, 136, 150, 178, 193, 200, 201, 204, 206, 207, 210, 213, 225} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) { testStartup(t, v) })
	}
}

func testStartup(t *testing.T, v int) {
	s := fakes.DefaultScript()
	s.ServerVersion = v
	g := startGateway(t, s)
	r := newLogRecorder()
	c := ibapi.NewEClient(r)
	start := time.Now()
	if err := c.Connect(g.Host(), g.Port(), 1); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect() })
	recv(t, r.next, "NextValidID")
	if got := int(c.ServerVersion()); got != v {
		t.Fatalf("negotiated %d, want %d", got, v)
	}

	// The startup sequence of ib_async's connectAsync.
	c.ReqPositions()
	c.ReqOpenOrders()
	ends := []string{"positions", "open orders", "executions 7"}
	if v >= 150 {
		c.ReqCompletedOrders(false)
		ends = append(ends, "completed orders")
	}
	for _, a := range s.Accounts {
		c.ReqAccountUpdates(true, a)
		ends = append(ends, "download "+a)
	}
	c.ReqExecutions(7, ibapi.NewExecutionFilter())
	waitEnds(t, r, ends...)
	if d := time.Since(start); d > time.Second {
		t.Errorf("startup took %v, want under a second", d)
	}

	var want []string
	for _, a := range s.Summary {
		for _, k := range slices.Sorted(maps.Keys(a.Values)) {
			want = append(want, fmt.Sprintf("value %s %s=%s %s", a.Account, k, a.Values[k].Value, a.Values[k].Currency))
		}
		for _, p := range s.Positions {
			if p.Account == a.Account {
				want = append(want, wantPortfolio(s, p))
			}
		}
	}
	for _, e := range s.Executions {
		k := e.Contract
		want = append(want, fmt.Sprintf("exec 7 %s order=%d id=%s time=%s acct=%s exch=%s side=%s shares=%s price=%s perm=%d client=%d cum=%s avg=%s ref=%s",
			wantCtr(k), e.OrderID, e.ExecID, e.Time, e.Account, e.Exchange, e.Side, e.Shares, fl(e.Price.Float64()),
			e.PermID, e.ClientID, e.Shares, fl(e.Price.Float64()), e.OrderRef))
		real := "1.7976931348623157e+308"
		if !e.RealizedPnL.IsZero() {
			real = fl(e.RealizedPnL.Float64())
		}
		want = append(want, fmt.Sprintf("commission %s %s %s realized=%s", e.ExecID, fl(e.Commission.Float64()),
			e.CommissionCurrency, real))
	}
	got := r.take()
	// Executions arrive after the account downloads; values and portfolios per
	// account in request order. Compare as multisets and check the per-stream order.
	if diff := cmp.Diff(slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(got))); diff != "" {
		t.Fatalf("startup callbacks (-want +got):\n%s", diff)
	}

	// The other account requests.
	a1, a2 := s.Accounts[0], s.Accounts[1]
	c.ReqPositionsMulti(21, a2, "")
	c.ReqAccountUpdatesMulti(22, a1, "", true)
	c.ReqAllOpenOrders()
	c.ReqMarketDataType(3)
	waitEnds(t, r, "posmulti 21", "acctmulti 22", "open orders")
	want = nil
	for _, p := range s.Positions {
		if p.Account == a2 {
			want = append(want, fmt.Sprintf("posmulti 21 %s  %s pos=%s avg=%s", a2, wantCtr(p.Contract), p.Quantity,
				fl(p.AvgCost.Float64())))
		}
	}
	vals := s.Summary[0].Values
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		want = append(want, fmt.Sprintf("acctmulti 22 %s  %s=%s %s", a1, k, vals[k].Value, vals[k].Currency))
	}
	if diff := cmp.Diff(want, r.take()); diff != "" {
		t.Fatalf("multi callbacks (-want +got):\n%s", diff)
	}

	c.ReqPnL(23, a1, "")
	c.ReqPnLSingle(24, a1, "", 265598)
	waitEnds(t, r, "pnl 23", "pnlsingle 24")
	var daily, unreal, real []broker.Decimal
	for _, m := range s.Marks {
		if m.Account == a1 {
			daily, unreal, real = append(daily, m.DailyPnL), append(unreal, m.UnrealizedPnL), append(real, m.RealizedPnL)
		}
	}
	m, _ := markOf(s, s.Positions[0])
	wu, wr, wsu, wsr := sumFloat(unreal...), sumFloat(real...), m.UnrealizedPnL.Float64(), m.RealizedPnL.Float64()
	if v < 129 {
		wu, wsu = 0, 0
	}
	if v < 135 {
		wr, wsr = 0, 0
	}
	want = []string{
		fmt.Sprintf("pnl 23 daily=%s unreal=%s real=%s", fl(sumFloat(daily...)), fl(wu), fl(wr)),
		fmt.Sprintf("pnlsingle 24 pos=%s daily=%s unreal=%s real=%s value=%s", s.Positions[0].Quantity,
			fl(m.DailyPnL.Float64()), fl(wsu), fl(wsr), fl(s.Positions[0].Quantity.Float64()*m.MarketPrice.Float64())),
	}
	if diff := cmp.Diff(want, r.take()); diff != "" {
		t.Fatalf("PnL callbacks (-want +got):\n%s", diff)
	}

	// Cancellations get no answer: the next reply is CURRENT_TIME's.
	c.CancelPositionsMulti(21)
	c.CancelAccountUpdatesMulti(22)
	c.CancelPnL(23)
	c.CancelPnLSingle(24)
	c.ReqAccountUpdates(false, a1)
	c.ReqCurrentTime()
	waitEnds(t, r, "time")
	if l := r.take(); len(l) != 0 {
		t.Fatalf("callbacks after cancellations: %q", l)
	}

	// Requests the fake cannot serve get the error real TWS gives.
	ct := ibapi.NewContract()
	ct.Symbol, ct.SecType, ct.Exchange, ct.Currency = "NOPE", "STK", "SMART", "USD"
	c.ReqContractDetails(31, ct)
	if e := recv(t, r.errs, "error for REQ_CONTRACT_DATA"); e.ReqID != 31 || e.Code != fakes.CodeNoSecurityDefinition {
		t.Fatalf("REQ_CONTRACT_DATA: %+v, want 200 for request 31", e)
	}
	c.ReqPnLSingle(32, a1, "", 999)
	if e := recv(t, r.errs, "error for REQ_PNL_SINGLE"); e.ReqID != 32 || e.Code != fakes.CodeNoSecurityDefinition {
		t.Fatalf("REQ_PNL_SINGLE of a position not held: %+v, want 200 for request 32", e)
	}
	c.ReqAccountUpdates(true, "DU0000000")
	if e := recv(t, r.errs, "error for REQ_ACCT_DATA"); e.Code != fakes.CodeValidationError {
		t.Fatalf("REQ_ACCT_DATA of an unknown account: %+v, want 321", e)
	}
	c.CancelOrder(77, ibapi.NewOrderCancel())
	if e := recv(t, r.errs, "error for CANCEL_ORDER"); e.ReqID != 77 || e.Code != fakes.CodeOrderNotFound {
		t.Fatalf("CANCEL_ORDER: %+v, want 10147 for order 77", e)
	}
	if !c.IsConnected() {
		t.Fatal("session ended")
	}
	checkProtoForms(t, r, v)
}
