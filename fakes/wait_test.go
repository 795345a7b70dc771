package fakes_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// TestWaitRequest: a wait returns once the request has reached the gateway
// (whether it started before or after), the n-th wait needs n requests, and a
// wait for a request nobody sends ends with ctx's error or ErrClosed.
func TestWaitRequest(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c := connectRaw(t, g, 1)
	if n := g.RequestCount(fakes.MsgStartAPI); n != 1 {
		t.Fatalf("RequestCount(START_API) = %d, want 1", n)
	}

	got := make(chan fakes.Request, 1)
	errc := make(chan error, 1)
	go func() {
		r, err := g.WaitRequest(ctxLimit(t), fakes.MsgReqCurrentTime)
		got <- r
		errc <- err
	}()
	c.send(strconv.Itoa(fakes.MsgReqCurrentTime), "1")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.ID != fakes.MsgReqCurrentTime || r.At.IsZero() {
		t.Fatalf("WaitRequest returned %+v", r)
	}
	// Already arrived: at once.
	if _, err := g.WaitRequest(ctxLimit(t), fakes.MsgReqCurrentTime); err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := g.WaitRequests(short, fakes.MsgReqCurrentTime, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second request never sent: %v, want DeadlineExceeded", err)
	}
	c.send(strconv.Itoa(fakes.MsgReqCurrentTime), "1")
	if _, err := g.WaitRequests(ctxLimit(t), fakes.MsgReqCurrentTime, 2); err != nil {
		t.Fatal(err)
	}

	errc2 := make(chan error, 1)
	go func() {
		_, err := g.WaitRequest(ctxLimit(t), fakes.MsgReqPositions)
		errc2 <- err
	}()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc2; !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("wait across Close: %v, want ErrClosed", err)
	}
}
