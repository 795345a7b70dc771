package chaostest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/conformance"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/robust"
)

// Exactly-once placement, checked against the fake gateway: robust's
// PlaceOrder through gateway drops, late acks, stalls and killed workers, at
// random points of the exchange.

// EnvOrderKills sets how many rounds KillDuringPlace runs (default
// DefaultOrderKills); CI's long runs raise it.
const EnvOrderKills = "BROKERKIT_ORDER_KILLS"

// DefaultOrderKills is KillDuringPlace's default number of rounds.
const DefaultOrderKills = 12

// orderContract is an instrument of conformance.StandardScript, so that the
// gateway accepts the order.
func orderContract(s fakes.Script) broker.Contract {
	c := s.Instruments[0].Contract
	return broker.Contract{ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Exchange: c.Exchange, Currency: c.Currency}
}

// OrderRequest is a small order of key: a market order fills at once (the
// gateway lists it among completed orders and executions), a limit order far
// below the market stays open.
func OrderRequest(s fakes.Script, key string, market bool) broker.OrderRequest {
	r := broker.OrderRequest{Key: key, Contract: orderContract(s), Action: broker.ActionBuy,
		Quantity: broker.DecimalFromInt(1), OrderType: broker.OrderLimit, LimitPrice: broker.MustDecimal("1.00")}
	if market {
		r.OrderType, r.LimitPrice = broker.OrderMarket, broker.Decimal{}
	}
	return r
}

// Fataler is the part of testing.TB (and of *rapid.T) CheckOrders uses.
type Fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// placed is what the callers of one key got.
type placed map[string][]broker.PlacedOrder

// CheckOrders asserts the exactly-once invariants over the gateway's book:
// one order (not rejected) per key the callers placed, each caller of a key
// got that order's id, no order id was sent twice (IB 103, or an id reused on
// a working order, which the gateway takes for a modification), and no order
// exists under a key nobody placed.
func CheckOrders(t Fataler, gw *fakes.Gateway, got map[string][]broker.PlacedOrder) {
	t.Helper()
	book := map[string][]fakes.Order{}
	ids := map[[2]int64]bool{}
	for _, o := range gw.Orders() {
		switch {
		case o.RejectCode == fakes.CodeDuplicateOrderID:
			t.Fatalf("order id %d of client %d sent twice (IB 103)", o.ID, o.ClientID)
		case o.Modifications != 0:
			t.Fatalf("order %d of client %d modified %d time(s): an id reused", o.ID, o.ClientID, o.Modifications)
		case ids[[2]int64{o.ClientID, o.ID}]:
			t.Fatalf("order id %d of client %d held twice", o.ID, o.ClientID)
		}
		ids[[2]int64{o.ClientID, o.ID}] = true
		if o.Status != fakes.StatusRejected {
			book[o.OrderRef] = append(book[o.OrderRef], o)
		}
	}
	for k, held := range book {
		if _, ok := got[k]; !ok {
			t.Fatalf("the gateway holds %d order(s) under key %s, which no call placed", len(held), k)
		}
	}
	for k, pos := range got {
		if len(book[k]) != 1 {
			t.Fatalf("the gateway holds %d orders under key %s, want 1: %+v", len(book[k]), k, book[k])
		}
		o := book[k][0]
		for _, po := range pos {
			if po.OrderID != o.ID || (po.PermID != 0 && po.PermID != o.PermID) {
				t.Fatalf("a caller of key %s got %+v; the gateway holds order %d (perm %d)", k, po, o.ID, o.PermID)
			}
		}
	}
}

// waitNewOrder waits until the gateway holds more than n orders or done is
// closed (the calls returned without sending).
func waitNewOrder(gw *fakes.Gateway, n int, done <-chan struct{}) {
	deadline := time.Now().Add(10 * time.Second)
	for len(gw.Orders()) <= n && time.Now().Before(deadline) {
		select {
		case <-done:
			return
		default:
		}
		time.Sleep(time.Millisecond)
	}
}

