package ibkr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/scmhub/ibapi/protobuf"
	"google.golang.org/protobuf/proto"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
)

// Accounts implements broker.Broker: the accounts of the latest MANAGED_ACCTS.
func (a *Adapter) Accounts(ctx context.Context) ([]string, error) {
	s, err := a.live()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.info().Accounts, nil
}

// Positions implements broker.Broker with REQ_POSITIONS, collecting rows until
// POSITION_END.
//
// REQ_POSITIONS carries no request id, so two requests in flight could not be
// told apart. Calls made while a request is in flight therefore share it: each
// receives its own copy of the one complete list. When the last caller sharing
// it gives up (its ctx ends), the request is abandoned on the wire as well: the
// adapter stops collecting at once and sends CANCEL_POSITIONS. Once a request
// ends the adapter cancels it too, so no subscription stays open. A request
// after an earlier one is sent behind a REQ_CURRENT_TIME fence: rows and end
// markers that arrive before the fence's answer belong to the earlier request
// and are dropped, so a lost POSITION_END costs one call, never the session
// (see docs/adr/0007). A quantity scmhub reports as unset, a NaN cost, or an
// answer past the bound of WithMaxAnswer fails the call with broker.ErrProtocol.
func (a *Adapter) Positions(ctx context.Context) ([]broker.Position, error) {
	s, err := a.live()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pc, err := s.startPositions()
	if err != nil {
		return nil, err
	}
	select {
	case <-pc.done:
		if pc.err != nil {
			return nil, pc.err
		}
		return slices.Clone(pc.rows), nil
	case <-ctx.Done():
		s.leavePositions(pc)
		return nil, fmt.Errorf("ibkr: positions: %w", ctx.Err())
	case <-s.dead:
		return nil, s.deadError()
	}
}

// AccountSummary implements broker.Broker with REQ_ACCOUNT_SUMMARY (group
// "All") under a fresh request id, collecting rows until ACCOUNT_SUMMARY_END and
// then cancelling the subscription. If ctx ends first the request is cancelled
// with CANCEL_ACCOUNT_SUMMARY; late rows for its id are ignored. At most
// WithMaxConcurrentSummaries requests are open at once. An error the gateway
// reports for the request id fails the call with a *broker.APIError.
func (a *Adapter) AccountSummary(ctx context.Context, tags ...string) ([]broker.AccountSummary, error) {
	if len(tags) == 0 {
		tags = broker.DefaultSummaryTags
	}
	for _, t := range tags {
		if t == "" || strings.ContainsAny(t, ",\x00") {
			return nil, fmt.Errorf("%w: summary tag %q", broker.ErrInvalidArgument, t)
		}
	}
	s, err := a.live()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case a.summarySlots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("ibkr: account summary: %w", ctx.Err())
	case <-s.dead:
		return nil, s.deadError()
	}
	defer func() { <-a.summarySlots }()

	id := a.reqIDs.Add(1)
	r := &summaryReq{done: make(chan struct{})}
	if err := s.startByID(id, r, reqAccountSummary(id, "All", strings.Join(tags, ","))); err != nil {
		return nil, err
	}
	if err := s.waitByID(ctx, "account summary", id, r.done, cancelAccountSummary(id)); err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, fmt.Errorf("ibkr: account summary: %w", r.err)
	}
	return r.coll.result(), nil
}

// AccountUpdates implements broker.Broker with REQ_ACCOUNT_UPDATES (REQ_ACCT_DATA
// subscribe) for one account, merging ACCT_VALUE and PORTFOLIO_VALUE rows of
// that account until its ACCT_DOWNLOAD_END, then unsubscribing; a caller whose
// ctx ends unsubscribes too. The gateway keeps one such subscription per
// client, so calls run one at a time (see lists.go); while a stream is open
// (SubscribeAccountUpdates) the call is answered from it. The account is
// checked against the session's managed accounts before anything is sent.
func (a *Adapter) AccountUpdates(ctx context.Context, account string) (broker.AccountUpdate, error) {
	s, err := a.live()
	if err != nil {
		return broker.AccountUpdate{}, err
	}
	if err := ctx.Err(); err != nil {
		return broker.AccountUpdate{}, err
	}
	if account, err = managedAccount(s, account); err != nil {
		return broker.AccountUpdate{}, err
	}
	for {
		if u, ok, err := s.streamedUpdate(ctx, account); ok {
			return u, err
		}
		r := newListReq()
		r.account = account
		r.upd = broker.AccountUpdate{Account: account, Values: []broker.AccountValue{}, Portfolio: []broker.PortfolioItem{}}
		err := a.runList(ctx, s, "account updates", listAccount, r, reqAccountUpdates(true, account), reqAccountUpdates(false, account))
		if errors.Is(err, errStreamOpened) {
			continue // a stream opened meanwhile: it answers
		}
		if err != nil {
			return broker.AccountUpdate{}, err
		}
		return r.upd, nil
	}
}

