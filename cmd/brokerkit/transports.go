package main

import (
	"context"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
)

// openBroker returns a disconnected Broker over the named transport.
func openBroker(ctx context.Context, transport string, log hclog.Logger) (broker.Broker, error) {
	switch transport {
	case "inprocess":
		return ibkr.New(ibkr.WithLogger(log.Named("ibkr"))), nil
	default:
		return nil, fmt.Errorf("%w: unknown transport %q (want inprocess, stdiojson or goplugin)", errUsage, transport)
	}
}

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("not wired yet")
}

func runPlugin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("not wired yet")
}

func runRunner(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("not wired yet")
}
