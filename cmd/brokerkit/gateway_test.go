package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/fakes"
)

// lockedBuffer collects a command's stderr while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startGatewayCmd runs `brokerkit gateway args...` in process and returns its
// port, its stderr, and a stop function that returns its exit code.
func startGatewayCmd(t *testing.T, args ...string) (port string, stderr *lockedBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	stderr = &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"gateway", "--listen", "127.0.0.1:0"}, args...), pw, stderr)
		_ = pw.Close()
	}()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(pr).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, pr)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("gateway %q printed nothing; stderr %q", args, stderr.String())
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		cancel()
		t.Fatalf("gateway %q: first line %q, stderr %q", args, line, stderr.String())
	}
	_, port, _ = strings.Cut(addr, ":")
	var once sync.Once
	code := 0
	stop = func() int {
		once.Do(func() {
			cancel()
			code = <-done
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return port, stderr, stop
}

func TestGatewayRecordReplay(t *testing.T) {
	gw, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	path := filepath.Join(t.TempDir(), "session.json")

	port, recErr, stop := startGatewayCmd(t, "--record", path, "--upstream", gw.Addr(), "--redact")
	code, direct, errs := run(t, "positions", "--port", port, "--json")
	if code != 0 {
		t.Fatalf("positions through the recorder: exit %d, %s", code, errs)
	}
	if c := stop(); c != 0 {
		t.Fatalf("recorder exit %d: %s", c, recErr.String())
	}
	s, err := fakes.LoadSession(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(recErr.String(), fmt.Sprintf("recorded %d connection(s) to %s", len(s.Connections), path)) {
		t.Fatalf("recorder stderr %q", recErr.String())
	}
	if !s.Redacted || len(s.Connections) == 0 {
		t.Fatalf("session: redacted %v, %d connections", s.Redacted, len(s.Connections))
	}

	port, repErr, stop := startGatewayCmd(t, "--replay", path)
	code, replayed, errs := run(t, "positions", "--port", port, "--json")
	if code != 0 {
		t.Fatalf("positions against the replay: exit %d, %s", code, errs)
	}
	redacted := strings.NewReplacer("DU1234567", "DU0000001", "DU7654321", "DU0000002").Replace(direct)
	if replayed != redacted {
		t.Fatalf("replayed positions differ:\n%s\nwant (redacted):\n%s", replayed, redacted)
	}
	// A request the recording cannot answer fails loudly on both sides.
	code, _, errs = run(t, "summary", "--port", port)
	if code == 0 {
		t.Fatalf("summary against a recording without it: exit 0")
	}
	if !strings.Contains(errs, "321") && !strings.Contains(errs, "replay") {
		t.Errorf("client stderr %q does not name the replay error", errs)
	}
	if c := stop(); c != 0 {
		t.Fatalf("replayer exit %d", c)
	}
	if !strings.Contains(repErr.String(), "no answer") && !strings.Contains(repErr.String(), "no recorded connection") {
		t.Fatalf("replayer stderr %q: want a mismatch line", repErr.String())
	}
}

func TestGatewayFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"gateway", "--record", "x.json"},
		{"gateway", "--upstream", "127.0.0.1:1"},
		{"gateway", "--redact"},
		{"gateway", "--replay", "a.json", "--script", "b.json"},
		{"gateway", "--replay", "/does/not/exist.json"},
		{"gateway", "--max-server-version", "226"},
		{"gateway", "--max-server-version", "99"},
		{"gateway", "--max-server-version", "207", "--replay", "a.json"},
	} {
		if code, out, errs := run(t, args...); code != 2 || out != "" || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q: want 2, nothing, one line", args, code, out, errs)
		}
	}
}

// TestGatewayMaxServerVersion: --max-server-version caps the version the
// gateway offers; a client gets the highest inside both ranges.
func TestGatewayMaxServerVersion(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		client fakes.Handshake
		want   string
	}{
		{nil, fakes.Handshake{MinVersion: 100, MaxVersion: 225}, "225"},
		{nil, fakes.Handshake{MinVersion: 100, MaxVersion: 193}, "193"},
		{[]string{"--max-server-version", "207"}, fakes.Handshake{MinVersion: 100, MaxVersion: 225}, "207"},
		{[]string{"--max-server-version", "207"}, fakes.Handshake{MinVersion: 100, MaxVersion: 193}, "193"},
	} {
		port, _, _ := startGatewayCmd(t, tc.args...)
		nc, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = nc.Write(fakes.EncodeHandshake(tc.client))
		reply, err := fakes.ReadFrame(bufio.NewReader(nc))
		_ = nc.Close()
		if err != nil || reply[0] != tc.want {
			t.Errorf("gateway %q, client %s: reply %q, %v; want version %s", tc.args, tc.client, reply, err, tc.want)
		}
	}
}
