// Command quickstart is the README's Go example: it keeps a connection to IB
// Gateway (or TWS) through a worker child process and prints the accounts,
// positions, a quote and a few live quotes. Without --gateway it first starts
// the embedded fake IB Gateway, so it runs anywhere:
//
//	go run ./examples/quickstart                           # the embedded fake gateway
//	go run ./examples/quickstart --gateway 127.0.0.1:4002  # a real IB Gateway (paper)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/robust"
	"github.com/brokerkit/brokerkit/transport/stdiojson"
)

func main() {
	// The worker is this same binary: MaybeRunWorker comes first in main, and in
	// the child process it serves the IBKR adapter and never returns.
	stdiojson.MaybeRunWorker(func() broker.Broker { return ibkr.New() })

	gateway := flag.String("gateway", "", "host:port of TWS or IB Gateway (default: start the embedded fake gateway)")
	clientID := flag.Int64("client-id", 7, "API client id")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout, *gateway, *clientID)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run connects to gateway ("" for the embedded fake one) and prints accounts and positions.
func run(ctx context.Context, out io.Writer, gateway string, clientID int64) error {
	params := broker.ConnectParams{ClientID: clientID, ReadOnly: true, Timeout: 10 * time.Second}
	if gateway == "" {
		gw, err := fakes.NewGateway(fakes.DefaultScript()) // a scripted IB Gateway on 127.0.0.1:<free port>
		if err != nil {
			return err
		}
		defer gw.Close()
		params.Host, params.Port = gw.Host(), gw.Port()
	} else {
		host, port, err := net.SplitHostPort(gateway)
		if err != nil {
			return err
		}
		if params.Port, err = strconv.Atoi(port); err != nil {
			return fmt.Errorf("port %q: %w", port, err)
		}
		params.Host = host
	}

	// robust restarts the worker and reconnects when either dies.
	b := robust.New(stdiojson.Dialer(stdiojson.WithSelf())) // a fresh child process per dial
	defer b.Close()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // every call has a deadline
	defer cancel()
	info, err := b.Connect(ctx, params)
	if errors.Is(err, broker.ErrClientIDInUse) {
		return fmt.Errorf("client id %d is taken by another session, pick another: %w", clientID, err)
	}
	if err != nil {
		return err
	}
	defer b.Disconnect(context.WithoutCancel(ctx))
	fmt.Fprintf(out, "connected to %s (server version %d), accounts %v\n", params.Addr(), info.ServerVersion, info.Accounts)

	positions, err := b.Positions(ctx)
	if err != nil {
		return err
	}
	for _, p := range positions { // quantities and prices are exact broker.Decimal values
		fmt.Fprintf(out, "%-10s %-6s %-4s %10s @ %s %s\n", p.Account, p.Contract.Symbol, p.Contract.SecType,
			p.Quantity, p.AvgCost, p.Contract.Currency)
	}
	if err := printQuote(ctx, out, b); err != nil {
		return err
	}
	return watchQuotes(ctx, out, b, 3) // every Broker of the module is a broker.QuoteStreamer
}

// printQuote prints AAPL's name, a snapshot of its quote and how many hourly bars its last day had.
func printQuote(ctx context.Context, out io.Writer, b broker.Broker) error {
	aapl := broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"}
	details, err := b.ContractDetails(ctx, aapl) // errors.Is(err, broker.ErrNotFound) for an unknown symbol
	if err != nil {
		return err
	}
	q, err := b.Snapshot(ctx, aapl)
	if errors.Is(err, broker.ErrNotSubscribed) { // IB 354 or 10089: no live data, delayed may be available
		if err = b.SetMarketDataType(ctx, broker.MarketDataDelayed); err == nil {
			q, err = b.Snapshot(ctx, aapl)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: bid %s ask %s last %s (%s data)\n", details[0].LongName, q.Bid, q.Ask, q.Last, q.DataType)
	bars, err := b.HistoricalBars(ctx, aapl, broker.BarsRequest{Duration: "1 D", BarSize: "1 hour", WhatToShow: "MIDPOINT"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d hourly bars over the last day\n", len(bars))
	return nil
}

// watchQuotes prints AAPL's live quotes until n have come. Through robust the
// stream outlives a dead worker or a dropped gateway: a gap marker says so.
func watchQuotes(ctx context.Context, out io.Writer, b broker.QuoteStreamer, n int) error {
	aapl := broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"}
	ctx, cancel := context.WithCancel(ctx) // cancelling ends the subscription at the gateway
	defer cancel()
	quotes, err := b.SubscribeQuotes(ctx, aapl)
	if err != nil {
		return err
	}
	for n > 0 {
		u, open := <-quotes
		if !open { // ctx is done, or a new session refused AAPL for good (not found, not subscribed)
			if err := ctx.Err(); err != nil {
				return err
			}
			return errors.New("the AAPL quote stream ended")
		}
		if u.Gap != "" { // the session was lost or IB lost market data (1101): older values are stale
			fmt.Fprintf(out, "gap: %s\n", u.Gap)
			if u.Quote.Bid.IsZero() && u.Quote.Last.IsZero() {
				continue // a bare marker: fresh values follow
			}
		}
		fmt.Fprintf(out, "AAPL bid %s ask %s last %s (%d changes conflated)\n", u.Quote.Bid, u.Quote.Ask, u.Quote.Last, u.Dropped)
		n--
	}
	return nil
}
