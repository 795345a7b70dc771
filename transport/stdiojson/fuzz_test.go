package stdiojson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
)

// FuzzParseRequest feeds arbitrary lines to the worker's request decoder: it
// must never panic, every failure must be a protocol error, and a decoded
// request must survive re-encoding unchanged.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"command": "connect", "host": "127.0.0.1", "port": 4002, "client_id": 1}`,
		`{"id":7,"command":"get_positions"}`,
		`{"id":"a","command":"get_account_summary","tags":["NetLiquidation"]}`,
		`{"id":1,"command":"hello","protocol":1,"events":true}`,
		`{"id":2,"command":"cancel","target":1}`,
		`{"id":null,"command":"ping"}`,
		`{"id":{},"command":"ping"}`,
		`{"id":3,"command":"connect","port":"x"}`,
		`{"id":4,"command":"ping"`,
		`[]`, `null`, `"x"`, ``, `{}`, `{"id":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := parseRequest(line)
		if err != nil {
			if !errors.Is(err, broker.ErrProtocol) {
				t.Fatalf("error %v does not match ErrProtocol", err)
			}
			if len(req.ID) > 0 && !json.Valid(req.ID) {
				t.Fatalf("recovered id %q is not JSON", req.ID)
			}
			return
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := parseRequest(b)
		if err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if diff := cmp.Diff(req, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		// Every answer is one line of JSON.
		resp := encodeResponse(req.ID, nil, broker.ErrorFromCode("unsupported", string(line), 0))
		if bytes.Count(resp, []byte("\n")) != 1 || !json.Valid(resp) {
			t.Fatalf("response %q is not one JSON line", resp)
		}
	})
}

// FuzzParseInbound feeds arbitrary lines to the host's decoder of worker
// output: never a panic, failures are protocol errors, and a line the fast path
// accepts decodes the same way through the slow path.
func FuzzParseInbound(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"status":"success","data":{"pong":true}}`,
		`{"id":2,"status":"error","code":"not_connected","error":"broker: not connected"}`,
		`{"id":3,"status":"error","code":"api_error","error":"x","ib_code":200}`,
		`{"event":"notice","time":"2026-01-02T03:04:05Z","ib_code":2104,"message":"ok"}`,
		`{"status":"success","data":{"connected":true,"accounts":["DU1"]}}`,
		`{"id":4,"status":"success","data":}`,
		`{"id":5,"status":"success","data":{"a":1}} `,
		`{"id":1,"status":"bogus"}`, `hello`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		in, err := parseInbound(line)
		if err != nil {
			if !errors.Is(err, broker.ErrProtocol) {
				t.Fatalf("error %v does not match ErrProtocol", err)
			}
			return
		}
		if _, _, fast := fastSuccess(line); fast {
			var slow wireInbound
			if json.Unmarshal(line, &slow) != nil {
				return // the fast path defers validation to the data's decoder
			}
			var a, b any
			errA, errB := json.Unmarshal(in.Data, &a), json.Unmarshal(slow.Data, &b)
			if (errA == nil) != (errB == nil) || !cmp.Equal(a, b) || string(in.ID) != string(slow.ID) {
				t.Fatalf("fast path %s/%s, slow path %s/%s", in.ID, in.Data, slow.ID, slow.Data)
			}
		}
	})
}

// FuzzLineReader checks that lines come out as they went in, whatever their
// lengths relative to the limit and the buffer.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nbb\r\n\nccc"), 2)
	f.Add([]byte(strings.Repeat("x", 70000)+"\nshort\n"), 100)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		limit = limit % 100000
		if limit <= 0 {
			limit += 100000
		}
		lr := newFrameReader(bytes.NewReader(data), limit)
		want := strings.Split(string(data), "\n")
		if len(want) > 0 && want[len(want)-1] == "" {
			want = want[:len(want)-1]
		}
		for i := 0; ; i++ {
			line, err := lr.readLine()
			if errors.Is(err, io.EOF) {
				if i != len(want) {
					t.Fatalf("EOF after %d lines, want %d", i, len(want))
				}
				return
			}
			w := strings.TrimSuffix(want[i], "\r")
			switch {
			case errors.Is(err, errLineTooLong):
				if len(w) <= limit || !strings.HasPrefix(w, string(line)) {
					t.Fatalf("line %d (%d bytes, limit %d) reported too long with prefix %.20q", i, len(w), limit, line)
				}
			case err != nil:
				t.Fatal(err)
			case string(line) != w:
				t.Fatalf("line %d = %.40q, want %.40q", i, line, w)
			}
		}
	})
}

// FuzzUnmarshalExact checks unmarshalExact against a plain reference: decode
// the object into a map (exact keys, the last of a repeated key), keep the keys
// that name a field, and decode those. Case variants of a field's name, which
// encoding/json alone would take, must be ignored.
func FuzzUnmarshalExact(f *testing.F) {
	for _, s := range []string{
		`{"ID":15,"COMMAND":"hello"}`,
		`{"id":1,"Command":"ping","command":"hello"}`,
		`{"command":"a","COMMAND":"b"}`,
		`{"\u0069d":2,"command":"ping"}`,
		`{"\u0049D":2,"command":"ping"}`,
		`{ "id" : [1,{"a":"}"}] , "Tags":["x"], "tags":["y"] }`,
		`{"ID":[1},"command":"ping"}`,
		`{"id":1,"command":"ping","pad":"x\"y\\"}`,
		`{}`, `[]`, `null`, `{"a":}`, `{"a":1,}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var got wireRequest
		gotErr := unmarshalExact(line, &got)

		var want wireRequest
		var fields map[string]json.RawMessage
		wantErr := json.Unmarshal(line, &fields)
		if wantErr == nil {
			for k := range fields {
				if !requestFields[k] {
					delete(fields, k)
				}
			}
			b, err := json.Marshal(fields)
			if err != nil {
				t.Fatal(err)
			}
			wantErr = json.Unmarshal(b, &want)
		}
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, reference %v", line, gotErr, wantErr)
		}
		if gotErr == nil {
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%q (-reference +got):\n%s", line, diff)
			}
		}
	})
}

// TestLineReaderLongLines reads lines far longer than the initial buffer
// and checks them byte for byte, and that release drops the grown buffer.
func TestLineReaderLongLines(t *testing.T) {
	long := make([]byte, 3*(8<<20)+12345)
	for i := range long {
		long[i] = byte('a' + i*7%26)
	}
	mid := long[:200<<10]
	data := bytes.Join([][]byte{long, []byte("short"), mid, long[:10]}, []byte("\n"))
	lr := newFrameReader(bytes.NewReader(data), len(long))
	for i, want := range [][]byte{long, []byte("short"), mid, long[:10]} {
		line, err := lr.readLine()
		if err != nil || !bytes.Equal(line, want) {
			t.Fatalf("line %d: %d bytes, err %v; want %d bytes", i, len(line), err, len(want))
		}
		if large := lr.release(); large != (len(want) >= largeLine) {
			t.Errorf("line %d of %d bytes: release said large=%v", i, len(want), large)
		}
		if len(lr.buf) >= largeLine {
			t.Errorf("line %d: buffer of %d bytes kept after release", i, len(lr.buf))
		}
	}
	if _, err := lr.readLine(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last line: %v, want EOF", err)
	}
}
