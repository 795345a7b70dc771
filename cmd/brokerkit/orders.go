package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/robust"
)

// The order commands: order (place one) and cancel. They are the only commands
// that connect read-write; every other command asks for a read-only session.
// Against a live-trading port they refuse to run without --live, before
// connecting. They go through robust, whose PlaceOrder is exactly-once by key
// (docs/adr/0016).

// livePorts are the API ports of live trading: IB Gateway's and TWS's.
var livePorts = map[int]string{4001: "IB Gateway's live-trading port", 7496: "TWS's live-trading port"}

// liveGuard refuses an order command against a live-trading port without --live.
func liveGuard(what string, port int, live bool) error {
	if name, ok := livePorts[port]; ok && !live {
		return fmt.Errorf("%w: port %d is %s: %s would trade real money; add --live if that is what you want "+
			"(paper trading is on 4002 / 7497)", errUsage, port, name, what)
	}
	return nil
}

// readWrite makes the order commands connect read-write by default; an
// explicit --readonly asks for a read-only session, in which what (the order
// or the cancel) is refused locally: a dry check of everything but trading.
func readWrite(fs *flag.FlagSet, what string) {
	_ = fs.Set("readonly", "false")
	f := fs.Lookup("readonly")
	f.DefValue, f.Usage = "false", "ask for a read-only API session: "+what
}

// newOrderKey returns a fresh random idempotency key.
func newOrderKey() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "bk-" + hex.EncodeToString(b[:]), nil
}

// orderFlags are the flags of the order command beside the connection's.
type orderFlags struct {
	mf               marketFlags
	limit, stop, key string
	tif, account     string
	outsideRTH, hold bool
	live, wait       bool
	waitTimeout      time.Duration
	transport        string
	asJSON, verbose  bool
	maxAttempts      int
	keyGiven         bool
}

