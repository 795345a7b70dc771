package stdiojson

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// ProtocolVersion is the version of the line protocol this package speaks. It
// changes only when a change would break an existing client; adding commands,
// fields, error codes or event kinds does not change it (see PROTOCOL.md).
const ProtocolVersion = 1

// DefaultMaxLineBytes is the default bound on one line, in either direction. It is
// far above the size of a get_positions answer with 10 000 positions (about 3 MB).
const DefaultMaxLineBytes = 64 << 20

// Commands that belong to the transport rather than to the Broker port. The
// port's commands are the string values of the broker.Op constants.
const (
	CommandHello  = "hello"  // negotiate the protocol version and opt in to events
	CommandCancel = "cancel" // abandon the request whose id is "target"
)

// Response statuses.
const (
	statusSuccess = "success"
	statusError   = "error"
)

// errLineTooLong reports a line longer than the configured limit; the line has
// been consumed entirely.
var errLineTooLong = errors.New("line too long")

// wireRequest is every field any request may carry; unknown fields are ignored.
type wireRequest struct {
	ID       json.RawMessage `json:"id,omitempty"`
	Command  string          `json:"command"`
	Host     string          `json:"host,omitempty"`
	Port     int             `json:"port,omitempty"`
	ClientID int64           `json:"client_id,omitempty"`
	ReadOnly bool            `json:"readonly,omitempty"`
	Timeout  float64         `json:"timeout,omitempty"` // seconds
	Tags     []string        `json:"tags,omitempty"`
	Protocol int             `json:"protocol,omitempty"`
	Events   bool            `json:"events,omitempty"`
	Target   json.RawMessage `json:"target,omitempty"`
}

// wireResponse is the answer to one request.
type wireResponse struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Status string          `json:"status"`
	Data   any             `json:"data,omitempty"`
	Code   string          `json:"code,omitempty"`
	Error  string          `json:"error,omitempty"`
	IBCode int64           `json:"ib_code,omitempty"`
}

// wireEvent is an unsolicited line; it has "event" where responses have "id".
type wireEvent struct {
	Event   broker.EventKind `json:"event"`
	Time    time.Time        `json:"time"`
	IBCode  int64            `json:"ib_code,omitempty"`
	Message string           `json:"message"`
}

// wireInbound is what the host reads: a response or an event.
type wireInbound struct {
	ID      json.RawMessage `json:"id"`
	Event   string          `json:"event"`
	Status  string          `json:"status"`
	Data    json.RawMessage `json:"data"`
	Code    string          `json:"code"`
	Error   string          `json:"error"`
	IBCode  int64           `json:"ib_code"`
	Time    time.Time       `json:"time"`
	Message string          `json:"message"`
}

// Data shapes, one per command.
type (
	helloData struct {
		Protocol int      `json:"protocol"`
		PID      int      `json:"pid"`
		Events   bool     `json:"events"`
		Commands []string `json:"commands"`
	}
	connectData struct {
		Connected     bool     `json:"connected"`
		Accounts      []string `json:"accounts"`
		ServerVersion int      `json:"server_version"`
	}
	disconnectData struct {
		Disconnected bool `json:"disconnected"`
	}
	accountsData struct {
		Accounts []string `json:"accounts"`
	}
	positionsData struct {
		Positions []wirePosition `json:"positions"`
	}
	summaryData struct {
		Summaries []wireSummary `json:"summaries"`
	}
	pingData struct {
		Pong bool `json:"pong"`
	}
	cancelData struct {
		Canceled bool `json:"canceled"`
	}
)

type wireContract struct {
	ConID        int64  `json:"con_id"`
	Symbol       string `json:"symbol"`
	SecType      string `json:"sec_type"`
	Expiry       string `json:"expiry"`
	Strike       string `json:"strike"` // decimal text
	Right        string `json:"right"`
	Multiplier   string `json:"multiplier"`
	Exchange     string `json:"exchange"`
	Currency     string `json:"currency"`
	LocalSymbol  string `json:"local_symbol"`
	TradingClass string `json:"trading_class"`
}

