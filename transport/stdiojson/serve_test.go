package stdiojson

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
)

// hangBound is the generous upper bound every wait in these tests has; it only
// turns a hang into a failure, it measures nothing.
const hangBound = 20 * time.Second

// pipeServer is Serve running over in-memory pipes.
type pipeServer struct {
	in    *io.PipeWriter
	lines chan string
	done  chan error

	stopOnce sync.Once
	err      error
}

// stop closes the input and returns what Serve returned.
func (p *pipeServer) stop(t testing.TB) error {
	p.stopOnce.Do(func() {
		p.in.Close()
		select {
		case p.err = <-p.done:
		case <-time.After(hangBound):
			t.Error("Serve did not return after its input closed")
		}
		for range p.lines {
		}
	})
	return p.err
}

func startServe(t testing.TB, ctx context.Context, b broker.Broker, opts ...ServeOption) *pipeServer {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &pipeServer{in: inW, lines: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		err := Serve(ctx, b, inR, outW, opts...)
		outW.Close()
		inR.Close()
		p.done <- err
	}()
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 256<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *pipeServer) send(t testing.TB, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(p.in, l+"\n"); err != nil {
			t.Fatalf("write request: %v", err)
		}
	}
}

// recv returns the next response line, decoded.
func (p *pipeServer) recv(t testing.TB) map[string]any {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatal("worker output ended")
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("response %q is not a JSON object: %v", l, err)
		}
		return m
	case <-time.After(hangBound):
		t.Fatal("no response")
	}
	return nil
}

// noMore asserts nothing else has been written, after a round trip that must
// come back next (a request with id "sync").
func (p *pipeServer) syncNoMore(t testing.TB) {
	t.Helper()
	p.send(t, `{"id":"sync","command":"hello"}`)
	got := p.recv(t)
	if got["id"] != "sync" {
		t.Fatalf("unexpected line before the sync answer: %v", got)
	}
}

func js(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad expectation %s: %v", s, err)
	}
	return m
}

