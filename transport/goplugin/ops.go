package goplugin

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// This file holds the operations of the port: for each, the host's Client
// method next to the child's gRPC server method. gRPC generates one method per
// RPC on both sides, so the table is this file: adding an operation adds an
// rpc to internal/pb/broker.proto (then `make proto`), its two methods here and
// its converters in convert.go. Context rules, child death and the mapping of
// status codes back to the port's sentinels are shared (invoke, call, wrap,
// errorToStatus).

// invoke makes the unary RPC of op: req goes out through rpc under call's
// context rules, and the answer comes back through conv. A conversion failure
// (a decimal that does not parse) is named after op.
func invoke[Req, Resp, T any](c *Client, ctx context.Context, op broker.Op,
	rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req, conv func(Resp) (T, error)) (T, error) {
	var resp Resp
	var zero T
	err := c.call(ctx, op, func(ctx context.Context) error {
		var err error
		resp, err = rpc(ctx, req)
		return err
	})
	if err != nil {
		return zero, err
	}
	out, err := conv(resp)
	if err != nil {
		return zero, fmt.Errorf("goplugin: %s: %w", op, err)
	}
	return out, nil
}

// infallible adapts a conversion that cannot fail for invoke.
func infallible[Resp, T any](f func(Resp) T) func(Resp) (T, error) {
	return func(r Resp) (T, error) { return f(r), nil }
}

// none is the conversion of an answer that carries nothing.
func none(*pb.Empty) (struct{}, error) { return struct{}{}, nil }

// ---- connect ----

// Connect implements broker.Broker.
func (c *Client) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	return invoke(c, ctx, broker.OpConnect, c.rpc.Connect, connectParamsToPB(p), infallible(connectInfoFromPB))
}

func (s *server) Connect(ctx context.Context, r *pb.ConnectRequest) (*pb.ConnectResponse, error) {
	p, err := connectParamsFromPB(r)
	if err != nil {
		return nil, errorToStatus(err)
	}
	ci, err := s.b.Connect(ctx, p)
	if err != nil {
		return nil, errorToStatus(err)
	}
	return connectInfoToPB(ci), nil
}

// ---- disconnect ----

// Disconnect implements broker.Broker.
func (c *Client) Disconnect(ctx context.Context) error {
	_, err := invoke(c, ctx, broker.OpDisconnect, c.rpc.Disconnect, &pb.Empty{}, none)
	return err
}

func (s *server) Disconnect(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	return &pb.Empty{}, errorToStatus(s.b.Disconnect(ctx))
}

// ---- accounts ----

// Accounts implements broker.Broker.
func (c *Client) Accounts(ctx context.Context) ([]string, error) {
	return invoke(c, ctx, broker.OpAccounts, c.rpc.Accounts, &pb.Empty{}, infallible((*pb.AccountsResponse).GetAccounts))
}

func (s *server) Accounts(ctx context.Context, _ *pb.Empty) (*pb.AccountsResponse, error) {
	accts, err := s.b.Accounts(ctx)
	if err != nil {
		return nil, errorToStatus(err)
	}
	return &pb.AccountsResponse{Accounts: accts}, nil
}

// ---- positions ----

// Positions implements broker.Broker. A position whose decimals do not parse
// fails the call with broker.ErrProtocol.
func (c *Client) Positions(ctx context.Context) ([]broker.Position, error) {
	return invoke(c, ctx, broker.OpPositions, c.rpc.Positions, &pb.Empty{}, positionsFromPB)
}

func (s *server) Positions(ctx context.Context, _ *pb.Empty) (*pb.PositionsResponse, error) {
	ps, err := s.b.Positions(ctx)
	if err != nil {
		return nil, errorToStatus(err)
	}
	return positionsToPB(ps), nil
}

// ---- account summary ----

// AccountSummary implements broker.Broker.
func (c *Client) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	return invoke(c, ctx, broker.OpAccountSummary, c.rpc.AccountSummary, &pb.AccountSummaryRequest{Tags: tags}, infallible(summariesFromPB))
}

func (s *server) AccountSummary(ctx context.Context, r *pb.AccountSummaryRequest) (*pb.AccountSummaryResponse, error) {
	ss, err := s.b.AccountSummary(ctx, r.GetTags()...)
	if err != nil {
		return nil, errorToStatus(err)
	}
	return summariesToPB(ss), nil
}

// ---- ping ----

// Ping implements broker.Broker.
func (c *Client) Ping(ctx context.Context) error {
	_, err := invoke(c, ctx, broker.OpPing, c.rpc.Ping, &pb.Empty{}, none)
	return err
}

func (s *server) Ping(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	return &pb.Empty{}, errorToStatus(s.b.Ping(ctx))
}

// ---- account updates ----

// AccountUpdates implements broker.Broker.
func (c *Client) AccountUpdates(ctx context.Context, account string) (broker.AccountUpdate, error) {
	return invoke(c, ctx, broker.OpAccountUpdates, c.rpc.AccountUpdates, &pb.AccountUpdatesRequest{Account: account}, accountUpdateFromPB)
}