type wirePosition struct {
	Account  string       `json:"account"`
	Contract wireContract `json:"contract"`
	Quantity string       `json:"quantity"` // decimal text
	AvgCost  string       `json:"avg_cost"` // decimal text
}

type wireSummaryValue struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

type wireSummary struct {
	Account string                      `json:"account"`
	Values  map[string]wireSummaryValue `json:"values"`
}

func toWirePositions(ps []broker.Position) []wirePosition {
	out := make([]wirePosition, len(ps))
	for i, p := range ps {
		c := p.Contract
		out[i] = wirePosition{
			Account: p.Account,
			Contract: wireContract{
				ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry, Strike: c.Strike.String(),
				Right: c.Right, Multiplier: c.Multiplier, Exchange: c.Exchange, Currency: c.Currency,
				LocalSymbol: c.LocalSymbol, TradingClass: c.TradingClass,
			},
			Quantity: p.Quantity.String(),
			AvgCost:  p.AvgCost.String(),
		}
	}
	return out
}

// fromWirePositions converts decoded positions; decimals are parsed exactly,
// and text that is not a decimal is a protocol error.
func fromWirePositions(ws []wirePosition) ([]broker.Position, error) {
	out := make([]broker.Position, len(ws))
	for i, w := range ws {
		c := w.Contract
		var errs [3]error
		out[i] = broker.Position{
			Account: w.Account,
			Contract: broker.Contract{
				ConID: c.ConID, Symbol: c.Symbol, SecType: c.SecType, Expiry: c.Expiry,
				Right: c.Right, Multiplier: c.Multiplier, Exchange: c.Exchange, Currency: c.Currency,
				LocalSymbol: c.LocalSymbol, TradingClass: c.TradingClass,
			},
		}
		out[i].Contract.Strike, errs[0] = parseWireDecimal(c.Strike)
		out[i].Quantity, errs[1] = parseWireDecimal(w.Quantity)
		out[i].AvgCost, errs[2] = parseWireDecimal(w.AvgCost)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("%w: position %d: %v", broker.ErrProtocol, i, err)
		}
	}
	return out, nil
}

// parseWireDecimal parses decimal text; "" (an absent field) is 0.
func parseWireDecimal(s string) (broker.Decimal, error) {
	if s == "" {
		return broker.Decimal{}, nil
	}
	return broker.ParseDecimal(s)
}

func toWireSummaries(ss []broker.AccountSummary) []wireSummary {
	out := make([]wireSummary, len(ss))
	for i, s := range ss {
		vals := make(map[string]wireSummaryValue, len(s.Values))
		for k, v := range s.Values {
			vals[k] = wireSummaryValue{Value: v.Value, Currency: v.Currency}
		}
		out[i] = wireSummary{Account: s.Account, Values: vals}
	}
	return out
}

func fromWireSummaries(ws []wireSummary) []broker.AccountSummary {
	out := make([]broker.AccountSummary, len(ws))
	for i, w := range ws {
		vals := make(map[string]broker.SummaryValue, len(w.Values))
		for k, v := range w.Values {
			vals[k] = broker.SummaryValue{Value: v.Value, Currency: v.Currency}
		}
		out[i] = broker.AccountSummary{Account: w.Account, Values: vals}
	}
	return out
}

// nonNil makes a nil slice marshal as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// secondsToDuration converts a wire timeout, clamping what a Duration cannot hold.
func secondsToDuration(s float64) time.Duration {
	switch {
	case s <= 0:
		if s < 0 {
			return -1 // let ConnectParams.Validate reject it
		}
		return 0
	case s >= math.MaxInt64/float64(time.Second):
		return math.MaxInt64
	}
	return time.Duration(s * float64(time.Second))
}

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
		in.ID, in.Status, in.Data = id, statusSuccess, data
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

