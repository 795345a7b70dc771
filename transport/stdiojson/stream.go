package stdiojson

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// Streams (docs/adr/0014): a subscription is named by the host ("subscription",
// unique among its live subscriptions) in the request that opens it; the
// worker answers at once and then writes event lines carrying that name, a
// kind and the typed data, until a subscription_end event. The host ends one
// with "unsubscribe". Account updates are the first stream; market data and
// order status are further kinds of the same lines (quotes: stream_quotes.go, orders: ops_orders.go).

// The protocol's stream commands and event kinds.
const (
	CommandSubscribeAccountUpdates = "subscribe_account_updates" // open a stream of one account's updates
	CommandUnsubscribe             = "unsubscribe"               // end the stream named "subscription"

	eventAccountUpdate   = "account_update"   // "update": the account's whole state
	eventSubscriptionEnd = "subscription_end" // the stream is over; "message" says why
)

type (
	subscribedData struct {
		Subscription string `json:"subscription"`
	}
	unsubscribedData struct {
		Unsubscribed bool `json:"unsubscribed"`
	}
	// wireStreamEvent is one event line of a stream.
	wireStreamEvent struct {
		Event        string                `json:"event"`
		Subscription string                `json:"subscription"`
		Time         time.Time             `json:"time"`
		Update       *broker.AccountUpdate `json:"update,omitempty"`
		Message      string                `json:"message,omitempty"`
	}
)

// ---- worker ----

// subscribeAccountUpdates opens a stream of account updates.
func (s *server) subscribeAccountUpdates(req wireRequest) (any, error) {
	as, ok := s.b.(broker.AccountStreamer)
	if !ok {
		return nil, fmt.Errorf("%w: the worker's Broker does not stream account updates", broker.ErrUnsupported)
	}
	return s.openStream(req, func(ctx context.Context, sub string) (func(), error) {
		ch, err := as.SubscribeAccountUpdates(ctx, req.Account)
		if err != nil {
			return nil, err
		}
		return func() {
			for u := range ch {
				s.sendStreamEvent(wireStreamEvent{Event: eventAccountUpdate, Subscription: sub, Time: time.Now(), Update: &u})
			}
		}, nil
	})
}

