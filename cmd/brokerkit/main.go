// Command brokerkit runs brokerkit's main job against the embedded fake IB Gateway
// (or a real one), serves the fake gateway standalone, and hosts the out-of-process
// workers that the transports spawn.
//
// Usage:
//
//	brokerkit demo [--json] [--transport inprocess|stdiojson|goplugin] [--script FILE]
//	brokerkit gateway [--listen 127.0.0.1:4002] [--script FILE]
//	brokerkit accounts|positions|summary|ping [--host H] [--port P] [--client-id N] [--timeout D] [--json]
//	brokerkit run [--symbols AAPL,MSFT] [--transport ...] [--host H --port P --client-id N] [--interval 1s] [--duration D]
//	brokerkit worker    (the stdiojson worker: JSON lines on stdin/stdout)
//	brokerkit plugin    (the go-plugin child)
//
// Exit status: 0 on success, 1 when the job failed, 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks errors that deserve exit status 2.
var errUsage = errors.New("usage")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "connect to the embedded fake gateway and print accounts, positions and summary", runDemo},
		{"gateway", "serve the scripted fake IB Gateway until interrupted", runGateway},
		{"accounts", "print the managed accounts of a gateway", runQuery("accounts")},
		{"positions", "print the positions of a gateway", runQuery("positions")},
		{"summary", "print the account summary of a gateway", runQuery("summary")},
		{"ping", "make one round trip to a gateway", runQuery("ping")},
		{"run", "keep a robust connection and report positions every interval as JSON lines", runRunner},
		{"worker", "serve the IBKR adapter as a stdiojson worker on stdin/stdout", runWorker},
		{"plugin", "serve the IBKR adapter as a go-plugin child", runPlugin},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "brokerkit %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "brokerkit %s: %s\n", c.name, describe(err))
			return 1
		}
	}
	fmt.Fprintf(stderr, "brokerkit: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: brokerkit <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'brokerkit <command> -h' for the flags of one command.")
}

// newFlagSet returns a flag set whose errors become errUsage.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("brokerkit "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}
