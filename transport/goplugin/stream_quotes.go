package goplugin

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// Quote streams (broker.QuoteStreamer over the SubscribeQuotes server stream).
//
// The slow-consumer policy is the stdiojson worker's: quotes are conflated,
// never queued. The child sends the newest value of the served Broker's
// channel (which conflates, counting what it drops) each time the previous
// Send returns; Send blocks only this stream, once its flow control window is
// full, so a consumer that does not read holds the child's memory at one
// value plus gRPC's per-stream write buffer, and the connection's other calls
// go on (gRPC returns connection-level window as data arrives, whether or not
// the stream is read). A consumer that reads again late first receives what
// its window held (at most its initial window of older quotes: 4 MiB with
// grpclink's options, a few thousand), each with its count, then the newest.
// The host's pump always reads the stream and conflates again
// (broker.Conflate), adding the child's count to its own.

// opSubscribeQuotes names SubscribeQuotes in errors.
const opSubscribeQuotes broker.Op = "subscribe_quotes"

var _ broker.QuoteStreamer = (*Client)(nil)

// SubscribeQuotes implements broker.QuoteStreamer over a server stream. It
// returns once the child has subscribed; the channel conflates and is closed
// when ctx is done (the child's subscription is cancelled with the call), the
// stream ends, the Client is closed or the child exits.
func (c *Client) SubscribeQuotes(ctx context.Context, ct broker.Contract) (<-chan broker.QuoteUpdate, error) {
	cs, release, err := c.openStream(ctx, opSubscribeQuotes, new(pb.QuoteUpdate),
		func(ctx context.Context) (grpc.ClientStream, error) {
			return c.rpc.SubscribeQuotes(ctx, contractToPB(ct))
		})
	if err != nil {
		return nil, err
	}
	ch := make(chan broker.QuoteUpdate, 1)
	pump(c, release, cs.(pb.Broker_SubscribeQuotesClient).Recv, quoteUpdateFromPB, "quote", ch, broker.Conflate)
	return ch, nil
}

// SubscribeQuotes subscribes the served Broker, sends the headers, then
// streams its newest quote whenever the previous one has been sent, until the
// call ends or the Broker closes the channel.
func (s *server) SubscribeQuotes(r *pb.Contract, stream pb.Broker_SubscribeQuotesServer) error {
	qs, ok := s.b.(broker.QuoteStreamer)
	if !ok {
		return errorToStatus(fmt.Errorf("%w: the served Broker does not stream quotes", broker.ErrUnsupported))
	}
	ct, err := requestContract(r)
	if err != nil {
		return errorToStatus(err)
	}
	ch, err := qs.SubscribeQuotes(stream.Context(), ct)
	if err != nil {
		return errorToStatus(err)
	}
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for u := range ch { // closed when the call's context ends, too
		if err := stream.Send(quoteUpdateToPB(u)); err != nil {
			return err
		}
	}
	return nil
}

func quoteUpdateToPB(u broker.QuoteUpdate) *pb.QuoteUpdate {
	return &pb.QuoteUpdate{Quote: quoteToPB(u.Quote), Gap: u.Gap, Dropped: u.Dropped}
}

func quoteUpdateFromPB(m *pb.QuoteUpdate) (broker.QuoteUpdate, error) {
	if m.GetDropped() < 0 {
		return broker.QuoteUpdate{}, fmt.Errorf("%w: dropped %d", broker.ErrProtocol, m.GetDropped())
	}
	q, err := quoteFromPBAs(m.GetQuote(), m.GetGap() != "")
	if err != nil {
		return broker.QuoteUpdate{}, err
	}
	return broker.QuoteUpdate{Quote: q, Gap: m.GetGap(), Dropped: m.GetDropped()}, nil
}
