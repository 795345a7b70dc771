package testbroker

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
)

// LogBuffer is a bytes.Buffer safe for concurrent writers (the loggers of a
// host and its child), that a test can wait on for a line to arrive.
type LogBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced by each Write; nil until waited on
}

// Write appends p and wakes WaitContains.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// WaitContains waits until the buffer contains s, or ctx is done.
func (l *LogBuffer) WaitContains(ctx context.Context, s string) error {
	for {
		l.mu.Lock()
		if strings.Contains(l.b.String(), s) {
			l.mu.Unlock()
			return nil
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("testbroker: wait for %q in the log: %w", s, ctx.Err())
		}
	}
}
