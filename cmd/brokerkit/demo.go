package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

func newLogger(stderr io.Writer, verbose bool) hclog.Logger {
	level := hclog.Warn
	if verbose {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Name: "brokerkit", Output: stderr, Level: level})
}

// loadScript returns the script in path, or the demo script if path is empty.
func loadScript(path string) (fakes.Script, error) {
	if path == "" {
		return fakes.DefaultScript(), nil
	}
	s, err := fakes.LoadScript(path)
	if err != nil {
		return fakes.Script{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return s, nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	transport := fs.String("transport", "inprocess", "inprocess, stdiojson or goplugin")
	scriptPath := fs.String("script", "", "JSON script for the fake gateway (default: the built-in demo script)")
	callTimeout := fs.Duration("call-timeout", 10*time.Second, "timeout of each call")
	verbose := fs.Bool("v", false, "log to stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *callTimeout <= 0 {
		return fmt.Errorf("%w: --call-timeout must be positive", errUsage)
	}
	script, err := loadScript(*scriptPath)
	if err != nil {
		return err
	}
	log := newLogger(stderr, *verbose)
	gw, err := fakes.NewGateway(script, fakes.WithLogger(log.Named("gateway")))
	if err != nil {
		return err
	}
	defer gw.Close()

	b, err := openBroker(ctx, *transport, log)
	if err != nil {
		return err
	}
	defer b.Close()
	c := connFlags{params: gw.ConnectParams(1), callTimeout: *callTimeout}
	// Read-write: the demo places one order on the embedded fake (never a real gateway).
	c.params.ReadOnly, c.params.Timeout = false, 10*time.Second
	info, err := c.connect(ctx, b)
	if err != nil {
		return fmt.Errorf("the embedded gateway: %w", err)
	}
	defer disconnect(ctx, b)
	r := report{Accounts: info.Accounts, Gateway: &jsonGateway{Host: gw.Host(), Port: gw.Port(), ClientID: c.params.ClientID,
		ServerVersion: info.ServerVersion, Transport: *transport, Embedded: true}}
	err = c.call(ctx, "positions", func(ctx context.Context) (err error) {
		r.Positions, err = b.Positions(ctx)
		return err
	})
	if err != nil {
		return err
	}
	err = c.call(ctx, "summary", func(ctx context.Context) (err error) {
		r.Summary, err = b.AccountSummary(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if len(script.Instruments) > 0 { // a script of its own may have none to quote
		err = c.call(ctx, "quote", func(ctx context.Context) error {
			in := script.Instruments[0].Contract
			q, err := b.Snapshot(ctx, broker.Contract{Symbol: in.Symbol, SecType: in.SecType, Exchange: in.Exchange, Currency: in.Currency})
			r.Quotes = []broker.Quote{q}
			return err
		})
		if err != nil {
			return err
		}
		in := script.Instruments[0].Contract
		if r.Order, err = demoOrder(ctx, &c, b, broker.Contract{Symbol: in.Symbol, SecType: in.SecType, Exchange: "SMART",
			Currency: in.Currency}); err != nil {
			return err
		}
	}
	return r.write(stdout, *asJSON)
}

// demoOrder buys one of c at the market on the embedded fake and waits until
// it is filled (the fake fills it at the instrument's scripted price).
func demoOrder(ctx context.Context, c *connFlags, b broker.Broker, ct broker.Contract) (*orderDoc, error) {
	t, st, err := orderCapabilities(b)
	if err != nil {
		return nil, err
	}
	key, err := newOrderKey()
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var events <-chan broker.OrderEvent
	if err := c.call(ctx, "subscribe to order events", func(ctx context.Context) (err error) {
		events, err = st.SubscribeOrders(wctx)
		return err
	}); err != nil {
		return nil, err
	}
	doc := &orderDoc{}
	r := broker.OrderRequest{Key: "demo-" + key, Contract: ct, Action: broker.ActionBuy, Quantity: broker.DecimalFromInt(1),
		OrderType: broker.OrderMarket}
	if err := c.call(ctx, "place order", func(ctx context.Context) (err error) {
		doc.Placed, err = t.PlaceOrder(ctx, r)
		return err
	}); err != nil {
		return nil, err
	}
	if err := waitFinal(ctx, c, b, events, doc, c.callTimeout); err != nil {
		return nil, err
	}
	return doc, nil
}