// parseID reads the numeric id the Go client puts on its requests.
func parseID(raw json.RawMessage) (uint64, bool) {
	n, err := strconv.ParseUint(string(raw), 10, 64)
	return n, err == nil
}

// lineReader reads newline-terminated lines of bounded length.
type lineReader struct {
	r      *bufio.Reader
	max    int
	prefix int // how much of an oversized line to keep, for peekID

	blocks [][]byte // a line longer than r's buffer, in pieces that are never copied to grow
	buf    []byte   // the last such line, assembled; dropped by release
}

// lineBlockMax caps the size of one piece of a long line: pieces double from
// the reader's buffer size up to it, so that a line costs about its size in
// pieces (never more than lineBlockMax over it) and as much again assembled.
const lineBlockMax = 8 << 20

func newLineReader(r io.Reader, max int) *lineReader {
	if max <= 0 {
		max = DefaultMaxLineBytes
	}
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max, prefix: 4 << 10}
}

// next returns the next line without its line ending. The slice is valid until
// the next call. A line longer than the limit is consumed whole and reported as
// errLineTooLong together with its first few KiB. A last line without a newline
// counts as a line; then next returns io.EOF.
//
// A line that fits the reader's buffer is returned in place. A longer one is
// gathered in pieces and assembled once, at its exact size: growing one buffer
// by append would allocate about five times the line.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = nil
	lr.blocks = lr.blocks[:0]
	n := 0 // bytes of the line read so far, up to max+2 (then tooLong)
	tooLong := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if err == nil && n == 0 && !tooLong {
			line := trimEOL(chunk)
			if len(line) > lr.max {
				return line[:min(len(line), lr.prefix)], errLineTooLong
			}
			return line, nil
		}
		if !tooLong {
			if n+len(chunk) > lr.max+2 {
				lr.appendLine(chunk[:min(max(0, lr.prefix-n), len(chunk))])
				tooLong = true
			} else {
				lr.appendLine(chunk)
			}
			n += len(chunk)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && (n > 0 || tooLong):
			// A final line without a newline; EOF comes on the next call.
		case err != nil:
			return nil, err
		}
		line := trimEOL(lr.assemble())
		if tooLong || len(line) > lr.max {
			return line[:min(len(line), lr.prefix)], errLineTooLong
		}
		return line, nil
	}
}

// appendLine adds p to the pieces of the line being read.
func (lr *lineReader) appendLine(p []byte) {
	for len(p) > 0 {
		k := len(lr.blocks) - 1
		if k < 0 || len(lr.blocks[k]) == cap(lr.blocks[k]) {
			size := 64 << 10
			if k >= 0 {
				size = min(2*cap(lr.blocks[k]), lineBlockMax)
			}
			lr.blocks = append(lr.blocks, make([]byte, 0, size))
			k++
		}
		b := lr.blocks[k]
		c := copy(b[len(b):cap(b)], p)
		lr.blocks[k] = b[:len(b)+c]
		p = p[c:]
	}
}

// assemble joins the pieces into one slice of the exact size and drops them.
func (lr *lineReader) assemble() []byte {
	if len(lr.blocks) == 1 {
		lr.buf = lr.blocks[0]
	} else {
		size := 0
		for _, b := range lr.blocks {
			size += len(b)
		}
		lr.buf = make([]byte, 0, size)
		for _, b := range lr.blocks {
			lr.buf = append(lr.buf, b...)
		}
	}
	clear(lr.blocks)
	lr.blocks = lr.blocks[:0]
	return lr.buf
}

// largeLine is the size of a line past which release gives memory back to the OS.
const largeLine = 4 << 20

// release drops the buffer of the last line, which the caller is done with, and
// reports whether it was large enough that its memory should be returned to the
// OS (a request line of 60 MB would otherwise stay part of the worker's RSS).
func (lr *lineReader) release() bool {
	large := cap(lr.buf) >= largeLine
	lr.buf = nil
	return large
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}
