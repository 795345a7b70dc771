package goplugin

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// Server streams: Subscribe (events) and SubscribeAccountUpdates (typed
// updates, docs/adr/0014) share the opening handshake: the child sends the
// response headers once the subscription is registered, and the host's call
// returns only then, or with the status the stream ended with.

// openStream opens a server stream with open under a context that ends with
// ctx, the child's exit or Close, and waits for its headers. probe is a
// message to read the status into when the stream ends without headers. On
// success the caller owns release (call it when done with the stream) and one
// count of c.pumps.
func (c *Client) openStream(ctx context.Context, op broker.Op, probe any,
	open func(context.Context) (grpc.ClientStream, error)) (grpc.ClientStream, func(), error) {
	c.pumpsMu.Lock()
	if err := c.check(ctx, op); err != nil {
		c.pumpsMu.Unlock()
		return nil, nil, err
	}
	c.pumps.Add(1)
	c.pumpsMu.Unlock()
	sctx, cancel := context.WithCancel(ctx)
	stopDone := context.AfterFunc(c.done, cancel)
	stopClosing := context.AfterFunc(c.closing, cancel)
	release := func() { stopDone(); stopClosing(); cancel() }

	stream, err := open(sctx)
	if err == nil {
		var md metadata.MD
		md, err = stream.Header()
		if err == nil && md == nil {
			// The stream ended without headers: its status says why.
			err = stream.RecvMsg(probe)
			if err == nil {
				err = fmt.Errorf("%w: %s stream sent a message before its headers", broker.ErrProtocol, op)
			}
		}
	}
	if err != nil {
		release()
		c.pumps.Done()
		if errors.Is(err, broker.ErrProtocol) {
			return nil, nil, err
		}
		return nil, nil, c.wrap(ctx, op, err)
	}
	return stream, release, nil
}

// opSubscribeAccountUpdates names SubscribeAccountUpdates in errors.
const opSubscribeAccountUpdates broker.Op = "subscribe_account_updates"

var _ broker.AccountStreamer = (*Client)(nil)

// SubscribeAccountUpdates implements broker.AccountStreamer over a server
// stream. It returns once the child has subscribed; the channel keeps the
// newest state and is closed when ctx is done, the stream ends, the Client is
// closed or the child exits.
func (c *Client) SubscribeAccountUpdates(ctx context.Context, account string) (<-chan broker.AccountUpdate, error) {
	cs, release, err := c.openStream(ctx, opSubscribeAccountUpdates, new(pb.AccountUpdate),
		func(ctx context.Context) (grpc.ClientStream, error) {
			return c.rpc.SubscribeAccountUpdates(ctx, &pb.AccountUpdatesRequest{Account: account})
		})
	if err != nil {
		return nil, err
	}
	ch := make(chan broker.AccountUpdate, 1)
	pump(c, release, cs.(pb.Broker_SubscribeAccountUpdatesClient).Recv, accountUpdateFromPB, "account update", ch,
		broker.Latest[broker.AccountUpdate])
	return ch, nil
}

// pump starts the goroutine that owns a stream opened by openStream: it
// receives messages until the stream ends, converts each with conv (a
// malformed one is logged as what and dropped), hands it to deliver, which
// must not block, and finally closes ch and releases the stream.
func pump[M, T any](c *Client, release func(), recv func() (M, error), conv func(M) (T, error), what string,
	ch chan T, deliver func(chan T, T)) {
	go func() {
		defer c.pumps.Done()
		defer close(ch)
		defer release()
		for {
			m, err := recv()
			if err != nil {
				return
			}
			v, err := conv(m)
			if err != nil {
				c.log.Warn("dropping malformed "+what, "error", err)
				continue
			}
			deliver(ch, v)
		}
	}()
}

// SubscribeAccountUpdates subscribes the served Broker, sends the headers,
// then streams its updates until the call ends or the stream closes.
func (s *server) SubscribeAccountUpdates(r *pb.AccountUpdatesRequest, stream pb.Broker_SubscribeAccountUpdatesServer) error {
	as, ok := s.b.(broker.AccountStreamer)
	if !ok {
		return errorToStatus(fmt.Errorf("%w: the served Broker does not stream account updates", broker.ErrUnsupported))
	}
	ch, err := as.SubscribeAccountUpdates(stream.Context(), r.GetAccount())
	if err != nil {
		return errorToStatus(err)
	}
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for u := range ch { // closed when the call's context ends, too
		if err := stream.Send(accountUpdateToPB(u)); err != nil {
			return err
		}
	}
	return nil
}