// request builds the order from the command line; a mistake is a usage error.
func (f *orderFlags) request(pos []string) (broker.OrderRequest, error) {
	if len(pos) != 3 {
		return broker.OrderRequest{}, fmt.Errorf("%w: want buy|sell QTY SYMBOL, got %q", errUsage, pos)
	}
	action := strings.ToUpper(pos[0])
	if action != broker.ActionBuy && action != broker.ActionSell {
		return broker.OrderRequest{}, fmt.Errorf("%w: %q is neither buy nor sell", errUsage, pos[0])
	}
	qty, err := broker.ParseDecimal(pos[1])
	if err != nil {
		return broker.OrderRequest{}, fmt.Errorf("%w: quantity %q: %v", errUsage, pos[1], err)
	}
	r := broker.OrderRequest{Key: f.key, Account: f.account, Contract: f.mf.contract(pos[2]), Action: action, Quantity: qty,
		OrderType: broker.OrderMarket, TIF: strings.ToUpper(f.tif), OutsideRTH: f.outsideRTH, Hold: f.hold}
	for _, p := range []struct {
		flag, text string
		dst        *broker.Decimal
	}{{"--limit", f.limit, &r.LimitPrice}, {"--stop", f.stop, &r.AuxPrice}} {
		if p.text == "" {
			continue
		}
		if *p.dst, err = broker.ParseDecimal(p.text); err != nil {
			return broker.OrderRequest{}, fmt.Errorf("%w: %s %q: %v", errUsage, p.flag, p.text, err)
		}
	}
	switch {
	case f.limit != "" && f.stop != "":
		r.OrderType = broker.OrderStopLimit
	case f.limit != "":
		r.OrderType = broker.OrderLimit
	case f.stop != "":
		r.OrderType = broker.OrderStop
	}
	if err := r.Validate(); err != nil {
		return broker.OrderRequest{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return r, nil
}

// openOrderBroker returns a disconnected robust Broker over the transport: it
// places an order exactly once by its key, reconciling after a lost session,
// and with lookup looks the key up at the gateway before the first send (a
// key the user gives may be a retry by an earlier process).
func openOrderBroker(transport string, maxAttempts int, lookup bool, log hclog.Logger) (*robust.Broker, error) {
	if err := checkTransport(transport); err != nil {
		return nil, err
	}
	return robust.New(func(ctx context.Context) (broker.Broker, error) { return openBroker(ctx, transport, log) },
		robust.WithLogger(log.Named("robust")), robust.WithMaxAttempts(maxAttempts), robust.WithLookupBeforePlace(lookup)), nil
}

// orderCapabilities is b as an OrderTrader and an OrderStreamer.
func orderCapabilities(b broker.Broker) (broker.OrderTrader, broker.OrderStreamer, error) {
	t, ok := b.(broker.OrderTrader)
	st, ok2 := b.(broker.OrderStreamer)
	if !ok || !ok2 {
		return nil, nil, fmt.Errorf("%w: %T does not trade orders", broker.ErrUnsupported, b)
	}
	return t, st, nil
}

// orderDoc is the JSON document of the order command.
type orderDoc struct {
	Placed broker.PlacedOrder `json:"placed"`
	Order  *broker.Order      `json:"order,omitempty"` // the final state, with --wait
	Fills  []broker.Execution `json:"fills,omitempty"` // with --wait
}

func runOrder(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("order", stderr)
	c := connectFlags(fs)
	readWrite(fs, "the order is refused before anything is sent")
	f := &orderFlags{}
	fs.StringVar(&f.mf.secType, "sec-type", "STK", "security type (STK, OPT, FUT, CASH, ...)")
	fs.StringVar(&f.mf.exchange, "exchange", "SMART", "exchange")
	fs.StringVar(&f.mf.currency, "currency", "USD", "currency")
	fs.StringVar(&f.limit, "limit", "", "limit price: a limit order (with --stop, a stop-limit order)")
	fs.StringVar(&f.stop, "stop", "", "stop (trigger) price: a stop order (with --limit, a stop-limit order)")
	fs.StringVar(&f.key, "key", "", "idempotency key, 1 to 64 printable characters (default: a fresh random one, printed; "+
		"rerun with it to retry the same order without placing it twice)")
	fs.StringVar(&f.tif, "tif", "DAY", "time in force: DAY, GTC or IOC")
	fs.StringVar(&f.account, "account", "", "account (default: the only managed account)")
	fs.BoolVar(&f.outsideRTH, "outside-rth", false, "allow filling outside regular trading hours")
	fs.BoolVar(&f.hold, "hold", false, "create the order in TWS without transmitting it")
	fs.BoolVar(&f.live, "live", false, "allow a live-trading port (4001, 7496): real money")
	fs.BoolVar(&f.wait, "wait", false, "wait until the order is filled, cancelled or inactive")
	fs.DurationVar(&f.waitTimeout, "wait-timeout", time.Minute, "with --wait: give up waiting after this long (the order stays)")
	fs.StringVar(&f.transport, "transport", "inprocess", "inprocess, stdiojson or goplugin")
	fs.IntVar(&f.maxAttempts, "max-attempts", robust.DefaultMaxAttempts, "sends of the order after lost sessions, each after looking its key up")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON instead of text")
	fs.BoolVar(&f.verbose, "v", false, "log to stderr")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	f.keyGiven = f.key != ""
	if !f.keyGiven {
		if f.key, err = newOrderKey(); err != nil {
			return err
		}
	}
	r, err := f.request(pos)
	if err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	if err := liveGuard("placing an order", c.params.WithDefaults().Port, f.live); err != nil {
		return err
	}
	if f.waitTimeout <= 0 || f.maxAttempts < 1 {
		return fmt.Errorf("%w: --wait-timeout and --max-attempts must be positive", errUsage)
	}
	if !f.keyGiven {
		fmt.Fprintf(stderr, "brokerkit order: key %s (to retry this same order, rerun with --key %s)\n", r.Key, r.Key)
	}
	log := newLogger(stderr, f.verbose)
	rb, err := openOrderBroker(f.transport, f.maxAttempts, f.keyGiven, log)
	if err != nil {
		return err
	}
	var b broker.Broker = rb
	defer b.Close()
	if _, err := c.connect(ctx, b); err != nil {
		return err
	}
	defer disconnect(ctx, b)
	t, st, err := orderCapabilities(b)
	if err != nil {
		return err
	}
	var events <-chan broker.OrderEvent
	if f.wait { // subscribed before placing: no event of the order can be missed
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if err := c.call(ctx, "subscribe to order events", func(ctx context.Context) (err error) {
			events, err = st.SubscribeOrders(wctx)
			return err
		}); err != nil {
			return err
		}
	}
	doc := orderDoc{}
	err = c.call(ctx, "place order", func(ctx context.Context) (err error) {
		doc.Placed, err = t.PlaceOrder(ctx, r)
		return err
	})
	if err != nil {
		return orderError(err, r.Key)
	}
	if f.wait {
		if err := waitFinal(ctx, c, b, events, &doc, f.waitTimeout); err != nil {
			_ = writeOrder(stdout, doc, f.asJSON)
			return err
		}
	}
	return writeOrder(stdout, doc, f.asJSON)
}

// orderError says what a failed placement means for the user.
func orderError(err error, key string) error {
	if errors.Is(err, broker.ErrOutcomeUnknown) {
		return fmt.Errorf("%w; the order may or may not exist: rerun with --key %s (and the same --client-id) to find it or place it once", err, key)
	}
	return err
}

// settle is how long waitFinal keeps reading after a final status: the
// gateway's trailing reports (a later ORDER_STATUS with the filled quantity,
// commission reports) come right after it.
const settle = 300 * time.Millisecond

// waitFinal follows the order's events until its status is final (and the
// reports right behind it have come), filling doc.Order and doc.Fills. After
// a gap it re-reads the order lists.
func waitFinal(ctx context.Context, c *connFlags, b broker.Broker, events <-chan broker.OrderEvent, doc *orderDoc, limit time.Duration) error {
	if broker.TerminalStatus(doc.Placed.Status) {
		// Final already: its events are queued; take the fills among them.
		limit = min(limit, 2*time.Second)
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	mine := func(o broker.Order) bool {
		return (doc.Placed.OrderID != 0 && o.OrderID == doc.Placed.OrderID) || (o.OrderRef == doc.Placed.Key && o.OrderRef != "")
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			if doc.Order != nil && broker.TerminalStatus(doc.Order.Status) {
				return nil
			}
			if broker.TerminalStatus(doc.Placed.Status) {
				return nil
			}
			return fmt.Errorf("order %d is not final after %v (--wait-timeout); it stays at the gateway", doc.Placed.OrderID, limit)
		case e, ok := <-events:
			switch {
			case !ok:
				return fmt.Errorf("the order event stream ended before order %d was final", doc.Placed.OrderID)
			case e.Kind == broker.OrderEventGap:
				final, err := finalFromLists(ctx, c, b, doc.Placed.Key)
				if err != nil {
					return err
				}
				if final != nil {
					doc.Order = final
					return nil
				}
			case e.Kind == broker.OrderEventFill && e.Fill != nil && mine(e.Order):
				doc.Fills = appendFill(doc.Fills, *e.Fill)
			case e.Kind == broker.OrderEventStatus && mine(e.Order):
				o := e.Order
				doc.Order = &o
				if broker.TerminalStatus(o.Status) {
					timer.Reset(settle)
				}
			}
		}
	}
}

// appendFill adds x, replacing an earlier report of the same execution (its
// commission may come later).
func appendFill(xs []broker.Execution, x broker.Execution) []broker.Execution {
	for i := range xs {
		if xs[i].ExecID == x.ExecID {
			xs[i] = x
			return xs
		}
	}
	return append(xs, x)
}

// finalFromLists is the order of key among the completed orders, if it is there.
func finalFromLists(ctx context.Context, c *connFlags, b broker.Broker, key string) (*broker.Order, error) {
	var done []broker.Order
	if err := c.call(ctx, "completed orders", func(ctx context.Context) (err error) {
		done, err = b.CompletedOrders(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	for _, o := range done {
		if o.OrderRef == key && broker.TerminalStatus(o.Status) {
			return &o, nil
		}
	}
	return nil, nil
}

// writeOrder prints the order command's result.
func writeOrder(w io.Writer, doc orderDoc, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	p := doc.Placed
	var sb strings.Builder
	switch {
	case p.Existing:
		fmt.Fprintf(&sb, "Order %d (key %s) already exists: %s; nothing was placed\n", p.OrderID, p.Key, orText(p.Status, "status unknown"))
	default:
		fmt.Fprintf(&sb, "Order %d placed (key %s): %s\n", p.OrderID, p.Key, orText(p.Status, "acknowledged"))
	}
	for _, x := range doc.Fills {
		fmt.Fprintf(&sb, "Fill %s: %s %s %s at %s (commission %s %s)\n", x.ExecID, x.Side, x.Shares, x.Contract.Symbol, x.Price,
			x.Commission, x.CommissionCurrency)
	}
	if o := doc.Order; o != nil {
		fmt.Fprintf(&sb, "Final: %s, filled %s of %s\n", o.Status, o.Filled, o.TotalQuantity)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// runCancel cancels one order by id.
func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cancel", stderr)
	c := connectFlags(fs)
	readWrite(fs, "the cancel is refused before anything is sent")
	live := fs.Bool("live", false, "allow a live-trading port (4001, 7496): real money")
	transport := fs.String("transport", "inprocess", "inprocess, stdiojson or goplugin")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	verbose := fs.Bool("v", false, "log to stderr")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want one ORDER_ID, got %q", errUsage, pos)
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("%w: order id %q is not a positive integer", errUsage, pos[0])
	}
	if err := c.check(); err != nil {
		return err
	}
	if err := liveGuard("cancelling an order", c.params.WithDefaults().Port, *live); err != nil {
		return err
	}
	rb, err := openOrderBroker(*transport, 1, false, newLogger(stderr, *verbose))
	if err != nil {
		return err
	}
	var b broker.Broker = rb
	defer b.Close()
	if _, err := c.connect(ctx, b); err != nil {
		return err
	}
	defer disconnect(ctx, b)
	t, _, err := orderCapabilities(b)
	if err != nil {
		return err
	}
	if err := c.call(ctx, "cancel", func(ctx context.Context) error { return t.CancelOrder(ctx, id) }); err != nil {
		return err
	}
	if *asJSON {
		_, err = fmt.Fprintf(stdout, "{\"order_id\": %d, \"cancelled\": true}\n", id)
		return err
	}
	_, err = fmt.Fprintf(stdout, "Order %d cancelled (or already final)\n", id)
	return err
}
