package stdiojson

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/brokerkit/brokerkit/broker"
)

// This file renders and reads the hot payloads by hand. The bytes are exactly
// those encoding/json produces for the same values (tests hold the two side by
// side), so PROTOCOL.md and every client are unaffected. The reader accepts the
// shape the writer produces and hands anything else (other whitespace, field
// order) to encoding/json, so lines from any conforming worker are read
// as before.

// jsonAppender is response data that renders itself; encodeResponse writes it
// without reflection.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// positionsPayload is the data of a get_positions answer, rendered as
// positionsData{Positions: toWirePositions(ps)} would be.
type positionsPayload []broker.Position

// MarshalJSON renders p as encoding/json would render the equivalent positionsData.
func (p positionsPayload) MarshalJSON() ([]byte, error) { return p.appendJSON(nil), nil }

func (p positionsPayload) appendJSON(b []byte) []byte {
	// About 280 bytes a position; growing once beats doubling a 3 MB buffer.
	if need := len(b) + 32 + 300*len(p); cap(b) < need {
		nb := make([]byte, len(b), need)
		copy(nb, b)
		b = nb
	}
	b = append(b, `{"positions":[`...)
	for i := range p {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendPosition(b, &p[i])
	}
	return append(b, "]}"...)
}

func appendPosition(b []byte, p *broker.Position) []byte {
	c := &p.Contract
	b = append(b, `{"account":`...)
	b = appendJSONString(b, p.Account)
	b = append(b, `,"contract":{"con_id":`...)
	b = strconv.AppendInt(b, c.ConID, 10)
	b = append(b, `,"symbol":`...)
	b = appendJSONString(b, c.Symbol)
	b = append(b, `,"sec_type":`...)
	b = appendJSONString(b, c.SecType)
	b = append(b, `,"expiry":`...)
	b = appendJSONString(b, c.Expiry)
	b = append(b, `,"strike":`...)
	b = appendJSONString(b, c.Strike.String())
	b = append(b, `,"right":`...)
	b = appendJSONString(b, c.Right)
	b = append(b, `,"multiplier":`...)
	b = appendJSONString(b, c.Multiplier)
	b = append(b, `,"exchange":`...)
	b = appendJSONString(b, c.Exchange)
	b = append(b, `,"currency":`...)
	b = appendJSONString(b, c.Currency)
	b = append(b, `,"local_symbol":`...)
	b = appendJSONString(b, c.LocalSymbol)
	b = append(b, `,"trading_class":`...)
	b = appendJSONString(b, c.TradingClass)
	b = append(b, `},"quantity":`...)
	b = appendJSONString(b, p.Quantity.String())
	b = append(b, `,"avg_cost":`...)
	b = appendJSONString(b, p.AvgCost.String())
	return append(b, '}')
}

// pongPayload is the data of a ping answer: {"pong":true}.
type pongPayload struct{}

// MarshalJSON renders the ping answer's data.
func (pongPayload) MarshalJSON() ([]byte, error) { return pongPayload{}.appendJSON(nil), nil }

func (pongPayload) appendJSON(b []byte) []byte { return append(b, `{"pong":true}`...) }

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string exactly as encoding/json.Marshal
// writes it: HTML-safe (<, >, & escaped), invalid UTF-8 replaced by U+FFFD,
// U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// encodeSuccess renders a success line for data that renders itself, with the
// same bytes as encodeResponse's encoding/json path.
func encodeSuccess(id json.RawMessage, data jsonAppender) ([]byte, bool) {
	b := make([]byte, 0, 64)
	b = append(b, '{')
	if isCanonicalUint(id) { // as encoding/json would write it: unchanged
		b = append(b, `"id":`...)
		b = append(b, id...)
		b = append(b, ',')
	} else if len(id) > 0 {
		idb, err := json.Marshal(id) // compacts and escapes as the slow path would
		if err != nil {
			return nil, false
		}
		b = append(b, `"id":`...)
		b = append(b, idb...)
		b = append(b, ',')
	}
	b = append(b, `"status":"success","data":`...)
	b = data.appendJSON(b)
	return append(b, '}', '\n'), true
}

// rawDecoder is a call result that decodes the answer's data itself.
type rawDecoder interface {
	decodeData(data []byte) error
}

