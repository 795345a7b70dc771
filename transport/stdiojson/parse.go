package stdiojson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/brokerkit/brokerkit/broker"
)

// Parsing lines: requests in the worker (exact keys, ids checked) and
// responses and events in the host.

// parseRequest decodes one request line. Every failure wraps broker.ErrProtocol
// and, when the line got far enough to name one, returns the request's id.
func parseRequest(line []byte) (wireRequest, error) {
	if req, ok := fastRequest(line); ok {
		return req, nil
	}
	var req wireRequest
	if err := unmarshalExact(line, &req); err != nil {
		id := peekID(line)
		var syn *json.SyntaxError
		if errors.As(err, &syn) || !bytes.HasPrefix(bytes.TrimLeft(line, " \t\r"), []byte("{")) {
			return wireRequest{ID: id}, fmt.Errorf("%w: malformed request line: %v", broker.ErrProtocol, err)
		}
		return wireRequest{ID: id}, fmt.Errorf("%w: bad request field: %v", broker.ErrProtocol, err)
	}
	if err := checkID(req.ID); err != nil {
		return wireRequest{}, err
	}
	if string(req.ID) == "null" {
		req.ID = nil
	}
	if req.Command == "" {
		return req, fmt.Errorf("%w: request has no \"command\"", broker.ErrProtocol)
	}
	return req, nil
}

// requestFields are the keys of a request, exactly as wireRequest's tags spell them.
var requestFields = func() map[string]bool {
	m := map[string]bool{}
	t := reflect.TypeFor[wireRequest]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		m[name] = true
	}
	return m
}()

// unmarshalExact decodes a request object into req like json.Unmarshal, except
// that keys match the field names exactly: encoding/json would also take "ID" or
// "Command" for "id" and "command". Keys that are not a field's exact name are
// ignored like any unknown field; of a repeated key the last one counts. Values
// are not copied unless a key needs dropping, so a huge unknown field costs no
// memory.
func unmarshalExact(line []byte, req *wireRequest) error {
	var exact [][]byte // the members whose key is exact, when some key is not
	folded := false
	ok := scanMembers(line, func(key, member []byte) {
		if requestFields[string(key)] {
			exact = append(exact, member)
		} else {
			folded = true
		}
	})
	if !ok || !folded || !json.Valid(line) {
		// No key to drop, or malformed: json.Unmarshal says how.
		return json.Unmarshal(line, req)
	}
	return json.Unmarshal(append(append([]byte("{"), bytes.Join(exact, []byte(","))...), '}'), req)
}

// scanMembers calls f with the decoded key and the raw text of each member of
// the JSON object in line, without decoding the values. It reports false, maybe
// after some calls, if line is not a well-formed object as far as it can tell;
// json.Unmarshal then has the last word.
func scanMembers(line []byte, f func(key, member []byte)) bool {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return false
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		return skipSpace(line, i+1) == len(line)
	}
	for {
		start := i
		end := skipString(line, i)
		if end < 0 {
			return false
		}
		key := line[start+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if json.Unmarshal(line[start:end], &k) != nil {
				return false
			}
			key = []byte(k)
		}
		i = skipSpace(line, end)
		if i >= len(line) || line[i] != ':' {
			return false
		}
		i = skipValue(line, skipSpace(line, i+1))
		if i < 0 {
			return false
		}
		f(key, line[start:i])
		i = skipSpace(line, i)
		switch {
		case i < len(line) && line[i] == ',':
			i = skipSpace(line, i+1)
		case i < len(line) && line[i] == '}':
			return skipSpace(line, i+1) == len(line)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i], or -1.
func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the value that starts at b[i], or -1. It
// checks the nesting of brackets and strings, not the literals in between.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = skipString(b, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	start := i
scan:
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			break scan
		}
	}
	if i == start {
		return -1
	}
	return i
}

// checkID accepts absent, null, a number or a string.
func checkID(id json.RawMessage) error {
	if len(id) == 0 {
		return nil
	}
	switch c := id[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9', string(id) == "null":
		return nil
	}
	return fmt.Errorf("%w: \"id\" must be a number or a string, not %.40s", broker.ErrProtocol, id)
}

