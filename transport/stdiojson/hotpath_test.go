package stdiojson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// slowRequest is what encoding/json makes of line, as parseRequest did before it
// had a fast path.
func slowRequest(line []byte) (wireRequest, bool) {
	var req wireRequest
	if json.Unmarshal(line, &req) != nil {
		return wireRequest{}, false
	}
	return req, true
}

// FuzzFastRequest holds the hand-written request reader to encoding/json: when
// it accepts a line, encoding/json reads the same request from it.
func FuzzFastRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"command":"ping"}`, `{"id":0,"command":"get_accounts"}`, `{"id":01,"command":"ping"}`,
		`{"id":18446744073709551615,"command":"x"}`, `{"id":123456789012345678901,"command":"x"}`,
		`{"id":1,"command":"a","x":"b"}`, `{"id":1,"command":"a\"b"}`, `{"id":1,"command":""}`,
		`{"id":1,"command":"p\u0069ng"}`, `{"id":1,"command":"é"}`, `{"id":1,"command":"<&>"}`,
		`{"id":-1,"command":"ping"}`, `{"id":"1","command":"ping"}`, `{"id":1, "command":"ping"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fast, ok := fastRequest(line)
		if !ok {
			return
		}
		slow, sok := slowRequest(line)
		if !sok {
			t.Fatalf("fastRequest accepted %q, encoding/json does not", line)
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("fastRequest(%q) (-json +fast):\n%s", line, diff)
		}
	})
}

// The fast path takes every parameterless request the Client writes.
func TestFastRequestTakesClientRequests(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		id := rapid.Uint64().Draw(t, "id")
		cmd := rapid.StringMatching(`[a-z_]{1,20}`).Draw(t, "command")
		line, err := encodeRequest(&wireRequest{ID: json.RawMessage(formatUint(id)), Command: cmd})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := fastRequest(bytes.TrimSuffix(line, []byte("\n")))
		if !ok {
			t.Fatalf("fastRequest refused %q", line)
		}
		want := wireRequest{ID: json.RawMessage(formatUint(id)), Command: cmd}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
	})
}

func formatUint(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// chunkReader returns its data in the chunk sizes given, then io.EOF.
type chunkReader struct {
	data   []byte
	chunks []int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.chunks) > 0 {
		n = max(1, min(n, r.chunks[0]))
		r.chunks = r.chunks[1:]
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// frameReader splits any stream, read in any pieces into a buffer of any size,
// into the lines of a plain split at newlines, oversized lines included.
func TestFrameReaderMatchesSplit(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		max := rapid.IntRange(1, 200).Draw(t, "max")
		lines := rapid.SliceOf(rapid.SliceOfN(rapid.ByteRange('a', 'z'), 0, 300)).Draw(t, "lines")
		crlf := rapid.Bool().Draw(t, "crlf")
		unterminated := rapid.Bool().Draw(t, "unterminated") // no newline after the last line
		var stream []byte
		for i, l := range lines {
			stream = append(stream, l...)
			if crlf {
				stream = append(stream, '\r')
			}
			if i < len(lines)-1 || !unterminated || len(l) == 0 {
				stream = append(stream, '\n')
			}
		}
		chunks := rapid.SliceOf(rapid.IntRange(1, 700)).Draw(t, "chunks")

		type got struct {
			Line    string
			TooLong bool
		}
		var want []got // the model: split at newlines, drop one "\r" before each
		parts := strings.Split(string(stream), "\n")
		if parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
		for _, p := range parts {
			p = strings.TrimSuffix(p, "\r")
			if len(p) > max {
				want = append(want, got{p[:min(len(p), 16)], true})
			} else {
				want = append(want, got{p, false})
			}
		}

		var have []got
		fr := newFrameReader(&chunkReader{data: stream, chunks: chunks}, max)
		fr.prefix = 16
		fr.buf = make([]byte, rapid.IntRange(16, 300).Draw(t, "buffer"))
		for {
			err := fr.fill()
			for {
				l, tooLong, ok := fr.next()
				if !ok {
					break
				}
				have = append(have, got{string(l), tooLong})
			}
			if errors.Is(err, io.EOF) {
				if l, tooLong, ok := fr.rest(); ok {
					have = append(have, got{string(l), tooLong})
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(want, have); diff != "" {
			t.Fatalf("(-split +frameReader):\n%s", diff)
		}
	})
}

// A read interrupted by a deadline loses nothing: the line read half before it
// is completed by the next read.
func TestFrameReaderResumesAfterDeadline(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fr := newFrameReader(r, 1024)
	if _, err := w.Write([]byte(`{"id":1,"sta`)); err != nil {
		t.Fatal(err)
	}
	if err := fr.fill(); err != nil {
		t.Fatal(err)
	}
	if l, _, ok := fr.next(); ok {
		t.Fatalf("next gave %q before the line ended", l)
	}
	if err := r.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := fr.fill(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("fill after deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("tus\":\"success\"}\n")); err != nil {
		t.Fatal(err)
	}
	if err := fr.fill(); err != nil {
		t.Fatal(err)
	}
	l, tooLong, ok := fr.next()
	if want := `{"id":1,"status":"success"}`; !ok || tooLong || string(l) != want {
		t.Fatalf("next = %q, %v, %v; want %q", l, tooLong, ok, want)
	}
}

// An answer to any id is byte for byte what encoding/json writes, whether the id
// takes the fast path (a canonical integer) or not.
func TestAnswerIDMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		id := json.RawMessage(rapid.OneOf(
			rapid.Map(rapid.Uint64(), formatUint),
			rapid.SampledFrom([]string{"0", "-1", "1.5", "1e3", `"x"`, `"<&>"`, " 7", "7 "}),
		).Draw(t, "id"))
		want, err := json.Marshal(wireResponse{ID: id, Status: statusSuccess, Data: pingData{Pong: true}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want)+"\n", string(encodeResponse(id, pongPayload{}, nil))); diff != "" {
			t.Fatalf("(-encoding/json +hand-written):\n%s", diff)
		}
	})
}

