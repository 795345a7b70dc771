package stdiojson

import (
	"context"

	"github.com/brokerkit/brokerkit/broker"
)

// This file is the codec table of the protocol: for every operation of the port,
// the host's Client method (request fields out, answer's data in) next to the
// worker's entry in serveOps (request fields in, answer's data out) and the data
// shape they share. Adding an operation to the port adds one of each here, one
// command section to PROTOCOL.md and nothing else in this package; the framing,
// the demultiplexer, cancellation and errors are shared by every command.
// TestServeOpsCoverThePort fails when an operation of broker.Ops has no entry.

// serveOp runs one operation in the worker: it reads its parameters from req,
// calls b with ctx and returns the answer's data (rendered with encoding/json,
// or with appendJSON when the data is a jsonAppender).
type serveOp func(ctx context.Context, b broker.Broker, req *wireRequest) (any, error)

// serveOps is the worker's dispatch table, keyed by command name. hello and
// cancel are the protocol's own commands and are not in it.
var serveOps = map[broker.Op]serveOp{
	broker.OpConnect:         serveConnect,
	broker.OpDisconnect:      serveDisconnect,
	broker.OpAccounts:        serveAccounts,
	broker.OpPositions:       servePositions,
	broker.OpAccountSummary:  serveAccountSummary,
	broker.OpPing:            servePing,
	broker.OpAccountUpdates:  serveAccountUpdates,
	broker.OpExecutions:      serveExecutions,
	broker.OpOpenOrders:      serveOpenOrders,
	broker.OpCompletedOrders: serveCompletedOrders,

	broker.OpContractDetails:   serveContractDetails,
	broker.OpSnapshot:          serveSnapshot,
	broker.OpHistoricalBars:    serveHistoricalBars,
	broker.OpSetMarketDataType: serveSetMarketDataType,
}

// Data shapes, one per command.
type (
	connectData struct {
		Connected     bool     `json:"connected"`
		Accounts      []string `json:"accounts"`
		ServerVersion int      `json:"server_version"`
	}
	disconnectData struct {
		Disconnected bool `json:"disconnected"`
	}
	accountsData struct {
		Accounts []string `json:"accounts"`
	}
	positionsData struct {
		Positions []wirePosition `json:"positions"`
	}
	summaryData struct {
		Summaries []wireSummary `json:"summaries"`
	}
	pingData struct {
		Pong bool `json:"pong"`
	}
	// The read side's shapes are the port's own JSON forms (broker/types_read.go).
	accountUpdatesData struct {
		Update broker.AccountUpdate `json:"update"`
	}
	executionsData struct {
		Executions []broker.Execution `json:"executions"`
	}
	ordersData struct {
		Orders []broker.Order `json:"orders"`
	}
)

// ---- connect ----

// Connect implements broker.Broker.
func (c *Client) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	req := &wireRequest{Host: p.Host, Port: p.Port, ClientID: p.ClientID, ReadOnly: p.ReadOnly, Timeout: p.Timeout.Seconds()}
	var d connectData
	if err := c.call(ctx, string(broker.OpConnect), req, &d); err != nil {
		return broker.ConnectInfo{}, err
	}
	return broker.ConnectInfo{Accounts: d.Accounts, ServerVersion: d.ServerVersion}, nil
}

func serveConnect(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	p := broker.ConnectParams{
		Host: req.Host, Port: req.Port, ClientID: req.ClientID, ReadOnly: req.ReadOnly,
		Timeout: secondsToDuration(req.Timeout),
	}
	info, err := b.Connect(ctx, p)
	if err != nil {
		return nil, err
	}
	return connectData{Connected: true, Accounts: nonNil(info.Accounts), ServerVersion: info.ServerVersion}, nil
}

// ---- disconnect ----

// Disconnect implements broker.Broker.
func (c *Client) Disconnect(ctx context.Context) error {
	return c.call(ctx, string(broker.OpDisconnect), nil, nil)
}

func serveDisconnect(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	if err := b.Disconnect(ctx); err != nil {
		return nil, err
	}
	return disconnectData{Disconnected: true}, nil
}

// ---- get_accounts ----

// Accounts implements broker.Broker.
func (c *Client) Accounts(ctx context.Context) ([]string, error) {
	var d accountsData
	if err := c.call(ctx, string(broker.OpAccounts), nil, &d); err != nil {
		return nil, err
	}
	return d.Accounts, nil
}

