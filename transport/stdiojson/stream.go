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
// order status will be further kinds of the same lines.

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
		Event        string    `json:"event"`
		Subscription string    `json:"subscription"`
		Time         time.Time `json:"time"`
		Update       any       `json:"update,omitempty"` // *broker.AccountUpdate, *broker.OrderEvent (ops_orders.go)
		Message      string    `json:"message,omitempty"`
	}
)

// ---- worker ----

// subscribeAccountUpdates opens the stream of one account's updates.
func (s *server) subscribeAccountUpdates(req wireRequest) (any, error) {
	as, ok := s.b.(broker.AccountStreamer)
	if !ok {
		return nil, fmt.Errorf("%w: the worker's Broker does not stream account updates", broker.ErrUnsupported)
	}
	return subscribeStream(s, req, eventAccountUpdate, func(ctx context.Context) (<-chan broker.AccountUpdate, error) {
		return as.SubscribeAccountUpdates(ctx, req.Account)
	})
}

// subscribeStream opens the stream named req.Subscription with subscribe,
// under a context that ends with unsubscribe or the worker: its answer is
// queued before any of its events, which a goroutine then forwards as event
// lines of kind event until the stream ends.
func subscribeStream[T any](s *server, req wireRequest, event string, subscribe func(context.Context) (<-chan T, error)) (any, error) {
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
	ch, err := subscribe(ctx)
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
	go forwardStream(s, sub, event, ch, cancel)
	return nil, errAnswered
}

// forwardStream writes an event line of kind event for every value of ch,
// then, once ch is closed, forgets the stream and writes its subscription_end.
func forwardStream[T any](s *server, sub, event string, ch <-chan T, cancel context.CancelFunc) {
	defer s.events.Done()
	defer cancel()
	for u := range ch {
		s.sendStreamEvent(wireStreamEvent{Event: event, Subscription: sub, Time: time.Now(), Update: &u})
	}
	s.mu.Lock()
	delete(s.streams, sub)
	s.mu.Unlock()
	s.sendStreamEvent(wireStreamEvent{Event: eventSubscriptionEnd, Subscription: sub, Time: time.Now(),
		Message: "the stream ended (unsubscribed, session ended, or worker stopping)"})
}

func (s *server) sendStreamEvent(e wireStreamEvent) {
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

// clientStream is one live subscription of the host.
type clientStream struct {
	ch chan broker.AccountUpdate
}

var _ broker.AccountStreamer = (*Client)(nil)

// SubscribeAccountUpdates implements broker.AccountStreamer over the worker's
// subscribe_account_updates. The channel is closed when ctx is done (the
// worker is told to unsubscribe), when the worker ends the stream, when it
// dies, and on Close.
func (c *Client) SubscribeAccountUpdates(ctx context.Context, account string) (<-chan broker.AccountUpdate, error) {
	name := "a" + strconv.FormatUint(c.nextSub.Add(1), 10)
	st := &clientStream{ch: make(chan broker.AccountUpdate, 1)}
	err := c.subscribe(ctx, CommandSubscribeAccountUpdates, name, &wireRequest{Account: account}, func() {
		if c.streams == nil {
			c.streams = map[string]*clientStream{}
		}
		c.streams[name] = st
	})
	if err != nil {
		return nil, err
	}
	return st.ch, nil
}

// subscribe opens stream name with command and req: register (called under
// c.mu) records where its events go before the request is sent, as they may
// follow the answer at once; the stream ends (unsubscribe) when ctx does.
func (c *Client) subscribe(ctx context.Context, command, name string, req *wireRequest, register func()) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return fmt.Errorf("stdiojson: %s: %w", command, broker.ErrClosed)
	case c.dead != nil:
		defer c.mu.Unlock()
		return c.dead
	}
	register()
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
	if in.Event == eventSubscriptionEnd {
		c.endStream(in.Subscription)
		return
	}
	if in.Event == eventOrder {
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
	if st := c.streams[in.Subscription]; st != nil {
		broker.Latest(st.ch, u)
	}
}

// endStream closes stream name's channel, once.
func (c *Client) endStream(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.streams[name]; st != nil {
		delete(c.streams, name)
		close(st.ch)
	}
	c.endOrderStreamLocked(name)
}

// endStreams closes every stream (the worker died or the Client closed).
func (c *Client) endStreams() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, st := range c.streams {
		delete(c.streams, name)
		close(st.ch)
	}
	for name := range c.orderStreams {
		c.endOrderStreamLocked(name)
	}
}