// Concurrent writers through a pipe nobody reads for a while: every line arrives
// whole, none lost, even when the pipe fills and the flusher takes over.
func TestPipeWriterGroupCommitKeepsLinesWhole(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pw := newPipeWriter(w)
	const writers, perWriter = 8, 400
	want := map[string]bool{}
	done := make(chan error, writers)
	for g := range writers {
		line := bytes.Repeat([]byte{byte('a' + g)}, 100+g*37) // 8 writers × 400 lines: well past 64 KiB
		for i := range perWriter {
			want[string(line)+"-"+formatUint(uint64(i))] = true
		}
		go func() {
			for i := range perWriter {
				if err := pw.write([]byte(string(line) + "-" + formatUint(uint64(i)) + "\n")); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	read := make(chan error, 1)
	go func() {
		fr := newFrameReader(r, 1<<20)
		for len(got) < len(want) {
			if err := fr.fill(); err != nil {
				read <- err
				return
			}
			for {
				l, _, ok := fr.next()
				if !ok {
					break
				}
				if got[string(l)] || !want[string(l)] {
					read <- errors.New("unexpected or repeated line " + string(l))
					return
				}
				got[string(l)] = true
			}
		}
		read <- nil
	}()
	select {
	case err := <-read:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("lines did not all arrive")
	}
	pw.close(time.Second)
}

// After a long line, the frame reader goes back to a buffer of its initial size.
func TestFrameReaderShrinksAfterLongLine(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 1<<20)
	fr := newFrameReader(bytes.NewReader(append(append(long, '\n'), "short\n"...)), 4<<20)
	var lines []int
	for len(lines) < 2 {
		if err := fr.fill(); err != nil {
			t.Fatalf("fill: %v", err)
		}
		for {
			l, _, ok := fr.next()
			if !ok {
				break
			}
			lines = append(lines, len(l))
		}
	}
	if lines[0] != len(long) || lines[1] != len("short") {
		t.Fatalf("lines of %v bytes", lines)
	}
	_ = fr.fill() // EOF; everything was consumed
	if len(fr.buf) > frameReaderSize {
		t.Errorf("buffer of %d bytes kept after the long line, want %d", len(fr.buf), frameReaderSize)
	}
}