func serveAccounts(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	accts, err := b.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	return accountsData{Accounts: nonNil(accts)}, nil
}

// ---- get_positions (hand-written codec: fastcodec.go) ----

// Positions implements broker.Broker.
func (c *Client) Positions(ctx context.Context) ([]broker.Position, error) {
	var r positionsResult
	if err := c.call(ctx, string(broker.OpPositions), nil, &r); err != nil {
		return nil, err
	}
	return r.positions, nil
}

func servePositions(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	ps, err := b.Positions(ctx)
	if err != nil {
		return nil, err
	}
	return positionsPayload(ps), nil
}

// ---- get_account_summary ----

// AccountSummary implements broker.Broker.
func (c *Client) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	var d summaryData
	if err := c.call(ctx, string(broker.OpAccountSummary), &wireRequest{Tags: tags}, &d); err != nil {
		return nil, err
	}
	return fromWireSummaries(d.Summaries), nil
}

func serveAccountSummary(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	sums, err := b.AccountSummary(ctx, req.Tags...)
	if err != nil {
		return nil, err
	}
	return summaryData{Summaries: toWireSummaries(sums)}, nil
}

// ---- ping ----

// Ping implements broker.Broker.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, string(broker.OpPing), nil, nil)
}

func servePing(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	if err := b.Ping(ctx); err != nil {
		return nil, err
	}
	return pongPayload{}, nil
}

// ---- get_account_updates ----

// AccountUpdates implements broker.Broker.
func (c *Client) AccountUpdates(ctx context.Context, account string) (broker.AccountUpdate, error) {
	var d accountUpdatesData
	if err := c.call(ctx, string(broker.OpAccountUpdates), &wireRequest{Account: account}, &d); err != nil {
		return broker.AccountUpdate{}, err
	}
	d.Update.Values, d.Update.Portfolio = nonNil(d.Update.Values), nonNil(d.Update.Portfolio)
	return d.Update, nil
}

func serveAccountUpdates(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	u, err := b.AccountUpdates(ctx, req.Account)
	if err != nil {
		return nil, err
	}
	u.Values, u.Portfolio = nonNil(u.Values), nonNil(u.Portfolio)
	return accountUpdatesData{Update: u}, nil
}

// ---- get_executions ----

// Executions implements broker.Broker.
func (c *Client) Executions(ctx context.Context, f broker.ExecutionFilter) ([]broker.Execution, error) {
	req := &wireRequest{}
	if f != (broker.ExecutionFilter{}) {
		req.Filter = &f
	}
	var d executionsData
	if err := c.call(ctx, string(broker.OpExecutions), req, &d); err != nil {
		return nil, err
	}
	return nonNil(d.Executions), nil
}

func serveExecutions(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	var f broker.ExecutionFilter
	if req.Filter != nil {
		f = *req.Filter
	}
	xs, err := b.Executions(ctx, f)
	if err != nil {
		return nil, err
	}
	return executionsData{Executions: nonNil(xs)}, nil
}

// ---- get_open_orders, get_completed_orders ----

// OpenOrders implements broker.Broker.
func (c *Client) OpenOrders(ctx context.Context) ([]broker.Order, error) {
	return c.orders(ctx, broker.OpOpenOrders)
}

// CompletedOrders implements broker.Broker.
func (c *Client) CompletedOrders(ctx context.Context) ([]broker.Order, error) {
	return c.orders(ctx, broker.OpCompletedOrders)
}

func (c *Client) orders(ctx context.Context, op broker.Op) ([]broker.Order, error) {
	var d ordersData
	if err := c.call(ctx, string(op), nil, &d); err != nil {
		return nil, err
	}
	return nonNil(d.Orders), nil
}

func serveOpenOrders(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	os, err := b.OpenOrders(ctx)
	if err != nil {
		return nil, err
	}
	return ordersData{Orders: nonNil(os)}, nil
}

func serveCompletedOrders(ctx context.Context, b broker.Broker, _ *wireRequest) (any, error) {
	os, err := b.CompletedOrders(ctx)
	if err != nil {
		return nil, err
	}
	return ordersData{Orders: nonNil(os)}, nil
}
