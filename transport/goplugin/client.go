package goplugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// closeTimeout bounds how long a child waits for its own Broker's Close.
const closeTimeout = 5 * time.Second

// killWait bounds how long Close waits for go-plugin to let go of a child it has
// killed with SIGKILL (its output pipes to drain, the process to be reaped).
const killWait = time.Second

// Client is the host's half: a broker.Broker whose calls run in a go-plugin child
// process over gRPC. It is safe for concurrent use.
//
// When the child process exits, every call in flight and every later call fails
// at once with an error matching broker.ErrUnavailable. Close closes the child's
// Broker, then ends the child (go-plugin's Kill) and waits for it, all within the
// grace period (WithGracePeriod), after which it kills the child with SIGKILL.
type Client struct {
	rpc    pb.BrokerClient
	orders pb.OrdersClient // orders.go
	done   context.Context // ends when the child process has exited
	log    hclog.Logger

	closing context.Context // ends when Close begins
	closeFn context.CancelFunc

	kill   func()        // ends the child and waits for it; set by Start
	proc   *os.Process   // the child, for SIGKILL past the grace period; nil in-process
	grace  time.Duration // bounds Close; 0 (in-process) means closeTimeout
	pid    int
	socket string // the child's Unix socket, removed after the child is gone

	closeOnce sync.Once
	closeErr  error
	pumpsMu   sync.Mutex     // orders pumps.Add before Close's pumps.Wait
	pumps     sync.WaitGroup // Subscribe goroutines
}

var _ broker.Broker = (*Client)(nil)

func newClient(conn grpc.ClientConnInterface, done context.Context, log hclog.Logger) *Client {
	closing, closeFn := context.WithCancel(context.Background())
	return &Client{rpc: pb.NewBrokerClient(conn), orders: pb.NewOrdersClient(conn), done: done, log: log,
		closing: closing, closeFn: closeFn, kill: func() {}}
}

// Pid returns the process id of the child, or 0 if unknown.
func (c *Client) Pid() int { return c.pid }

// Exited returns a channel that is closed once the child process has exited.
func (c *Client) Exited() <-chan struct{} { return c.done.Done() }

// call runs f with a context that ends when ctx does, when the Client is closed
// or when the child exits, and turns any failure into a broker error.
func (c *Client) call(ctx context.Context, op broker.Op, f func(context.Context) error) error {
	if err := c.check(ctx, op); err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.done, cancel)()
	defer context.AfterFunc(c.closing, cancel)()
	if err := f(cctx); err != nil {
		return c.wrap(ctx, op, err)
	}
	return nil
}

// check fails fast, before any RPC, if the call cannot succeed.
func (c *Client) check(ctx context.Context, op broker.Op) error {
	switch {
	case c.closing.Err() != nil:
		return fmt.Errorf("goplugin: %s: %w", op, broker.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("goplugin: %s: %w", op, ctx.Err())
	case c.done.Err() != nil:
		return fmt.Errorf("goplugin: %s: child process exited: %w", op, broker.ErrUnavailable)
	}
	return nil
}

// wrap maps an RPC failure to the broker error the caller sees. Local causes win
// over what the wire says: a closed Client, the caller's context, a dead child.
func (c *Client) wrap(ctx context.Context, op broker.Op, err error) error {
	if local := c.check(ctx, op); local != nil {
		return local
	}
	return errorFromStatus(err)
}

// opSubscribe names Subscribe in errors; it is not a broker.Op because it is not
// a request-response operation that a decorator could retry.
const opSubscribe broker.Op = "subscribe"

// Subscribe implements broker.Broker. It returns once the child has registered
// the subscription, so every event the child publishes afterwards is delivered
// (best effort: a full channel drops events). The channel is closed when ctx is
// done, the Client is closed or the child exits.
func (c *Client) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	cs, release, err := c.openStream(ctx, opSubscribe, new(pb.Event), func(ctx context.Context) (grpc.ClientStream, error) {
		return c.rpc.Subscribe(ctx, &pb.Empty{})
	})
	if err != nil {
		return nil, err
	}
	ch := make(chan broker.Event, broker.EventBuffer)
	pump(c, release, cs.(pb.Broker_SubscribeClient).Recv, eventFromPB, "event", ch, func(ch chan broker.Event, e broker.Event) {
		select {
		case ch <- e:
		default:
			c.log.Debug("subscriber full, dropping event", "kind", e.Kind, "code", e.Code)
		}
	})
	return ch, nil
}

// Close implements broker.Broker: calls in flight fail with broker.ErrClosed, the
// child closes its Broker, then the child is ended and waited for. All of it is
// bounded by the grace period: a child that has not exited by then (stopped,
// frozen, stuck) is killed with SIGKILL, and its socket file is removed. Close is
// idempotent and returns the child's Close error, if any.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.pumpsMu.Lock()
		c.closeFn()
		c.pumpsMu.Unlock()
		grace := c.grace
		if grace <= 0 {
			grace = closeTimeout
		}
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if c.done.Err() == nil {
			stop := context.AfterFunc(c.done, cancel)
			_, err := c.rpc.Close(ctx, &pb.Empty{})
			stop()
			if err != nil {
				if rerr := errorFromStatus(err); !errors.Is(rerr, broker.ErrUnavailable) && c.done.Err() == nil && ctx.Err() == nil {
					c.closeErr = fmt.Errorf("goplugin: close: %w", rerr)
				}
			}
		}
		c.stop(ctx)
		if c.socket != "" {
			// A child killed with SIGKILL cannot remove its socket itself.
			_ = os.Remove(c.socket)
		}
		c.pumps.Wait()
	})
	return c.closeErr
}

// stop ends the child within ctx (see stopChild).
func (c *Client) stop(ctx context.Context) {
	stopChild(ctx, c.kill, c.proc, func() bool { return c.done.Err() != nil }, c.log)
}

// stopChild ends a child with go-plugin's Kill (which asks the child to shut
// down and waits for it without a deadline of its own) and, if the child has
// not exited when ctx ends, kills proc with SIGKILL, which also ends go-plugin's
// wait. It returns once Kill has, or killWait after the SIGKILL at the latest.
func stopChild(ctx context.Context, kill func(), proc *os.Process, exited func() bool, log hclog.Logger) {
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		kill()
	}()
	select {
	case <-killed:
		return
	case <-ctx.Done():
	}
	pid := 0
	if proc != nil {
		pid = proc.Pid
	}
	if proc != nil && !exited() {
		log.Warn("child did not exit within the grace period; killing it", "pid", pid)
		// os.Process.Kill is safe against pid reuse: it fails once the child is reaped.
		if err := proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			log.Warn("killing the child", "pid", pid, "error", err)
		}
	}
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-killed:
	case <-t.C:
		log.Warn("go-plugin still holds the killed child; not waiting for it", "pid", pid)
	}
}