// wireJSON renders v through JSON and back into generic values.
func wireJSON(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestServePlanLines(t *testing.T) {
	b := newMemBroker(3)
	p := startServe(t, t.Context(), b)
	p.send(t,
		`{"command": "connect", "host": "127.0.0.1", "port": 4002, "client_id": 1}`,
		`{"command": "get_accounts"}`,
		`{"command": "get_positions"}`,
		`{"command": "get_account_summary", "tags": ["NetLiquidation"]}`,
		`{"command": "ping"}`,
		`{"command": "disconnect"}`,
		`{"command": "ping"}`,
	)
	accts := wireJSON(t, b.accounts())
	want := []map[string]any{
		{"status": "success", "data": map[string]any{"connected": true, "accounts": accts, "server_version": 176.0}},
		{"status": "success", "data": map[string]any{"accounts": accts}},
		{"status": "success", "data": map[string]any{"positions": wireJSON(t, toWirePositions(b.positions()))}},
		{"status": "success", "data": map[string]any{"summaries": []any{
			js(t, `{"account":"DU111111","values":{"NetLiquidation":{"value":"100000.25","currency":"USD"}}}`),
			js(t, `{"account":"DU222222","values":{"NetLiquidation":{"value":"200000.25","currency":"USD"}}}`),
		}}},
		{"status": "success", "data": map[string]any{"pong": true}},
		{"status": "success", "data": map[string]any{"disconnected": true}},
		{"status": "error", "code": "not_connected", "error": broker.ErrNotConnected.Error()},
	}
	for i, w := range want {
		if diff := cmp.Diff(w, p.recv(t)); diff != "" {
			t.Errorf("answer %d (-want +got):\n%s", i, diff)
		}
	}
	// Exact decimals travel as strings.
	pos := wireJSON(t, toWirePositions(b.positions()[:1])).([]any)[0].(map[string]any)
	if _, ok := pos["quantity"].(string); !ok {
		t.Errorf("quantity travels as %T, want a string", pos["quantity"])
	}
}

func TestServeBadLines(t *testing.T) {
	p := startServe(t, t.Context(), newMemBroker(0), WithMaxRequestBytes(1024))
	huge := `{"id":42,"command":"ping","pad":"` + strings.Repeat("x", 5000) + `"}`
	cases := []struct {
		line     string
		wantID   any // nil: no id
		wantCode string
	}{
		{`this is not json`, nil, "protocol"},
		{`{"id":1,"command":"launch_rockets"}`, 1.0, "unsupported"},
		{huge, 42.0, "protocol"},
		{`{"id":2,"command":"ping"}`, 2.0, "not_connected"},
		{`{"id":"abc","command":"connect","port":"4002"}`, "abc", "protocol"},
		{`{"id":3,"command":"connect","port":99999}`, 3.0, "invalid_argument"},
		{`[1,2,3]`, nil, "protocol"},
		{`{"id":{"x":1},"command":"ping"}`, nil, "protocol"},
		{`{"id":4}`, 4.0, "protocol"},
		{`{"id":5,"command":"ping"`, 5.0, "protocol"},
		{`{"id":6,"command":"cancel"}`, 6.0, "invalid_argument"},
		{`{"id":7,"command":"hello","protocol":-1}`, 7.0, "invalid_argument"},
		// Keys match exactly: these name neither an id nor a command.
		{`{"ID":15,"COMMAND":"hello"}`, nil, "protocol"},
		{`{"id":16,"Command":"ping"}`, 16.0, "protocol"},
		{`{"Id":17,"command":"ping"}`, nil, "not_connected"},
		// A cancel's target is an id: a number or a string.
		{`{"id":18,"command":"cancel","target":{"id":1}}`, 18.0, "invalid_argument"},
		{`{"id":19,"command":"cancel","target":[1]}`, 19.0, "invalid_argument"},
		{`{"id":20,"command":"cancel","target":true}`, 20.0, "invalid_argument"},
	}
	for _, c := range cases {
		p.send(t, c.line)
		got := p.recv(t)
		if got["id"] != c.wantID || got["status"] != "error" || got["code"] != c.wantCode {
			t.Errorf("line %.60q: got %v, want id %v code %s", c.line, got, c.wantID, c.wantCode)
		}
		if msg, _ := got["error"].(string); msg == "" {
			t.Errorf("line %.60q: error response without a message: %v", c.line, got)
		}
	}
	// Blank lines are ignored and the worker keeps serving.
	p.send(t, "", "  ", `{"id":8,"command":"connect"}`)
	if got := p.recv(t); got["id"] != 8.0 || got["status"] != "success" {
		t.Fatalf("after bad lines: %v", got)
	}
}

func TestServeIBCodeAndPanic(t *testing.T) {
	p := startServe(t, t.Context(), newMemBroker(0))
	p.send(t, `{"command":"connect","client_id":326}`)
	want := js(t, `{"status":"error","code":"client_id_in_use","ib_code":326,"error":"connect: ib error 326 (req -1): client id is already in use"}`)
	if diff := cmp.Diff(want, p.recv(t)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	p.send(t, `{"command":"connect"}`)
	p.recv(t)
	p.send(t, `{"id":1,"command":"get_account_summary","tags":["ibcode:10148"]}`)
	if got := p.recv(t); got["code"] != broker.CodeAPIError || got["ib_code"] != 10148.0 {
		t.Errorf("api error: got %v", got)
	}
	p.send(t, `{"id":2,"command":"get_account_summary","tags":["panic"]}`)
	if got := p.recv(t); got["id"] != 2.0 || got["code"] != broker.CodeInternal {
		t.Errorf("panic: got %v", got)
	}
	p.syncNoMore(t)
}

func TestServeOutOfOrder(t *testing.T) {
	p := startServe(t, t.Context(), newMemBroker(0))
	p.send(t, `{"command":"connect"}`)
	p.recv(t)
	p.send(t,
		`{"id":1,"command":"get_account_summary","tags":["wait:g","NetLiquidation"]}`,
		`{"id":2,"command":"ping"}`,
	)
	if got := p.recv(t); got["id"] != 2.0 {
		t.Fatalf("first answer %v, want id 2 (id 1 is blocked)", got)
	}
	p.send(t, `{"id":3,"command":"get_account_summary","tags":["release:g"]}`)
	got := map[any]bool{}
	for range 2 {
		m := p.recv(t)
		got[m["id"]] = m["status"] == "success"
	}
	if diff := cmp.Diff(map[any]bool{1.0: true, 3.0: true}, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
}

func TestServeIDlessInOrder(t *testing.T) {
	p := startServe(t, t.Context(), newMemBroker(0))
	// Id-less lines run one after another: the ping waits for the blocked
	// summary, though an id'd request overtakes both.
	p.send(t,
		`{"command":"connect"}`,
		`{"command":"get_account_summary","tags":["wait:g","NetLiquidation"]}`,
		`{"command":"ping"}`,
		`garbage`,
	)
	if got := p.recv(t); got["data"].(map[string]any)["connected"] != true {
		t.Fatalf("connect: %v", got)
	}
	p.send(t, `{"id":9,"command":"get_account_summary","tags":["release:g"]}`)
	// The id'd answer may come anywhere; the id-less ones come in order.
	var idless []map[string]any
	sawRelease := false
	for range 4 {
		if got := p.recv(t); got["id"] == 9.0 {
			sawRelease = true
		} else {
			idless = append(idless, got)
		}
	}
	if !sawRelease {
		t.Error("no answer to the id'd request")
	}
	if got := idless[0]; got["status"] != "success" || got["data"].(map[string]any)["summaries"] == nil {
		t.Errorf("want the summary first, got %v", got)
	}
	if diff := cmp.Diff(js(t, `{"status":"success","data":{"pong":true}}`), idless[1]); diff != "" {
		t.Errorf("ping (-want +got):\n%s", diff)
	}
	if got := idless[2]; got["code"] != "protocol" {
		t.Errorf("garbage: %v", got)
	}
}

func TestServeCancel(t *testing.T) {
	p := startServe(t, t.Context(), newMemBroker(0))
	p.send(t, `{"command":"connect"}`)
	p.recv(t)
	p.send(t, `{"id":1,"command":"get_account_summary","tags":["wait:never"]}`, `{"id":1,"command":"ping"}`)
	// The duplicate's answer must not carry id 1: the host would take it for the
	// answer to the request in flight.
	if got := p.recv(t); got["id"] != nil || got["code"] != "protocol" || !strings.Contains(fmt.Sprint(got["error"]), "id 1 ") {
		t.Fatalf("duplicate id in flight: %v, want a protocol error without an id that names id 1", got)
	}
	p.send(t, `{"id":2,"command":"cancel","target":1}`)
	got := map[any]map[string]any{}
	for range 2 {
		m := p.recv(t)
		got[m["id"]] = m
	}
	if got[1.0]["code"] != "canceled" {
		t.Errorf("canceled call answered %v", got[1.0])
	}
	if diff := cmp.Diff(js(t, `{"id":2,"status":"success","data":{"canceled":true}}`), got[2.0]); diff != "" {
		t.Errorf("cancel (-want +got):\n%s", diff)
	}
	p.send(t, `{"id":3,"command":"cancel","target":1}`)
	if diff := cmp.Diff(js(t, `{"id":3,"status":"success","data":{"canceled":false}}`), p.recv(t)); diff != "" {
		t.Errorf("second cancel (-want +got):\n%s", diff)
	}
}

func TestServeEventsOnlyAfterHello(t *testing.T) {
	b := newMemBroker(0)
	p := startServe(t, t.Context(), b)
	p.send(t, `{"command":"connect"}`, `{"command":"get_account_summary","tags":["event:notice"]}`)
	p.recv(t)
	p.recv(t)
	p.send(t, `{"id":"h","command":"hello","protocol":1}`) // no events asked for
	if got := p.recv(t); got["id"] != "h" || got["data"].(map[string]any)["events"] != false {
		t.Fatalf("hello without events: %v", got)
	}
	p.send(t, `{"id":"h2","command":"hello","protocol":1,"events":true}`)
	hello := p.recv(t)
	data := hello["data"].(map[string]any)
	if hello["id"] != "h2" || data["protocol"] != 1.0 || data["events"] != true || data["pid"].(float64) <= 0 {
		t.Fatalf("hello: %v", hello)
	}
	p.send(t, `{"command":"get_account_summary","tags":["event:connection_lost"]}`)
	got := []map[string]any{p.recv(t), p.recv(t)}
	if got[0]["event"] == nil {
		got[0], got[1] = got[1], got[0]
	}
	ev := got[0]
	if ev["event"] != "connection_lost" || ev["ib_code"] != 2104.0 || ev["message"] == "" || ev["time"] == nil || ev["id"] != nil {
		t.Errorf("event line: %v", ev)
	}
	if got[1]["status"] != "success" {
		t.Errorf("summary: %v", got[1])
	}
}

func TestServeDrainsAtEOF(t *testing.T) {
	b := newMemBroker(0)
	inR, inW := io.Pipe()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- Serve(t.Context(), b, inR, &out) }()
	io.WriteString(inW, `{"command":"connect"}`+"\n"+`{"id":1,"command":"ping"}`)
	inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(hangBound):
		t.Fatal("Serve did not return at EOF")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), out.String())
	}
	if b.isConnected() {
		t.Error("Serve returned without disconnecting")
	}
}

