package goplugin_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/robust"
	"github.com/brokerkit/brokerkit/transport/goplugin"
)

// A program that ships one binary calls MaybeRunWorker first thing in main; when a
// host started it with WithSelf it serves the Broker and exits, otherwise it
// carries on as the host. (In this package's tests, TestMain does exactly that.)
func Example() {
	// func main() {
	//	goplugin.MaybeRunWorker(func() broker.Broker { return ibkr.New() })
	//	...
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := goplugin.Start(ctx, goplugin.WithSelf())
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer b.Close()

	// Errors cross the process boundary as the same sentinels.
	err = b.Ping(ctx)
	fmt.Println(errors.Is(err, broker.ErrNotConnected))
	// Output: true
}

// The child program of `brokerkit plugin`: its main is one call. (Not run:
// RunWorker takes over the process.)
func ExampleRunWorker() {
	if err := goplugin.RunWorker(context.Background(), func() broker.Broker { return ibkr.New() }); err != nil {
		os.Exit(1)
	}
}

// A robust.Broker restarts the child through Dialer whenever it dies.
func ExampleDialer() {
	b := robust.New(goplugin.Dialer(goplugin.WithSelf()))
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fmt.Println(errors.Is(b.Ping(ctx), broker.ErrNotConnected))
	// Output: true
}

// After the child dies, every call fails at once with broker.ErrUnavailable.
func ExampleClient_Exited() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := goplugin.Start(ctx, goplugin.WithSelf())
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer b.Close()
	_ = killProcess(b.Pid())
	<-b.Exited()
	fmt.Println(errors.Is(b.Ping(ctx), broker.ErrUnavailable))
	// Output: true
}
