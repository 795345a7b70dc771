package stdiojson_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/robust"
	"github.com/brokerkit/brokerkit/transport/stdiojson"
)

// paperBroker is a tiny in-memory broker.Broker for the examples.
type paperBroker struct{ connected bool }

func (b *paperBroker) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	if b.connected {
		return broker.ConnectInfo{}, broker.ErrAlreadyConnected
	}
	b.connected = true
	return broker.ConnectInfo{Accounts: []string{"DU1234567"}, ServerVersion: 193}, nil
}
func (b *paperBroker) Disconnect(context.Context) error { b.connected = false; return nil }
func (b *paperBroker) Accounts(context.Context) ([]string, error) {
	if !b.connected {
		return nil, broker.ErrNotConnected
	}
	return []string{"DU1234567"}, nil
}
func (b *paperBroker) Positions(context.Context) ([]broker.Position, error) {
	if !b.connected {
		return nil, broker.ErrNotConnected
	}
	return []broker.Position{{Account: "DU1234567", Contract: broker.Contract{ConID: 265598, Symbol: "AAPL", SecType: "STK", Currency: "USD"},
		Quantity: broker.MustDecimal("0.1"), AvgCost: broker.MustDecimal("150.25")}}, nil
}
func (b *paperBroker) AccountSummary(context.Context, ...string) ([]broker.AccountSummary, error) {
	return nil, broker.ErrUnsupported
}
func (b *paperBroker) AccountUpdates(context.Context, string) (broker.AccountUpdate, error) {
	return broker.AccountUpdate{}, broker.ErrUnsupported
}
func (b *paperBroker) Executions(context.Context, broker.ExecutionFilter) ([]broker.Execution, error) {
	return nil, broker.ErrUnsupported
}
func (b *paperBroker) OpenOrders(context.Context) ([]broker.Order, error) {
	return nil, broker.ErrUnsupported
}
func (b *paperBroker) CompletedOrders(context.Context) ([]broker.Order, error) {
	return nil, broker.ErrUnsupported
}
func (b *paperBroker) Ping(context.Context) error {
	if !b.connected {
		return broker.ErrNotConnected
	}
	return nil
}
func (b *paperBroker) ContractDetails(context.Context, broker.Contract) ([]broker.ContractDetails, error) {
	return nil, broker.ErrUnsupported
}
func (b *paperBroker) Snapshot(_ context.Context, c broker.Contract) (broker.Quote, error) {
	if !b.connected {
		return broker.Quote{}, broker.ErrNotConnected
	}
	return broker.Quote{Contract: c, Bid: broker.MustDecimal("189.49"), Ask: broker.MustDecimal("189.51"),
		DataType: broker.MarketDataLive, Time: time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)}, nil
}
func (b *paperBroker) HistoricalBars(context.Context, broker.Contract, broker.BarsRequest) ([]broker.Bar, error) {
	return nil, broker.ErrUnsupported
}
func (b *paperBroker) SetMarketDataType(context.Context, broker.MarketDataType) error {
	return broker.ErrUnsupported
}
func (b *paperBroker) Subscribe(context.Context) (<-chan broker.Event, error) {
	return nil, broker.ErrUnsupported
}
func (b *paperBroker) Close() error { return nil }

// Serve answers the original plan's id-less lines in order, in the plan's shapes;
// exact decimals travel as strings.
func ExampleServe() {
	in := strings.NewReader(`{"command": "ping"}
{"command": "connect", "host": "127.0.0.1", "port": 4002, "client_id": 1}
{"command": "get_positions"}
{"command": "ping"}
{"command": "disconnect"}
`)
	if err := stdiojson.Serve(context.Background(), &paperBroker{}, in, os.Stdout); err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"status":"error","code":"not_connected","error":"broker: not connected"}
	// {"status":"success","data":{"connected":true,"accounts":["DU1234567"],"server_version":193}}
	// {"status":"success","data":{"positions":[{"account":"DU1234567","contract":{"con_id":265598,"symbol":"AAPL","sec_type":"STK","expiry":"","strike":"0","right":"","multiplier":"","exchange":"","currency":"USD","local_symbol":"","trading_class":""},"quantity":"0.1","avg_cost":"150.25"}]}}
	// {"status":"success","data":{"pong":true}}
	// {"status":"success","data":{"disconnected":true}}
}

// Requests with ids are answered as they complete, each with its id; errors
// carry a stable code.
func ExampleServe_ids() {
	in := strings.NewReader(`{"id": 1, "command": "hello", "protocol": 1}
{"id": 2, "command": "get_accounts"}
{"id": "x", "command": "launch_rockets"}
`)
	var out strings.Builder
	if err := stdiojson.Serve(context.Background(), &paperBroker{}, in, &out); err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.Contains(line, `"pid"`) { // the hello answer names the process
			fmt.Println(line)
		}
	}
	// Unordered output:
	// {"id":2,"status":"error","code":"not_connected","error":"broker: not connected"}
	// {"id":"x","status":"error","code":"unsupported","error":"broker: unsupported operation: unknown command \"launch_rockets\""}
}

// A program that is its own worker: MaybeRunWorker at the top of main turns the
// re-executed child into the worker, and WithSelf starts that child.
func ExampleWithSelf() {
	// First thing in main: in the child, this serves and exits.
	stdiojson.MaybeRunWorker(func() broker.Broker { return &paperBroker{} })

	ctx := context.Background()
	c, err := stdiojson.Start(ctx, stdiojson.WithSelf())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Connect(ctx, broker.ConnectParams{Port: 4002, ClientID: 1}); err != nil {
		log.Fatal(err)
	}
	if err := c.Ping(ctx); errors.Is(err, broker.ErrNotConnected) {
		fmt.Println("the session was lost")
	}
}

// A separate worker binary: `brokerkit worker` serves the IBKR adapter.
func ExampleStart() {
	ctx := context.Background()
	c, err := stdiojson.Start(ctx, stdiojson.WithCommand("brokerkit", "worker"))
	if err != nil {
		log.Fatal(err) // matches broker.ErrUnavailable if the worker cannot start
	}
	defer c.Close()
	info, err := c.Connect(ctx, broker.ConnectParams{Host: "127.0.0.1", Port: 4002, ClientID: 1})
	if err != nil {
		log.Fatal(err)
	}
	positions, err := c.Positions(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Accounts, len(positions))
}

// A robust.Broker restarts the worker through Dialer whenever it dies; Dialer
// is the robust.Dialer for this transport (no hand-written closure, no nil
// *Client inside an interface). Not run: it needs a worker binary.
func ExampleDialer() {
	b := robust.New(stdiojson.Dialer(stdiojson.WithCommand("brokerkit", "worker")))
	defer b.Close()
	ctx := context.Background()
	if _, err := b.Connect(ctx, broker.ConnectParams{Host: "127.0.0.1", Port: 4002, ClientID: 1}); err != nil {
		log.Fatal(err)
	}
}