func (s *server) AccountUpdates(ctx context.Context, r *pb.AccountUpdatesRequest) (*pb.AccountUpdate, error) {
	u, err := s.b.AccountUpdates(ctx, r.GetAccount())
	if err != nil {
		return nil, errorToStatus(err)
	}
	return accountUpdateToPB(u), nil
}

// ---- executions ----

// Executions implements broker.Broker.
func (c *Client) Executions(ctx context.Context, f broker.ExecutionFilter) ([]broker.Execution, error) {
	return invoke(c, ctx, broker.OpExecutions, c.rpc.Executions, filterToPB(f), executionsFromPB)
}

func (s *server) Executions(ctx context.Context, r *pb.ExecutionFilter) (*pb.ExecutionsResponse, error) {
	xs, err := s.b.Executions(ctx, filterFromPB(r))
	if err != nil {
		return nil, errorToStatus(err)
	}
	return executionsToPB(xs), nil
}

// ---- open and completed orders ----

// OpenOrders implements broker.Broker.
func (c *Client) OpenOrders(ctx context.Context) ([]broker.Order, error) {
	return invoke(c, ctx, broker.OpOpenOrders, c.rpc.OpenOrders, &pb.Empty{}, ordersFromPB)
}

func (s *server) OpenOrders(ctx context.Context, _ *pb.Empty) (*pb.OrdersResponse, error) {
	os, err := s.b.OpenOrders(ctx)
	if err != nil {
		return nil, errorToStatus(err)
	}
	return ordersToPB(os), nil
}

// CompletedOrders implements broker.Broker.
func (c *Client) CompletedOrders(ctx context.Context) ([]broker.Order, error) {
	return invoke(c, ctx, broker.OpCompletedOrders, c.rpc.CompletedOrders, &pb.Empty{}, ordersFromPB)
}

func (s *server) CompletedOrders(ctx context.Context, _ *pb.Empty) (*pb.OrdersResponse, error) {
	os, err := s.b.CompletedOrders(ctx)
	if err != nil {
		return nil, errorToStatus(err)
	}
	return ordersToPB(os), nil
}

// ---- market data ----

// ContractDetails implements broker.Broker.
func (c *Client) ContractDetails(ctx context.Context, ct broker.Contract) ([]broker.ContractDetails, error) {
	return invoke(c, ctx, broker.OpContractDetails, c.rpc.ContractDetails, contractToPB(ct), contractDetailsFromPB)
}

func (s *server) ContractDetails(ctx context.Context, r *pb.Contract) (*pb.ContractDetailsResponse, error) {
	ct, err := requestContract(r)
	if err != nil {
		return nil, errorToStatus(err)
	}
	ds, err := s.b.ContractDetails(ctx, ct)
	if err != nil {
		return nil, errorToStatus(err)
	}
	return contractDetailsToPB(ds), nil
}

// Snapshot implements broker.Broker.
func (c *Client) Snapshot(ctx context.Context, ct broker.Contract) (broker.Quote, error) {
	return invoke(c, ctx, broker.OpSnapshot, c.rpc.Snapshot, contractToPB(ct), quoteFromPB)
}

func (s *server) Snapshot(ctx context.Context, r *pb.Contract) (*pb.Quote, error) {
	ct, err := requestContract(r)
	if err != nil {
		return nil, errorToStatus(err)
	}
	q, err := s.b.Snapshot(ctx, ct)
	if err != nil {
		return nil, errorToStatus(err)
	}
	return quoteToPB(q), nil
}

// HistoricalBars implements broker.Broker.
func (c *Client) HistoricalBars(ctx context.Context, ct broker.Contract, r broker.BarsRequest) ([]broker.Bar, error) {
	return invoke(c, ctx, broker.OpHistoricalBars, c.rpc.HistoricalBars, barsRequestToPB(ct, r), barsFromPB)
}

func (s *server) HistoricalBars(ctx context.Context, r *pb.HistoricalBarsRequest) (*pb.HistoricalBarsResponse, error) {
	ct, err := requestContract(r.GetContract())
	if err != nil {
		return nil, errorToStatus(err)
	}
	bars, err := s.b.HistoricalBars(ctx, ct, barsRequestFromPB(r))
	if err != nil {
		return nil, errorToStatus(err)
	}
	return barsToPB(bars), nil
}

// SetMarketDataType implements broker.Broker.
func (c *Client) SetMarketDataType(ctx context.Context, t broker.MarketDataType) error {
	_, err := invoke(c, ctx, broker.OpSetMarketDataType, c.rpc.SetMarketDataType,
		&pb.MarketDataTypeRequest{MarketDataType: int32(t)}, none)
	return err
}

func (s *server) SetMarketDataType(ctx context.Context, r *pb.MarketDataTypeRequest) (*pb.Empty, error) {
	return &pb.Empty{}, errorToStatus(s.b.SetMarketDataType(ctx, broker.MarketDataType(r.GetMarketDataType())))
}
