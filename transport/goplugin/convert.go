package goplugin

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// This file holds every conversion between broker values and wire messages,
// in both directions, so that each rule is written once.

func connectParamsToPB(p broker.ConnectParams) *pb.ConnectRequest {
	return &pb.ConnectRequest{
		Host:      p.Host,
		Port:      int64(p.Port),
		ClientId:  p.ClientID,
		ReadOnly:  p.ReadOnly,
		TimeoutNs: int64(p.Timeout),
	}
}

func connectParamsFromPB(r *pb.ConnectRequest) (broker.ConnectParams, error) {
	port := r.GetPort()
	if port < 0 || port > 65535 {
		// Out of range for an int on every platform we build for is impossible,
		// but an absurd value must still come back as a clear error.
		return broker.ConnectParams{}, fmt.Errorf("%w: port %d out of range 1..65535", broker.ErrInvalidArgument, port)
	}
	return broker.ConnectParams{
		Host:     r.GetHost(),
		Port:     int(port),
		ClientID: r.GetClientId(),
		ReadOnly: r.GetReadOnly(),
		Timeout:  time.Duration(r.GetTimeoutNs()),
	}, nil
}

func connectInfoToPB(ci broker.ConnectInfo) *pb.ConnectResponse {
	return &pb.ConnectResponse{Accounts: ci.Accounts, ServerVersion: int64(ci.ServerVersion)}
}

func connectInfoFromPB(r *pb.ConnectResponse) broker.ConnectInfo {
	return broker.ConnectInfo{Accounts: r.GetAccounts(), ServerVersion: int(r.GetServerVersion())}
}

func positionsToPB(ps []broker.Position) *pb.PositionsResponse {
	out := make([]*pb.Position, len(ps))
	for i, p := range ps {
		c := p.Contract
		out[i] = &pb.Position{
			Account: p.Account,
			Contract: &pb.Contract{
				ConId:        c.ConID,
				Symbol:       c.Symbol,
				SecType:      c.SecType,
				Expiry:       c.Expiry,
				Strike:       c.Strike.String(),
				Right:        c.Right,
				Multiplier:   c.Multiplier,
				Exchange:     c.Exchange,
				Currency:     c.Currency,
				LocalSymbol:  c.LocalSymbol,
				TradingClass: c.TradingClass,
			},
			Quantity: p.Quantity.String(),
			AvgCost:  p.AvgCost.String(),
		}
	}
	return &pb.PositionsResponse{Positions: out}
}

// positionsFromPB decodes positions; a malformed decimal is a protocol violation.
func positionsFromPB(r *pb.PositionsResponse) ([]broker.Position, error) {
	in := r.GetPositions()
	out := make([]broker.Position, len(in))
	for i, p := range in {
		c := p.GetContract()
		strike, err := wireDecimal("strike", c.GetStrike())
		if err != nil {
			return nil, err
		}
		qty, err := wireDecimal("quantity", p.GetQuantity())
		if err != nil {
			return nil, err
		}
		avg, err := wireDecimal("avg_cost", p.GetAvgCost())
		if err != nil {
			return nil, err
		}
		out[i] = broker.Position{
			Account: p.GetAccount(),
			Contract: broker.Contract{
				ConID:        c.GetConId(),
				Symbol:       c.GetSymbol(),
				SecType:      c.GetSecType(),
				Expiry:       c.GetExpiry(),
				Strike:       strike,
				Right:        c.GetRight(),
				Multiplier:   c.GetMultiplier(),
				Exchange:     c.GetExchange(),
				Currency:     c.GetCurrency(),
				LocalSymbol:  c.GetLocalSymbol(),
				TradingClass: c.GetTradingClass(),
			},
			Quantity: qty,
			AvgCost:  avg,
		}
	}
	return out, nil
}

// wireDecimal parses a decimal field of a message. The empty string is 0 so that
// a peer omitting an unset field is not an error.
func wireDecimal(field, s string) (broker.Decimal, error) {
	if s == "" {
		return broker.Decimal{}, nil
	}
	d, err := broker.ParseDecimal(s)
	if err != nil {
		return broker.Decimal{}, fmt.Errorf("%w: field %s: %w", broker.ErrProtocol, field, err)
	}
	return d, nil
}