// OrdersProperty is a rapid property over a fresh fake gateway per check:
// batches of concurrent PlaceOrders (keys from a small pool, so that they
// repeat concurrently and sequentially) meet a fault drawn per batch: the
// gateway drops the connection of the next order before acking it
// (DropNextOrder), drops every connection at once or once the order is in
// its book, holds its replies (Stall) from the first request of the batch on,
// briefly or past robust's attempt timeout; with kill, the worker is killed
// with SIGKILL at once or once the order is in the book. Scripts draw a late ack (Faults.AckDelay) and a per-connection drop
// after the Nth order (Faults.DropAfterOrder). Every call must succeed and
// CheckOrders must hold. It runs checks rapid checks unless -rapid.checks (or
// $RAPID_CHECKS) says otherwise.
func OrdersProperty(t *testing.T, dial robust.Dialer, kill bool, checks int) {
	defer setRapidChecks(checks)()
	faults := []string{"none", "drop next order", "drop at once", "drop when held", "late answer", "stall past the timeout"}
	if kill {
		faults = append(faults, "kill at once", "kill when held")
	}
	rapid.Check(t, func(rt *rapid.T) {
		s := conformance.StandardScript()
		s.Faults.AckDelay = time.Duration(rapid.IntRange(0, 30).Draw(rt, "ack delay ms")) * time.Millisecond
		s.Faults.DropAfterOrder = rapid.IntRange(0, 3).Draw(rt, "drop after order")
		gw, err := fakes.NewGateway(s)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { _ = gw.Close() }()
		b := robust.New(dial, Options(robust.WithAttemptTimeout(orderAttemptTimeout),
			robust.WithLookupBeforePlace(rapid.Bool().Draw(rt, "lookup before place")))...)
		defer func() { _ = b.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p := gw.ConnectParams(7)
		p.Timeout = 2 * time.Second
		if _, err := b.Connect(ctx, p); err != nil {
			rt.Fatalf("Connect: %v", err)
		}
		got := placed{}
		market := map[string]bool{} // a key keeps its terms
		for _, k := range []string{"k1", "k2", "k3"} {
			market[k] = rapid.Bool().Draw(rt, "market "+k)
		}
		for batch := range rapid.IntRange(1, 4).Draw(rt, "batches") {
			fault := rapid.SampledFrom(faults).Draw(rt, fmt.Sprintf("fault %d", batch))
			keys := rapid.SliceOfN(rapid.SampledFrom([]string{"k1", "k2", "k3"}), 1, 3).Draw(rt, fmt.Sprintf("keys %d", batch))
			pos, errs := placeAll(ctx, b, gw, s, keys, market, fault)
			for i, k := range keys {
				if errs[i] != nil {
					rt.Fatalf("PlaceOrder(%s) with fault %q: %v (stats %+v)", k, fault, errs[i], b.Stats())
				}
				got[k] = append(got[k], pos[i])
			}
		}
		CheckOrders(rt, gw, got)
	})
}

// stallTriggers are the requests that end the wait of a stall fault, by the
// TWS API's message ids: PLACE_ORDER, REQ_OPEN_ORDERS, REQ_EXECUTIONS,
// REQ_IDS, REQ_COMPLETED_ORDERS and START_API (a reconnection).
var stallTriggers = []int{3, 5, 7, 8, 99, fakes.MsgStartAPI}

func countRequests(gw *fakes.Gateway) int {
	n := 0
	for _, id := range stallTriggers {
		n += gw.RequestCount(id)
	}
	return n
}

// orderAttemptTimeout bounds each attempt in OrdersProperty: a stall past it
// makes a send's outcome unknown.
const orderAttemptTimeout = 300 * time.Millisecond

// placeAll places one order per key concurrently and injects fault.
func placeAll(ctx context.Context, b *robust.Broker, gw *fakes.Gateway, s fakes.Script, keys []string, market map[string]bool,
	fault string) ([]broker.PlacedOrder, []error) {
	before := len(gw.Orders())
	if fault == "drop next order" {
		gw.DropNextOrder()
	}
	stall := fault == "late answer" || fault == "stall past the timeout"
	requests := countRequests(gw)
	if stall {
		gw.Stall()
	}
	pid := b.Stats().WorkerPID
	pos := make([]broker.PlacedOrder, len(keys))
	errs := make([]error, len(keys))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() { pos[i], errs[i] = b.PlaceOrder(ctx, OrderRequest(s, k, market[k])) })
	}
	go func() { wg.Wait(); close(done) }()
	switch fault {
	case "drop at once":
		gw.DropConnections()
	case "drop when held":
		waitNewOrder(gw, before, done)
		gw.DropConnections()
	case "late answer", "stall past the timeout":
		deadline := time.Now().Add(10 * time.Second)
		for countRequests(gw) == requests && time.Now().Before(deadline) {
			select {
			case <-done:
				deadline = time.Now()
			default:
				time.Sleep(time.Millisecond)
			}
		}
		if fault == "stall past the timeout" {
			select { // the fault's length, not a synchronisation
			case <-time.After(orderAttemptTimeout + 100*time.Millisecond):
			case <-done:
			}
		}
		gw.Resume()
	case "kill at once":
		_ = syscall.Kill(pid, syscall.SIGKILL)
	case "kill when held":
		waitNewOrder(gw, before, done)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	<-done
	return pos, errs
}