// openStream opens the stream req names: subscribe subscribes the Broker under
// the stream's context (done on unsubscribe and when the worker stops) and
// returns forward, which writes the stream's events until the Broker's channel
// is closed. The answer is queued before any event, forward runs in its own
// goroutine, and a subscription_end line follows it.
func (s *server) openStream(req wireRequest, subscribe func(ctx context.Context, sub string) (forward func(), err error)) (any, error) {
	sub := req.Subscription
	if sub == "" {
		return nil, fmt.Errorf("%w: %s needs a \"subscription\" name", broker.ErrInvalidArgument, req.Command)
	}
	s.mu.Lock()
	_, taken := s.streams[sub]
	s.mu.Unlock()
	if taken {
		return nil, fmt.Errorf("%w: subscription %q is live", broker.ErrInvalidArgument, sub)
	}
	ctx, cancel := context.WithCancel(s.runCtx)
	forward, err := subscribe(ctx, sub)
	if err != nil {
		cancel()
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.streams[sub]; taken { // opened concurrently under the same name
		cancel()
		return nil, fmt.Errorf("%w: subscription %q is live", broker.ErrInvalidArgument, sub)
	}
	s.streams[sub] = cancel
	s.send(encodeResponse(req.ID, subscribedData{Subscription: sub}, nil))
	s.events.Add(1)
	go func() {
		defer s.events.Done()
		defer cancel()
		forward()
		s.mu.Lock()
		delete(s.streams, sub)
		s.mu.Unlock()
		s.sendStreamEvent(wireStreamEvent{Event: eventSubscriptionEnd, Subscription: sub, Time: time.Now(),
			Message: "the stream ended (unsubscribed, session ended, or worker stopping)"})
	}()
	return nil, errAnswered
}

func (s *server) sendStreamEvent(e any) {
	b, err := json.Marshal(e)
	if err != nil {
		s.log.Warn("dropping stream event that does not encode", "error", err)
		return
	}
	s.send(append(b, '\n'))
}

// unsubscribe ends the stream named by req.Subscription, if it is live.
func (s *server) unsubscribe(req wireRequest) (any, error) {
	if req.Subscription == "" {
		return nil, fmt.Errorf("%w: unsubscribe needs a \"subscription\" name", broker.ErrInvalidArgument)
	}
	s.mu.Lock()
	cancel, ok := s.streams[req.Subscription]
	s.mu.Unlock()
	if ok {
		cancel()
	}
	return unsubscribedData{Unsubscribed: ok}, nil
}

// ---- host ----

// clientStream is one live subscription of the host: one of its channels is
// not nil.
type clientStream struct {
	ch     chan broker.AccountUpdate
	quotes chan broker.QuoteUpdate // stream_quotes.go
	orders *broker.OrderQueue      // ops_orders.go
}

// close closes the stream's channel. Under c.mu, once.
func (st *clientStream) close() {
	switch {
	case st.ch != nil:
		close(st.ch)
	case st.quotes != nil:
		close(st.quotes)
	case st.orders != nil:
		st.orders.Close()
	}
}

var _ broker.AccountStreamer = (*Client)(nil)

// SubscribeAccountUpdates implements broker.AccountStreamer over the worker's
// subscribe_account_updates. The channel is closed when ctx is done (the
// worker is told to unsubscribe), when the worker ends the stream, when it
// dies, and on Close.
func (c *Client) SubscribeAccountUpdates(ctx context.Context, account string) (<-chan broker.AccountUpdate, error) {
	st := &clientStream{ch: make(chan broker.AccountUpdate, 1)}
	if err := c.openStream(ctx, CommandSubscribeAccountUpdates, "a", st, &wireRequest{Account: account}); err != nil {
		return nil, err
	}
	return st.ch, nil
}

// openStream registers st under a new name with prefix and sends command with
// req naming it; once answered, the stream lives until ctx is done (then the
// worker is told to unsubscribe), the worker ends it, dies, or Close.
func (c *Client) openStream(ctx context.Context, command, prefix string, st *clientStream, req *wireRequest) error {
	name := prefix + strconv.FormatUint(c.nextSub.Add(1), 10)
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return fmt.Errorf("stdiojson: %s: %w", command, broker.ErrClosed)
	case c.dead != nil:
		defer c.mu.Unlock()
		return c.dead
	}
	if c.streams == nil {
		c.streams = map[string]*clientStream{}
	}
	c.streams[name] = st // before the request: its events may follow the answer at once
	c.mu.Unlock()
	req.Subscription = name
	if err := c.call(ctx, command, req, nil); err != nil {
		c.endStream(name)
		if ctx.Err() != nil { // the worker may have opened it before the cancel
			c.unsubscribe(name)
		}
		return err
	}
	context.AfterFunc(ctx, func() { c.unsubscribe(name) })
	return nil
}

// unsubscribe asks the worker to end stream name (bounded in time) and ends it here.
func (c *Client) unsubscribe(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.call(ctx, CommandUnsubscribe, &wireRequest{Subscription: name}, nil)
	c.endStream(name)
}

// streamEvent routes an event line of a stream.
func (c *Client) streamEvent(in wireInbound) {
	switch in.Event {
	case eventSubscriptionEnd:
		c.endStream(in.Subscription)
		return
	case eventQuote:
		c.quoteEvent(in)
		return
	case eventOrder:
		c.orderEvent(in)
		return
	}
	if in.Event != eventAccountUpdate {
		c.log.Debug("ignoring stream event of unknown kind", "event", in.Event)
		return
	}
	var u broker.AccountUpdate
	if err := json.Unmarshal(in.Update, &u); err != nil {
		c.log.Warn("ignoring malformed account update", "subscription", in.Subscription, "error", err)
		return
	}
	u.Values, u.Portfolio = nonNil(u.Values), nonNil(u.Portfolio)
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.streams[in.Subscription]; st != nil && st.ch != nil {
		broker.Latest(st.ch, u)
	}
}

// endStream closes stream name's channel, once.
func (c *Client) endStream(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.streams[name]; st != nil {
		delete(c.streams, name)
		st.close()
	}
}

// endStreams closes every stream (the worker died or the Client closed).
func (c *Client) endStreams() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, st := range c.streams {
		delete(c.streams, name)
		st.close()
	}
}
