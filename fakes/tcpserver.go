package fakes

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// tcpServer is what Recorder and Replayer share: a loopback listener, an
// accept loop that runs handle on its own goroutine per connection, and a
// Close that closes the listener and every tracked socket and waits for
// every goroutine started with goWait.
type tcpServer struct {
	ln   net.Listener
	log  hclog.Logger
	wg   sync.WaitGroup
	done chan struct{}

	mu     sync.Mutex
	socks  []net.Conn
	closed bool
}

// listenTCP listens on addr; start begins serving.
func listenTCP(addr string, log hclog.Logger) (*tcpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakes: listen on %s: %w", addr, err)
	}
	return &tcpServer{ln: ln, log: log, done: make(chan struct{})}, nil
}

// start serves each accepted connection with handle on its own goroutine.
func (s *tcpServer) start(handle func(net.Conn)) { s.goWait(func() { s.acceptLoop(handle) }) }

// goWait runs f on a goroutine that Close waits for.
func (s *tcpServer) goWait(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// track registers a socket for Close to close; it closes it and reports false
// if the server is already closed.
func (s *tcpServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close()
		return false
	}
	s.socks = append(s.socks, c)
	return true
}

func (s *tcpServer) acceptLoop(handle func(net.Conn)) {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
			default:
				s.log.Error("accept failed; no more connections", "error", err)
			}
			return
		}
		if !s.track(nc) {
			return
		}
		s.goWait(func() { handle(nc) })
	}
}

// Addr returns the listening address, "127.0.0.1:PORT".
func (s *tcpServer) Addr() string { return s.ln.Addr().String() }

// Close stops listening, closes every tracked socket and waits for every
// goroutine. It is idempotent.
func (s *tcpServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	close(s.done)
	socks := slices.Clone(s.socks)
	s.mu.Unlock()
	err := s.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	for _, c := range socks {
		_ = c.Close()
	}
	s.wg.Wait()
	return err
}
