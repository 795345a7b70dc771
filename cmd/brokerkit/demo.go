package main

import (
	"context"
	"fmt"
	"io"

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
	verbose := fs.Bool("v", false, "log to stderr")
	if err := parse(fs, args); err != nil {
		return err
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
	info, err := b.Connect(ctx, broker.ConnectParams{Host: gw.Host(), Port: gw.Port(), ClientID: 1, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("connect to the embedded gateway at %s: %w", gw.Addr(), err)
	}
	positions, err := b.Positions(ctx)
	if err != nil {
		return err
	}
	summary, err := b.AccountSummary(ctx)
	if err != nil {
		return err
	}
	if err := b.Disconnect(ctx); err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "Connected to the embedded fake IB Gateway at %s (server version %d) over %s\n\n", gw.Addr(), info.ServerVersion, *transport)
	}
	return report{Accounts: info.Accounts, Positions: positions, Summary: summary}.write(stdout, *asJSON)
}

func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway", stderr)
	listen := fs.String("listen", "127.0.0.1:4002", "address to listen on (port 0 picks a free port)")
	scriptPath := fs.String("script", "", "JSON script (default: the built-in demo script)")
	verbose := fs.Bool("v", false, "log every connection to stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	script, err := loadScript(*scriptPath)
	if err != nil {
		return err
	}
	gw, err := fakes.NewGateway(script, fakes.WithAddr(*listen), fakes.WithLogger(newLogger(stderr, *verbose).Named("gateway")))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on %s\n", gw.Addr())
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	<-ctx.Done()
	return gw.Close()
}