// KillDuringPlace kills the worker with SIGKILL while PlaceOrders are in
// flight, at a random point (at once, or once the gateway holds the order,
// after a random few hundred microseconds more), $BROKERKIT_ORDER_KILLS times
// (default DefaultOrderKills): every call succeeds, and CheckOrders holds. It
// logs the seed of its points.
func KillDuringPlace(t *testing.T, name string, dial robust.Dialer) {
	rounds := DefaultOrderKills
	if v, err := strconv.Atoi(os.Getenv(EnvOrderKills)); err == nil && v > 0 {
		rounds = v
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("%s: %d rounds, seed %d", name, rounds, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	e := New(t, dial)
	ctx, cancel := context.WithTimeout(t.Context(), time.Duration(rounds)*10*time.Second)
	defer cancel()
	got := placed{}
	for round := range rounds {
		pid := e.B.Stats().WorkerPID
		if pid == 0 {
			t.Fatal("the transport's client reports no pid")
		}
		keys := []string{fmt.Sprintf("r%d", round), fmt.Sprintf("r%d", round), fmt.Sprintf("r%d-b", round)}
		market := rng.IntN(2) == 0
		before := len(e.GW.Orders())
		pos := make([]broker.PlacedOrder, len(keys))
		errs := make([]error, len(keys))
		done := make(chan struct{})
		var wg sync.WaitGroup
		for i, k := range keys {
			wg.Go(func() { pos[i], errs[i] = e.B.PlaceOrder(ctx, OrderRequest(e.Script, k, market)) })
		}
		go func() { wg.Wait(); close(done) }()
		if rng.IntN(3) != 0 {
			waitNewOrder(e.GW, before, done)
			spin(time.Duration(rng.IntN(500)) * time.Microsecond)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
		<-done
		for i, k := range keys {
			if errs[i] != nil {
				t.Fatalf("round %d: PlaceOrder(%s): %v (stats %+v)", round, k, errs[i], e.B.Stats())
			}
			got[k] = append(got[k], pos[i])
		}
		CheckOrders(t, e.GW, got)
	}
	existing := 0
	for _, pos := range got {
		for _, po := range pos {
			if po.Existing {
				existing++
			}
		}
	}
	t.Logf("%s: %d orders for %d calls over %d kill(s); %d call(s) found their order by key, %d restart(s)",
		name, len(got), 3*rounds, rounds, existing, e.B.Stats().Restarts)
	last := e.B.Stats().WorkerPID
	e.CloseAndCheck(t, last)
}

// spin waits d without sleeping, so that a kill lands between two points of
// the exchange rather than at the scheduler's granularity.
func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

var (
	rapidChecksGiven     bool
	rapidChecksGivenOnce sync.Once
)

// setRapidChecks sets -rapid.checks to n unless the user gave it (on the
// command line or as $RAPID_CHECKS), as conformance.RunStateMachine does, and
// returns a function that restores it.
func setRapidChecks(n int) (restore func()) {
	rapidChecksGivenOnce.Do(func() {
		flag.Visit(func(fl *flag.Flag) { rapidChecksGiven = rapidChecksGiven || fl.Name == "rapid.checks" })
		if _, ok := os.LookupEnv("RAPID_CHECKS"); ok {
			rapidChecksGiven = true
		}
	})
	fl := flag.Lookup("rapid.checks")
	if fl == nil || rapidChecksGiven || n <= 0 {
		return func() {}
	}
	old := fl.Value.String()
	if fl.Value.Set(strconv.Itoa(n)) != nil {
		return func() {}
	}
	return func() { _ = fl.Value.Set(old) }
}
