package ibkr_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// Connect to a gateway (here the scripted fake), list the accounts and the
// positions, and close.
func Example() {
	g, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		panic(err)
	}
	defer g.Close()

	a := ibkr.New() // ibkr.WithLogger(hclog.Default()) to see what happens
	defer a.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := a.Connect(ctx, broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: 1, Timeout: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	fmt.Println("server version", info.ServerVersion, "accounts", info.Accounts)

	positions, err := a.Positions(ctx)
	if err != nil {
		panic(err)
	}
	for _, p := range positions {
		fmt.Println(p.Account, p.Contract.SecType, p.Contract.LocalSymbol, p.Quantity, "@", p.AvgCost)
	}
	// Output:
	// server version 225 accounts [DU1234567 DU7654321]
	// DU1234567 STK AAPL 100 @ 150.25
	// DU1234567 STK SPY 0.5 @ 512.34
	// DU1234567 OPT AAPL  261218C00200000 -2 @ 1523.5
	// DU7654321 CASH EUR.USD 25000 @ 1.08455
	// DU7654321 FUT ESZ6 1 @ 290012.5
	// DU7654321 STK MSFT -10.25 @ 410.1
}

// Errors match the broker sentinels: here, nothing listens on the port.
func ExampleAdapter_Connect_unreachable() {
	g, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		panic(err)
	}
	port := g.Port()
	g.Close() // nothing listens there any more

	a := ibkr.New()
	defer a.Close()
	_, err = a.Connect(context.Background(), broker.ConnectParams{Host: "127.0.0.1", Port: port, ClientID: 1, Timeout: time.Second})
	fmt.Println(errors.Is(err, broker.ErrGatewayUnreachable), broker.ErrorCode(err))
	// Output: true gateway_unreachable
}
