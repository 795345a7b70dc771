package robust_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/robust"
)

// A robust Broker around the in-process adapter rides out a gateway that drops the
// connection: the next call is served by a new session with the same parameters.
func Example() {
	gw, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		panic(err)
	}
	defer gw.Close()

	b := robust.New(func(context.Context) (broker.Broker, error) { return ibkr.New(), nil })
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := b.Connect(ctx, gw.ConnectParams(7))
	if err != nil {
		panic(err)
	}
	fmt.Println("accounts:", info.Accounts)

	gw.DropConnections() // the gateway crashes the session
	pos, err := b.Positions(ctx)
	if err != nil {
		panic(err)
	}
	st := b.Stats()
	fmt.Println("positions:", len(pos) == len(fakes.DefaultScript().Positions))
	fmt.Println("state:", st.State, "reconnected:", st.Reconnects >= 1)
	// Output:
	// accounts: [DU1234567 DU7654321]
	// positions: true
	// state: connected reconnected: true
}

// The state-change hook sees the lifecycle; a runner would log it or print it.
func ExampleWithStateHook() {
	gw, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		panic(err)
	}
	defer gw.Close()

	hook := func(c robust.Change) {
		if c.From != c.To {
			fmt.Println(c.From, "->", c.To)
		}
	}
	b := robust.New(func(context.Context) (broker.Broker, error) { return ibkr.New(), nil },
		robust.WithStateHook(hook),
		robust.WithMaxAttempts(3),
		robust.WithBreaker(5, 10*time.Second),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Connect(ctx, gw.ConnectParams(7)); err != nil {
		panic(err)
	}
	if err := b.Disconnect(ctx); err != nil {
		panic(err)
	}
	_ = b.Close()
	// Output:
	// disconnected -> connecting
	// connecting -> connected
	// connected -> disconnected
	// disconnected -> closed
}

// Errors of a retried call say how often it was tried and still match the port's
// sentinels; an open breaker's error matches broker.ErrUnavailable.
func ExampleErrCircuitOpen() {
	b := robust.New(func(context.Context) (broker.Broker, error) { return ibkr.New(), nil },
		robust.WithMaxAttempts(2),
		robust.WithBackoff(robust.Backoff{Base: time.Millisecond, Max: time.Millisecond}),
		robust.WithBreaker(2, time.Minute),
	)
	defer b.Close()
	p := broker.ConnectParams{Host: "127.0.0.1", Port: 1, ClientID: 1, Timeout: time.Second} // nothing listens
	_, err := b.Connect(context.Background(), p)
	fmt.Println(errors.Is(err, broker.ErrGatewayUnreachable), strings.HasPrefix(err.Error(), "giving up after 2 attempt(s)"))
	_, err = b.Connect(context.Background(), p)
	fmt.Println(errors.Is(err, robust.ErrCircuitOpen), errors.Is(err, broker.ErrUnavailable))
	// Output:
	// true true
	// true true
}