func TestServeContextCanceled(t *testing.T) {
	b := newMemBroker(0)
	ctx, cancel := context.WithCancel(t.Context())
	p := startServe(t, ctx, b)
	p.send(t, `{"command":"connect"}`)
	p.recv(t)
	p.send(t, `{"id":1,"command":"get_account_summary","tags":["wait:never"]}`)
	cancel()
	if got := p.recv(t); got["id"] != 1.0 || got["code"] != "canceled" {
		t.Errorf("in-flight call at cancel: %v", got)
	}
	if err := p.stop(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve returned %v, want context.Canceled", err)
	}
	if b.isConnected() {
		t.Error("Serve returned without disconnecting")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestServeWriteFailure(t *testing.T) {
	inR, inW := io.Pipe()
	defer inW.Close()
	done := make(chan error, 1)
	go func() { done <- Serve(t.Context(), newMemBroker(0), inR, failWriter{}) }()
	io.WriteString(inW, `{"command":"ping"}`+"\n")
	go io.Copy(inW, strings.NewReader(`{"command":"ping"}`+"\n")) // may block: nobody reads any more
	select {
	case err := <-done:
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("Serve returned %v, want the write error", err)
		}
	case <-time.After(hangBound):
		t.Fatal("Serve did not stop when its output failed")
	}
	inR.Close()
}

// TestServeProperty checks, for random interleavings of id'd and id-less
// requests, that every id'd request gets exactly one answer with its id and
// that the id-less ones are answered in the order they were sent.
func TestServeProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		p := startServe(t, t.Context(), newMemBroker(2))
		p.send(t, `{"id":0,"command":"connect"}`)
		p.recv(t)
		type req struct {
			line string
			id   any
			want string // "status/code" of the answer
		}
		commands := []struct{ line, want string }{
			{`"command":"ping"`, "success/"},
			{`"command":"get_accounts"`, "success/"},
			{`"command":"get_positions"`, "success/"},
			{`"command":"launch"`, "error/unsupported"},
			{`"command":"get_account_summary","tags":["ibcode:504"]`, "error/not_connected"},
		}
		n := rapid.IntRange(1, 40).Draw(rt, "n")
		var reqs []req
		var legacy []string
		for i := range n {
			c := commands[rapid.IntRange(0, len(commands)-1).Draw(rt, "cmd")]
			if rapid.Bool().Draw(rt, "idless") {
				reqs = append(reqs, req{line: "{" + c.line + "}", want: c.want})
				legacy = append(legacy, c.want)
			} else {
				reqs = append(reqs, req{line: fmt.Sprintf(`{"id":%d,%s}`, i+1, c.line), id: float64(i + 1), want: c.want})
			}
		}
		for _, r := range reqs {
			p.send(t, r.line)
		}
		wantByID := map[any]string{}
		for _, r := range reqs {
			if r.id != nil {
				wantByID[r.id] = r.want
			}
		}
		gotByID := map[any]string{}
		var gotLegacy []string
		for range reqs {
			m := p.recv(t)
			code, _ := m["code"].(string)
			s := fmt.Sprint(m["status"], "/", code)
			if id, ok := m["id"]; ok {
				if _, dup := gotByID[id]; dup {
					rt.Fatalf("two answers for id %v", id)
				}
				gotByID[id] = s
			} else {
				gotLegacy = append(gotLegacy, s)
			}
		}
		if diff := cmp.Diff(wantByID, gotByID); diff != "" {
			rt.Errorf("id'd answers (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(legacy, gotLegacy); diff != "" {
			rt.Errorf("id-less answers (-want +got):\n%s", diff)
		}
		if err := p.stop(t); err != nil {
			rt.Errorf("Serve: %v", err)
		}
	})
}