// peekID recovers the top-level "id" of a line that does not decode as a whole
// (malformed further on, or cut short because it was too long). It returns nil
// when the id cannot be found or is not a number or string.
func peekID(line []byte) (id json.RawMessage) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil
		}
		if key != "id" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil
			}
			continue
		}
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		switch v := t.(type) {
		case json.Number:
			return json.RawMessage(v.String())
		case string:
			b, _ := json.Marshal(v)
			return b
		}
		return nil
	}
	return nil
}

// encodeResponse renders the answer to a request as one line, newline included.
func encodeResponse(id json.RawMessage, data any, err error) []byte {
	if a, ok := data.(jsonAppender); ok && err == nil {
		if line, ok := encodeSuccess(id, a); ok {
			return line
		}
	}
	resp := wireResponse{ID: id, Status: statusSuccess, Data: data}
	if err != nil {
		resp = wireResponse{ID: id, Status: statusError, Code: broker.ErrorCode(err), Error: err.Error(), IBCode: broker.IBCode(err)}
	}
	b, merr := json.Marshal(resp)
	if merr != nil {
		resp = wireResponse{ID: id, Status: statusError, Code: broker.CodeInternal, Error: "encode response: " + merr.Error()}
		b, _ = json.Marshal(resp)
	}
	return append(b, '\n')
}

// parseInbound decodes one line the worker wrote.
func parseInbound(line []byte) (wireInbound, error) {
	var in wireInbound
	if id, data, ok := fastSuccess(line); ok {
		in.ID, in.Status, in.Data, in.fast = id, statusSuccess, data, true
		return in, nil
	}
	if err := json.Unmarshal(line, &in); err != nil {
		return wireInbound{}, fmt.Errorf("%w: malformed line from worker: %v", broker.ErrProtocol, err)
	}
	switch {
	case in.Event != "":
		return in, nil
	case in.Status == statusSuccess, in.Status == statusError:
		return in, nil
	}
	return wireInbound{}, fmt.Errorf("%w: line from worker has neither \"event\" nor a valid \"status\": %.80s", broker.ErrProtocol, line)
}

var (
	fastPrefix = []byte(`{"id":`)
	fastMiddle = []byte(`,"status":"success","data":`)
)

// fastSuccess recognises the exact shape Serve writes for a success with a numeric
// id, {"id":N,"status":"success","data":...}, without scanning the data twice. The
// data is returned as a copy; it is validated when the caller decodes it.
func fastSuccess(line []byte) (id, data json.RawMessage, ok bool) {
	if !bytes.HasPrefix(line, fastPrefix) || len(line) < 2 || line[len(line)-1] != '}' {
		return nil, nil, false
	}
	rest := line[len(fastPrefix):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 20 || !bytes.HasPrefix(rest[n:], fastMiddle) {
		return nil, nil, false
	}
	d := rest[n+len(fastMiddle) : len(rest)-1]
	if len(d) == 0 {
		return nil, nil, false
	}
	return bytes.Clone(rest[:n]), bytes.Clone(d), true
}

// reparse reads again, with encoding/json alone, a success line that
// fastSuccess took apart, once its data has failed to decode: fastSuccess takes
// "data" to run to the line's end, which holds for the lines Serve writes but
// not for a worker that writes members after "data" (PROTOCOL.md fixes no
// order). It reports false when encoding/json reads the line the same way.
func reparse(id, data json.RawMessage) (wireInbound, bool) {
	line := slices.Concat(fastPrefix, []byte(id), fastMiddle, []byte(data), []byte("}"))
	var in wireInbound
	if json.Unmarshal(line, &in) != nil || bytes.Equal(in.Data, data) {
		return wireInbound{}, false
	}
	return in, true
}

// parseID reads the numeric id the Go client puts on its requests.
func parseID(raw json.RawMessage) (uint64, bool) {
	n, err := strconv.ParseUint(string(raw), 10, 64)
	return n, err == nil
}