func summariesToPB(ss []broker.AccountSummary) *pb.AccountSummaryResponse {
	out := make([]*pb.AccountSummary, len(ss))
	for i, s := range ss {
		vals := make(map[string]*pb.SummaryValue, len(s.Values))
		for tag, v := range s.Values {
			vals[tag] = &pb.SummaryValue{Value: v.Value, Currency: v.Currency}
		}
		out[i] = &pb.AccountSummary{Account: s.Account, Values: vals}
	}
	return &pb.AccountSummaryResponse{Summaries: out}
}

func summariesFromPB(r *pb.AccountSummaryResponse) []broker.AccountSummary {
	in := r.GetSummaries()
	out := make([]broker.AccountSummary, len(in))
	for i, s := range in {
		vals := make(map[string]broker.SummaryValue, len(s.GetValues()))
		for tag, v := range s.GetValues() {
			vals[tag] = broker.SummaryValue{Value: v.GetValue(), Currency: v.GetCurrency()}
		}
		out[i] = broker.AccountSummary{Account: s.GetAccount(), Values: vals}
	}
	return out
}

func eventToPB(e broker.Event) *pb.Event {
	return &pb.Event{
		Kind:    e.Kind.String(),
		Time:    timestamppb.New(e.Time),
		Code:    e.Code,
		Message: e.Message,
	}
}

// eventFromPB decodes an event; an unknown kind is a protocol violation.
func eventFromPB(m *pb.Event) (broker.Event, error) {
	var k broker.EventKind
	if err := k.UnmarshalText([]byte(m.GetKind())); err != nil {
		return broker.Event{}, fmt.Errorf("%w: event: %w", broker.ErrProtocol, err)
	}
	e := broker.Event{Kind: k, Code: m.GetCode(), Message: m.GetMessage()}
	if ts := m.GetTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return broker.Event{}, fmt.Errorf("%w: event time: %v", broker.ErrProtocol, err)
		}
		e.Time = ts.AsTime().Local()
	}
	return e, nil
}

// grpcCodes mirrors brokerkit's wire codes onto gRPC status codes for clients
// that read only the status code. The Error detail stays authoritative.
var grpcCodes = map[string]codes.Code{
	"not_connected":       codes.FailedPrecondition,
	"already_connected":   codes.FailedPrecondition,
	"timeout":             codes.DeadlineExceeded,
	"client_id_in_use":    codes.AlreadyExists,
	"gateway_unreachable": codes.Unavailable,
	"handshake_failed":    codes.Unavailable,
	"unavailable":         codes.Unavailable,
	"protocol":            codes.Internal,
	"closed":              codes.FailedPrecondition,
	"invalid_argument":    codes.InvalidArgument,
	"unsupported":         codes.Unimplemented,
	"canceled":            codes.Canceled,
	"deadline_exceeded":   codes.DeadlineExceeded,
	broker.CodeAPIError:   codes.Unknown,
	broker.CodeInternal:   codes.Internal,
}

// errorToStatus turns a Broker error into the gRPC error the server returns.
func errorToStatus(err error) error {
	if err == nil {
		return nil
	}
	code := broker.ErrorCode(err)
	gc, ok := grpcCodes[code]
	if !ok {
		gc = codes.Unknown
	}
	st, derr := status.New(gc, err.Error()).WithDetails(&pb.Error{
		Code:    code,
		Message: err.Error(),
		IbCode:  broker.IBCode(err),
	})
	if derr != nil { // only if the detail cannot be marshalled, which a fixed message type always can
		return status.Error(gc, err.Error())
	}
	return st.Err()
}

// errorFromStatus rebuilds the broker error carried by a gRPC error: from its
// Error detail when there is one, else from the status code alone.
func errorFromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %w", broker.ErrUnavailable, err)
	}
	for _, d := range st.Details() {
		if e, ok := d.(*pb.Error); ok {
			return broker.ErrorFromCode(e.GetCode(), e.GetMessage(), e.GetIbCode())
		}
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("%w: %s", broker.ErrUnavailable, st.Message())
	case codes.Canceled:
		return fmt.Errorf("%w: %s", context.Canceled, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s", context.DeadlineExceeded, st.Message())
	case codes.Unimplemented:
		return fmt.Errorf("%w: %s", broker.ErrUnsupported, st.Message())
	default:
		return fmt.Errorf("%w: grpc status %s: %s", broker.ErrProtocol, st.Code(), st.Message())
	}
}