// blockedWriter is a stdout whose reader never reads: every Write blocks until
// release is closed, then fails.
type blockedWriter struct{ release chan struct{} }

func (w blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	return 0, io.ErrClosedPipe
}

// TestServeStopsReadingWhenOutputIsStuck writes many requests to a worker whose
// output nobody reads. The worker must stop reading its input once its answers
// fill the bounded output queue and every concurrency slot waits on it, so that
// what it holds stays bounded, instead of accepting every request and queueing
// every answer.
func TestServeStopsReadingWhenOutputIsStuck(t *testing.T) {
	const (
		slots = 8
		lines = 100_000
	)
	inR, inW := io.Pipe()
	out := blockedWriter{release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- Serve(t.Context(), newMemBroker(0), inR, out, WithMaxConcurrent(slots)) }()
	defer func() {
		close(out.release) // the stuck write fails: Serve stops
		inW.Close()
		select {
		case <-done:
		case <-time.After(hangBound):
			t.Error("Serve did not return once its output failed")
		}
	}()

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Each write returns only once Serve has taken the line (io.Pipe), so a write
	// that does not return in stallAfter means Serve has stopped reading.
	const stallAfter = 2 * time.Second
	written := 0
	line := []byte(`{"id":"request-000000","command":"ping"}` + "\n")
	for written < lines {
		copy(line[len(`{"id":"request-`):], fmt.Sprintf("%06d", written))
		wrote := make(chan error, 1)
		go func() { _, err := inW.Write(line); wrote <- err }()
		select {
		case err := <-wrote:
			if err != nil {
				t.Fatalf("write request %d: %v", written, err)
			}
			written++
			continue
		case <-time.After(stallAfter):
		}
		break
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("Serve took %d of %d requests with its output stuck; heap grew %d KiB", written, lines, grew>>10)
	// The input buffer (64 KiB, ~1600 such lines), the output queue (maxQueued,
	// ~11 000 answers of ~90 bytes) and the slots bound what it takes.
	if bound := slots + (64<<10)/len(line) + maxQueued/80 + 100; written > bound {
		t.Errorf("Serve took %d requests with its output stuck, want at most %d", written, bound)
	}
	if grew > 8<<20 {
		t.Errorf("heap grew %d MiB with the output stuck, want a few", grew>>20)
	}
}

// TestServeLargeLineMemory sends one request line of 32 MiB. Reading it must
// cost about twice its size in allocations, not five times (a buffer grown by
// append), and once it is answered the worker must hold nothing of it: neither
// a buffer kept for the next line nor free heap kept from the OS.
func TestServeLargeLineMemory(t *testing.T) {
	const size = 32 << 20
	line := []byte(`{"id":1,"command":"ping","pad":"` + strings.Repeat("x", size) + `"}` + "\n")
	p := startServe(t, t.Context(), newMemBroker(0))
	p.send(t, `{"id":0,"command":"hello"}`)
	p.recv(t)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := p.in.Write(line); err != nil {
		t.Fatal(err)
	}
	if got := p.recv(t); got["id"] != 1.0 || got["code"] != "not_connected" {
		t.Fatalf("large request answered %v", got)
	}
	// A second request read means the reader is done with the first line.
	p.send(t, `{"id":2,"command":"ping"}`)
	p.recv(t)
	var after runtime.MemStats
	runtime.ReadMemStats(&after) // before any GC of ours: what the worker left
	allocated := after.TotalAlloc - before.TotalAlloc
	kept := int64(after.HeapInuse) - int64(before.HeapInuse)
	unreturned := int64(after.HeapIdle-after.HeapReleased) - int64(before.HeapIdle-before.HeapReleased)
	t.Logf("a %d MiB line: allocated %d MiB, heap in use %+d KiB, idle heap not returned %+d KiB",
		size>>20, allocated>>20, kept>>10, unreturned>>10)
	if allocated > 2*size+size/2 {
		t.Errorf("reading a %d MiB line allocated %d MiB, want about twice its size", size>>20, allocated>>20)
	}
	if kept > size/8 {
		t.Errorf("heap in use grew %d MiB after the line was answered", kept>>20)
	}
	if unreturned > size/8 {
		t.Errorf("%d MiB of idle heap not returned to the OS after the line was answered", unreturned>>20)
	}
	runtime.KeepAlive(line)
}