// positionsResult receives a get_positions answer.
type positionsResult struct {
	positions []broker.Position
}

// decodeData reads the canonical rendering by hand and anything else with
// encoding/json; both give the same positions.
func (r *positionsResult) decodeData(data []byte) error {
	if ps, ok := fastDecodePositions(data); ok {
		r.positions = ps
		return nil
	}
	var d positionsData
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	ps, err := fromWirePositions(d.Positions)
	if err != nil {
		return err
	}
	r.positions = ps
	return nil
}

// fastDecodePositions parses {"positions":[...]} as positionsPayload renders it.
// It reports false, having decided nothing, for any other shape: whitespace,
// another field order, numbers that are not plain integers, text that is not a
// decimal, nulls, invalid UTF-8. Strings with escapes are read by encoding/json.
func fastDecodePositions(data []byte) ([]broker.Position, bool) {
	d := fastDecoder{b: data, intern: make(map[string]string)}
	if !d.lit(`{"positions":[`) {
		return nil, false
	}
	// Count the positions to allocate once: each starts with this key.
	n := countKey(data, `{"account":`)
	out := make([]broker.Position, 0, n)
	if d.lit("]}") {
		return out, d.end()
	}
	for {
		var p broker.Position
		if !d.position(&p) {
			return nil, false
		}
		out = append(out, p)
		if d.lit(",") {
			continue
		}
		if d.lit("]}") && d.end() {
			return out, true
		}
		return nil, false
	}
}

func countKey(b []byte, key string) int {
	n := 0
	for i := 0; i+len(key) <= len(b); {
		j := indexString(b[i:], key)
		if j < 0 {
			break
		}
		n++
		i += j + len(key)
	}
	return n
}

func indexString(b []byte, s string) int { return bytes.Index(b, []byte(s)) }

type fastDecoder struct {
	b      []byte
	i      int
	intern map[string]string // repeated short strings share one copy
}

func (d *fastDecoder) end() bool { return d.i == len(d.b) }

// lit consumes s if the input continues with it.
func (d *fastDecoder) lit(s string) bool {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return false
	}
	d.i += len(s)
	return true
}

// str reads a JSON string in valid UTF-8.
func (d *fastDecoder) str(intern bool) (string, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			raw := d.b[start:j]
			if !ascii && !utf8.Valid(raw) {
				return "", false
			}
			d.i = j + 1
			if len(raw) == 0 {
				return "", true
			}
			if intern {
				if s, ok := d.intern[string(raw)]; ok {
					return s, true
				}
				s := string(raw)
				if len(d.intern) < 4096 {
					d.intern[s] = s
				}
				return s, true
			}
			return string(raw), true
		case c == '\\':
			return d.escapedStr()
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// escapedStr reads a string with escapes by handing the token to encoding/json.
func (d *fastDecoder) escapedStr() (string, bool) {
	for j := d.i + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '\\':
			j++
		case c == '"':
			var s string
			if json.Unmarshal(d.b[d.i:j+1], &s) != nil {
				return "", false
			}
			d.i = j + 1
			return s, true
		}
	}
	return "", false
}

// decimal reads a string holding decimal text; "" is 0.
func (d *fastDecoder) decimal() (broker.Decimal, bool) {
	s, ok := d.str(false)
	if !ok {
		return broker.Decimal{}, false
	}
	if s == "" {
		return broker.Decimal{}, true
	}
	v, err := broker.ParseDecimal(s)
	return v, err == nil
}

// int64 reads an integer as encoding/json accepts it into an int64.
func (d *fastDecoder) int64() (int64, bool) {
	j := d.i
	if j < len(d.b) && d.b[j] == '-' {
		j++
	}
	digits := j
	for j < len(d.b) && d.b[j] >= '0' && d.b[j] <= '9' {
		j++
	}
	if j == digits || (d.b[digits] == '0' && j-digits > 1) {
		return 0, false
	}
	if j < len(d.b) && (d.b[j] == '.' || d.b[j] == 'e' || d.b[j] == 'E') {
		return 0, false
	}
	v, err := strconv.ParseInt(string(d.b[d.i:j]), 10, 64)
	if err != nil {
		return 0, false
	}
	d.i = j
	return v, true
}