// Executions implements broker.Broker with REQ_EXECUTIONS under a fresh request
// id, collecting EXECUTION_DATA rows and their COMMISSION_REPORTs until
// EXECUTION_DATA_END. The request ends by itself: a caller whose ctx ends
// stops collecting and sends nothing. A commission report that arrives after
// the end marker is not waited for (the execution's Commission stays zero).
func (a *Adapter) Executions(ctx context.Context, f broker.ExecutionFilter) ([]broker.Execution, error) {
	s, err := a.live()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id := a.reqIDs.Add(1)
	r := &execReq{done: make(chan struct{})}
	if err := s.startByID(id, r, reqExecutions(id, f, s.info().ServerVersion)); err != nil {
		return nil, err
	}
	if err := s.waitByID(ctx, "executions", id, r.done, request{}); err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, fmt.Errorf("ibkr: executions: %w", r.err)
	}
	if r.rows == nil {
		return []broker.Execution{}, nil
	}
	return r.rows, nil
}

// OpenOrders implements broker.Broker with REQ_OPEN_ORDERS, collecting
// OPEN_ORDER rows until OPEN_ORDER_END (see lists.go).
func (a *Adapter) OpenOrders(ctx context.Context) ([]broker.Order, error) {
	return a.orders(ctx, "open orders", listOpenOrders, reqOpenOrders())
}

// CompletedOrders implements broker.Broker with REQ_COMPLETED_ORDERS (API and
// other orders), collecting COMPLETED_ORDER rows until COMPLETED_ORDERS_END.
func (a *Adapter) CompletedOrders(ctx context.Context) ([]broker.Order, error) {
	return a.orders(ctx, "completed orders", listCompletedOrders, reqCompletedOrders(false))
}

func (a *Adapter) orders(ctx context.Context, what string, k listKind, req request) ([]broker.Order, error) {
	s, err := a.live()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := newListReq()
	if err := a.runList(ctx, s, what, k, r, req, request{}); err != nil {
		return nil, err
	}
	if r.orders == nil {
		return []broker.Order{}, nil
	}
	return r.orders, nil
}

// Ping implements broker.Broker with one REQ_CURRENT_TIME round trip.
// CURRENT_TIME carries no request id; the gateway answers requests in order, so
// waiters queue in send order and each answer releases the oldest still
// waiting. A waiter whose ctx ends leaves the queue at once: a lost answer
// costs that one Ping, never the later ones (a late answer may then release a
// newer Ping, which is still an answer on this session; see docs/adr/0007).
func (a *Adapter) Ping(ctx context.Context) error {
	s, err := a.live()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.roundTrip(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("ibkr: ping: %w", ctx.Err())
		}
		return err
	}
	return nil
}

// The requests the adapter makes (message ids, versions and protobuf messages
// as in scmhub's client.go and client_utils.go).
func reqPositions() request {
	return request{id: ibapi.REQ_POSITIONS, fields: []string{"1"},
		pb:   func() proto.Message { return &protobuf.PositionsRequest{} },
		call: func(ec *ibapi.EClient) { ec.ReqPositions() }}
}

func cancelPositions() request {
	return request{id: ibapi.CANCEL_POSITIONS, fields: []string{"1"},
		pb:   func() proto.Message { return &protobuf.CancelPositions{} },
		call: func(ec *ibapi.EClient) { ec.CancelPositions() }}
}

