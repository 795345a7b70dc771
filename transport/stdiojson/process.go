package stdiojson

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
)

// The worker process's lifecycle: spawning it on three pipes, forwarding its
// stderr to the logger, reaping it, failing every waiting call when it dies,
// and Close.

func (c *Client) spawn(path string, env []string) error {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err1 := pipe()
	outR, outW, err2 := pipe()
	errR, errW, err3 := pipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		closeAll()
		return fmt.Errorf("%w: pipes for worker: %w", broker.ErrUnavailable, err)
	}
	cmd := exec.Command(path, c.cfg.args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		closeAll()
		return fmt.Errorf("%w: start worker %s: %w", broker.ErrUnavailable, path, err)
	}
	inR.Close()
	outW.Close()
	errW.Close()
	c.cmd, c.pid = cmd, cmd.Process.Pid
	c.stdin, c.stdout, c.stderr = inW, outR, errR
	c.log = c.log.With("worker_pid", c.pid)

	c.w = newPipeWriter(inW)
	c.fr = newFrameReader(outR, c.cfg.maxLine)
	c.lf = outR.SetReadDeadline(time.Time{}) == nil
	c.idle = time.AfterFunc(time.Hour, c.kick)
	c.idle.Stop()
	c.wake <- struct{}{}
	c.bg.Add(3)
	go c.readLoop()
	go c.stderrLoop()
	go c.waitLoop()
	return nil
}

// stderrLoop forwards the worker's stderr into the logger, one entry per line.
// Lines in hclog's JSON format keep their level, message and fields.
func (c *Client) stderrLoop() {
	defer c.bg.Done()
	defer close(c.stderrDone)
	sc := bufio.NewScanner(c.stderr)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	log := c.log.Named("worker")
	for sc.Scan() {
		forwardLogLine(log, sc.Bytes())
	}
}

func forwardLogLine(log hclog.Logger, line []byte) {
	var m map[string]any
	if len(line) > 0 && line[0] == '{' && json.Unmarshal(line, &m) == nil {
		if msg, ok := m["@message"].(string); ok {
			level := hclog.Info
			if l, ok := m["@level"].(string); ok {
				if lv := hclog.LevelFromString(l); lv != hclog.NoLevel {
					level = lv
				}
			}
			args := make([]any, 0, 2*len(m))
			for k, v := range m {
				if !strings.HasPrefix(k, "@") {
					args = append(args, k, v)
				}
			}
			log.Log(level, msg, args...)
			return
		}
	}
	log.Info(string(line))
}

// waitLoop reaps the worker and then fails every call that is still waiting.
func (c *Client) waitLoop() {
	defer c.bg.Done()
	err := c.cmd.Wait()
	status := "exit status 0"
	if err != nil {
		status = err.Error()
	}
	c.exitStatus = status
	close(c.exited)
	c.kick() // someone must read the output to its end
	// Let the reader take what the worker wrote before it went; a grandchild
	// holding the pipe open must not keep us waiting.
	for _, done := range []struct {
		ch <-chan struct{}
		f  *os.File
	}{{c.readerDone, c.stdout}, {c.stderrDone, c.stderr}} {
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-done.ch:
		case <-t.C:
			done.f.Close()
			<-done.ch
		}
		t.Stop()
		done.f.Close()
	}
	c.die(fmt.Errorf("%w: worker (pid %d) exited: %s", broker.ErrUnavailable, c.pid, status))
}

// die marks the worker unusable and fails every call waiting for it.
func (c *Client) die(err error) {
	c.mu.Lock()
	if c.dead != nil {
		c.mu.Unlock()
		return
	}
	c.dead = err
	closed := c.closed
	pending := c.pending
	c.pending = nil
	close(c.deadCh)
	c.mu.Unlock()
	perr := err
	if closed { // the worker is ending because Close ended it: calls see ErrClosed
		perr = fmt.Errorf("%w (%v)", broker.ErrClosed, err)
	}
	for _, w := range pending {
		w.ch <- result{err: perr, lost: true}
	}
	c.endStreams()
	if !closed {
		c.log.Error("worker died", "error", err)
		c.hub.Publish(broker.Event{Kind: broker.EventConnectionLost, Message: err.Error()})
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func (c *Client) kill() {
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.log.Warn("kill worker", "error", err)
	}
}

// Close implements broker.Broker. Calls in flight fail with broker.ErrClosed.
// Close asks the worker to disconnect, closes its stdin, waits up to the grace
// period (WithGracePeriod) for it to exit, kills it otherwise, and always reaps
// it. It returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		// Requests registered before closed was set are written before their
		// cancels below, so that the worker never runs one it will not be told to
		// cancel (which would hold its exit until its drain timeout).
		c.writing.Wait()
		c.mu.Lock()
		pending := c.pending
		if c.dead == nil {
			c.pending = make(map[uint64]*waiter)
		}
		c.mu.Unlock()
		for _, w := range pending {
			w.ch <- result{err: broker.ErrClosed, lost: true}
		}
		c.mu.Lock()
		if c.tokenHeld && c.owner != nil && !c.eof {
			c.interruptLocked() // a caller reading must see its ErrClosed
		}
		c.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.grace)
		defer cancel()
		// Abandoned calls are canceled in the worker, so that it need not let
		// them finish once its input ends.
		for id := range pending {
			c.sendCancel(id)
		}
		if err := c.rawCall(ctx, string(broker.OpDisconnect), nil, nil, false); err != nil && !errors.Is(err, broker.ErrUnavailable) {
			c.log.Debug("disconnect at close", "error", err)
		}
		c.w.close(time.Until(deadline(ctx)))
		select {
		case <-c.exited:
		case <-ctx.Done():
			c.log.Warn("worker did not exit within the grace period; killing it", "grace", c.cfg.grace)
			c.kill()
		}
		c.bg.Wait()
		c.idle.Stop()
		c.die(fmt.Errorf("stdiojson: %w", broker.ErrClosed))
		c.hub.Close()
		c.log.Debug("worker stopped", "status", c.exitStatus)
	})
	return nil
}
