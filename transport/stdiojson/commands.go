package stdiojson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// The worker's handling of one request: the protocol's own commands (hello,
// cancel) and the port's operations through serveOps (ops.go).

// answer handles req and renders its response line, or nil if the handler has
// already queued its own.
func (s *server) answer(ctx context.Context, req wireRequest) []byte {
	data, err := s.handle(ctx, req)
	if errors.Is(err, errAnswered) {
		return nil
	}
	return encodeResponse(req.ID, data, err)
}

// handle executes one request; it never panics.
func (s *server) handle(ctx context.Context, req wireRequest) (data any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic while handling request", "command", req.Command, "panic", r, "stack", string(debug.Stack()))
			data, err = nil, fmt.Errorf("stdiojson: worker panicked handling %q: %v", req.Command, r)
		}
	}()
	switch req.Command {
	case CommandHello:
		return s.hello(req)
	case CommandCancel:
		return s.cancel(req)
	case CommandSubscribeAccountUpdates:
		return s.subscribeAccountUpdates(req)
	case CommandSubscribeQuotes:
		return s.subscribeQuotes(req)
	case CommandUnsubscribe:
		return s.unsubscribe(req)
	case CommandSubscribeOrders:
		return s.subscribeOrders(req)
	}
	if op, ok := serveOps[broker.Op(req.Command)]; ok {
		return op(ctx, s.b, &req)
	}
	return nil, fmt.Errorf("%w: unknown command %q", broker.ErrUnsupported, req.Command)
}

func commandNames() []string {
	out := []string{CommandHello, CommandCancel}
	for _, op := range broker.Ops() {
		out = append(out, string(op))
	}
	return append(out, CommandSubscribeAccountUpdates, CommandSubscribeQuotes, CommandUnsubscribe, CommandSubscribeOrders)
}

// hello reports the protocol and, the first time events are asked for, starts
// forwarding them. The forwarder starts only after the hello answer is queued.
func (s *server) hello(req wireRequest) (any, error) {
	if req.Protocol < 0 {
		return nil, fmt.Errorf("%w: protocol %d", broker.ErrInvalidArgument, req.Protocol)
	}
	data := helloData{Protocol: ProtocolVersion, PID: os.Getpid(), Commands: commandNames()}
	if !req.Events {
		s.mu.Lock()
		data.Events = s.subscribed
		s.mu.Unlock()
		return data, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subscribed {
		data.Events = true
		return data, nil
	}
	ch, err := s.b.Subscribe(s.runCtx)
	if err != nil {
		s.log.Warn("cannot subscribe to events", "error", err)
		return data, nil
	}
	s.subscribed = true
	data.Events = true
	line := encodeResponse(req.ID, data, nil)
	// Queue the answer here, under mu, so that no event can precede it; the
	// handler's own answer is then suppressed by returning errAnswered.
	s.send(line)
	s.events.Add(1)
	go s.forwardEvents(ch)
	return nil, errAnswered
}

// errAnswered tells the dispatcher that the handler queued its own answer.
var errAnswered = errors.New("answered")

func (s *server) forwardEvents(ch <-chan broker.Event) {
	defer s.events.Done()
	for {
		select {
		case <-s.runCtx.Done():
			return
		case e, ok := <-ch:
			if !ok {
				return
			}
			b, err := json.Marshal(wireEvent{Event: e.Kind, Time: e.Time, IBCode: e.Code, Message: e.Message})
			if err != nil {
				s.log.Warn("dropping event that does not encode", "error", err)
				continue
			}
			s.send(append(b, '\n'))
		}
	}
}

func (s *server) cancel(req wireRequest) (any, error) {
	if len(req.Target) == 0 || string(req.Target) == "null" {
		return nil, fmt.Errorf("%w: cancel needs a \"target\" id", broker.ErrInvalidArgument)
	}
	if checkID(req.Target) != nil {
		return nil, fmt.Errorf("%w: cancel's \"target\" must be an id (a number or a string), not %.40s", broker.ErrInvalidArgument, req.Target)
	}
	s.mu.Lock()
	cancel, ok := s.inflight[string(req.Target)]
	s.mu.Unlock()
	if ok {
		cancel()
	}
	return cancelData{Canceled: ok}, nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