func reqAccountSummary(id int64, group, tags string) request {
	return request{id: ibapi.REQ_ACCOUNT_SUMMARY, fields: []string{"1", strconv.FormatInt(id, 10), group, tags},
		pb: func() proto.Message {
			return &protobuf.AccountSummaryRequest{ReqId: proto.Int32(int32(id)), Group: optString(group), Tags: optString(tags)}
		},
		call: func(ec *ibapi.EClient) { ec.ReqAccountSummary(id, group, tags) }}
}

func cancelAccountSummary(id int64) request {
	return request{id: ibapi.CANCEL_ACCOUNT_SUMMARY, fields: []string{"1", strconv.FormatInt(id, 10)},
		pb:   func() proto.Message { return &protobuf.CancelAccountSummary{ReqId: proto.Int32(int32(id))} },
		call: func(ec *ibapi.EClient) { ec.CancelAccountSummary(id) }}
}

func reqCurrentTime(viaClient bool) request {
	return request{id: ibapi.REQ_CURRENT_TIME, fields: []string{"1"},
		pb:        func() proto.Message { return &protobuf.CurrentTimeRequest{} },
		call:      func(ec *ibapi.EClient) { ec.ReqCurrentTime() },
		viaClient: viaClient}
}

// optString is nil for "", as scmhub leaves empty strings out of its protobuf requests.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func reqAccountUpdates(subscribe bool, account string) request {
	sub := "0"
	if subscribe {
		sub = "1"
	}
	return request{id: ibapi.REQ_ACCT_DATA, fields: []string{"2", sub, account},
		pb: func() proto.Message {
			r := &protobuf.AccountDataRequest{AcctCode: optString(account)}
			if subscribe {
				r.Subscribe = proto.Bool(true)
			}
			return r
		},
		call: func(ec *ibapi.EClient) { ec.ReqAccountUpdates(subscribe, account) }}
}

// reqExecutions is REQ_EXECUTIONS version 3 at server version v (its text form
// gains lastNDays and specific dates, unset, from 200).
func reqExecutions(id int64, f broker.ExecutionFilter, v int) request {
	fields := []string{"3", strconv.FormatInt(id, 10), strconv.FormatInt(f.ClientID, 10), f.Account, f.Since,
		f.Symbol, f.SecType, f.Exchange, f.Side}
	if v >= int(ibapi.MIN_SERVER_VER_PARAMETRIZED_DAYS_OF_EXECUTIONS) {
		fields = append(fields, strconv.FormatInt(ibapi.UNSET_INT, 10), "0")
	}
	filter := &ibapi.ExecutionFilter{ClientID: f.ClientID, AcctCode: f.Account, Time: f.Since, Symbol: f.Symbol,
		SecType: f.SecType, Exchange: f.Exchange, Side: f.Side, LastNDays: ibapi.UNSET_INT}
	return request{id: ibapi.REQ_EXECUTIONS, fields: fields,
		pb: func() proto.Message {
			return &protobuf.ExecutionRequest{ReqId: proto.Int32(int32(id)), ExecutionFilter: &protobuf.ExecutionFilter{
				ClientId: proto.Int32(int32(f.ClientID)), AcctCode: optString(f.Account), Time: optString(f.Since),
				Symbol: optString(f.Symbol), SecType: optString(f.SecType), Exchange: optString(f.Exchange),
				Side: optString(f.Side)}}
		},
		call: func(ec *ibapi.EClient) { ec.ReqExecutions(id, filter) }}
}

func reqOpenOrders() request {
	return request{id: ibapi.REQ_OPEN_ORDERS, fields: []string{"1"},
		pb:   func() proto.Message { return &protobuf.OpenOrdersRequest{} },
		call: func(ec *ibapi.EClient) { ec.ReqOpenOrders() }}
}

func reqCompletedOrders(apiOnly bool) request {
	only := "0"
	if apiOnly {
		only = "1"
	}
	return request{id: ibapi.REQ_COMPLETED_ORDERS, fields: []string{only},
		pb: func() proto.Message {
			r := &protobuf.CompletedOrdersRequest{}
			if apiOnly {
				r.ApiOnly = proto.Bool(true)
			}
			return r
		},
		call: func(ec *ibapi.EClient) { ec.ReqCompletedOrders(apiOnly) }}
}
