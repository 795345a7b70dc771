// What a Gateway records of its connections and requests, and the wait for connections to start.

package fakes

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// ConnRecord describes one accepted TCP connection.
type ConnRecord struct {
	Remote           string // client address
	ClientVersionMin int    // from the client's handshake; 0 if none was read
	ClientVersionMax int
	ConnectOptions   string    // handshake options, e.g. "+PACEAPI"
	ClientID         int64     // from START_API; 0 before it
	ServerVersion    int       // version the gateway answered; 0 if it did not answer
	Requests         []Request // the latest frames the client sent after the handshake, START_API included, within the RecordLimits
	DroppedRequests  int       // frames read but no longer in Requests (RecordLimits)
	Closed           bool      // the connection has ended
	// Refused says why the gateway turned the client away: "no API prefix",
	// "bad handshake: ...", "version range excludes N", "expected START_API",
	// "bad START_API: ...", "client id in use", "handshake timeout". "" if it did not.
	Refused string
	// APIStarted is true once START_API was accepted (MANAGED_ACCTS and the rest sent).
	APIStarted bool
	// Error says why the gateway closed the connection for a protocol error
	// after START_API (for example a frame over MaxFrameLen); "" otherwise.
	Error string
}

// Request is one framed message a client sent after the handshake. A request
// that came as protobuf (from VersionRawIDs on) is recorded in the text layout
// the same request has at TextServerVersion (id and version first), with
// Protobuf set; a protobuf request the gateway does not know is recorded as its
// id alone.
type Request struct {
	ID       int       // message id (field 0), -1 if it is not an integer
	Fields   []string  // every field, the id included
	Protobuf bool      // the request came as protobuf
	At       time.Time // when the gateway read it
}

// Connections returns a record of the accepted TCP connections in accept order:
// every live one and the latest closed ones, within the RecordLimits.
func (g *Gateway) Connections() []ConnRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]ConnRecord, len(g.conns))
	for i, c := range g.conns {
		r := c.rec
		r.Requests = slices.Clone(r.Requests)
		out[i] = r
	}
	return out
}

// LiveClientIDs returns the client ids of the open connections that completed
// START_API, in accept order.
func (g *Gateway) LiveClientIDs() []int64 {
	var ids []int64
	for _, c := range g.live(true) {
		ids = append(ids, c.clientID())
	}
	return ids
}

// WaitConnections waits until n connections in total (live or since closed)
// have completed START_API. It fails with ctx's error if ctx is done first, or
// with an error matching broker.ErrClosed if the gateway is closed first.
func (g *Gateway) WaitConnections(ctx context.Context, n int) error {
	for {
		g.mu.Lock()
		started, closed, ch := g.started, g.closed, g.changed
		g.mu.Unlock()
		if started >= n {
			return nil
		}
		if closed {
			return fmt.Errorf("fakes: wait for %d connections (have %d): gateway %w", n, started, broker.ErrClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakes: wait for %d connections (have %d): %w", n, started, ctx.Err())
		}
	}
}