// field reads `key` followed by a string into dst.
func (d *fastDecoder) field(key string, dst *string, intern bool) bool {
	if !d.lit(key) {
		return false
	}
	var ok bool
	*dst, ok = d.str(intern)
	return ok
}

// decimalField reads `key` followed by a decimal string into dst.
func (d *fastDecoder) decimalField(key string, dst *broker.Decimal) bool {
	if !d.lit(key) {
		return false
	}
	var ok bool
	*dst, ok = d.decimal()
	return ok
}

func (d *fastDecoder) position(p *broker.Position) bool {
	c := &p.Contract
	if !d.field(`{"account":`, &p.Account, true) || !d.lit(`,"contract":{"con_id":`) {
		return false
	}
	var ok bool
	if c.ConID, ok = d.int64(); !ok {
		return false
	}
	return d.field(`,"symbol":`, &c.Symbol, false) &&
		d.field(`,"sec_type":`, &c.SecType, true) &&
		d.field(`,"expiry":`, &c.Expiry, true) &&
		d.decimalField(`,"strike":`, &c.Strike) &&
		d.field(`,"right":`, &c.Right, true) &&
		d.field(`,"multiplier":`, &c.Multiplier, true) &&
		d.field(`,"exchange":`, &c.Exchange, true) &&
		d.field(`,"currency":`, &c.Currency, true) &&
		d.field(`,"local_symbol":`, &c.LocalSymbol, false) &&
		d.field(`,"trading_class":`, &c.TradingClass, true) &&
		d.decimalField(`},"quantity":`, &p.Quantity) &&
		d.decimalField(`,"avg_cost":`, &p.AvgCost) &&
		d.lit("}")
}

// encodeRequest renders a request line, newline included. A request with
// nothing but a numeric id and a command (get_accounts, get_positions, ping,
// disconnect) is written by hand, with the bytes encoding/json would produce.
func encodeRequest(req *wireRequest) ([]byte, error) {
	if req.Host == "" && req.Port == 0 && req.ClientID == 0 && !req.ReadOnly && req.Timeout == 0 &&
		len(req.Tags) == 0 && req.Protocol == 0 && !req.Events && len(req.Target) == 0 &&
		req.Contract == nil && req.Bars == nil && req.MarketDataType == "" &&
		req.Account == "" && req.Filter == nil && req.Subscription == "" && req.Order == nil && req.OrderID == 0 &&
		isUint(req.ID) && isPlain(req.Command) {
		b := make([]byte, 0, 24+len(req.ID)+len(req.Command))
		b = append(b, `{"id":`...)
		b = append(b, req.ID...)
		b = append(b, `,"command":"`...)
		b = append(b, req.Command...)
		return append(b, '"', '}', '\n'), nil
	}
	line, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}

func isUint(b []byte) bool {
	if len(b) == 0 || len(b) > 20 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isPlain reports whether s is non-empty and needs no escaping in JSON.
func isPlain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// fastRequest reads the exact shape encodeRequest writes for a request with no
// parameters, {"id":N,"command":"name"} with N a JSON integer of at most 20
// digits and name plain ASCII without escapes; for it, it gives what
// encoding/json would. It reports false, having decided nothing, for any other
// line, which parseRequest hands to encoding/json.
func fastRequest(line []byte) (wireRequest, bool) {
	const pre, mid = `{"id":`, `,"command":"`
	if !bytes.HasPrefix(line, []byte(pre)) || !bytes.HasSuffix(line, []byte(`"}`)) {
		return wireRequest{}, false
	}
	rest := line[len(pre) : len(line)-2]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 20 || (n > 1 && rest[0] == '0') || !bytes.HasPrefix(rest[n:], []byte(mid)) {
		return wireRequest{}, false
	}
	cmd := rest[n+len(mid):]
	if len(cmd) == 0 {
		return wireRequest{}, false
	}
	for _, c := range cmd {
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return wireRequest{}, false
		}
	}
	return wireRequest{ID: bytes.Clone(rest[:n]), Command: string(cmd)}, true
}

// isCanonicalUint reports whether b is a JSON integer without sign or leading
// zero, which encoding/json copies unchanged.
func isCanonicalUint(b []byte) bool {
	return isUint(b) && (len(b) == 1 || b[0] != '0')
}
