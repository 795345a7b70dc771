package fakes

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes/internal/twspb"
)

// SessionFormat names the recording format (docs/adr/0009).
const SessionFormat = "brokerkit-tws-session/1"

// Session is a recording of TWS API connections: every frame both ways, with
// its time from the connection's start. Record writes one with a Recorder;
// Replayer serves one. It loads from and saves to JSON (LoadSession, Save).
type Session struct {
	Format      string        `json:"format"`             // SessionFormat
	Upstream    string        `json:"upstream,omitempty"` // the gateway recorded, "host:port"
	Redacted    bool          `json:"redacted,omitempty"` // account ids were replaced
	Connections []SessionConn `json:"connections"`
}

// SessionConn is one recorded TCP connection.
type SessionConn struct {
	// Handshake is the client's version string, "v100..225 +PACEAPI".
	Handshake string `json:"handshake"`
	// Frames are the frames after the client's handshake, in the order the
	// proxy saw them: the server's handshake reply first.
	Frames []Frame `json:"frames"`
	// ClosedBy says who ended the connection: "client", "server" or "" (the
	// recorder was closed first).
	ClosedBy string `json:"closed_by,omitempty"`
	// ClosedAt is when the connection ended, from its start.
	ClosedAt Duration `json:"closed_at,omitzero"`
}

// Frame directions.
const (
	FromClient = "client"
	FromServer = "server"
)

// Frame is one framed message. A text frame (every frame below server version
// 201) is stored as Fields; any other payload (binary message ids, protobuf)
// as Raw. Payload returns the exact bytes either way.
type Frame struct {
	From   string   `json:"from"` // FromClient or FromServer
	At     Duration `json:"at"`   // since the connection was accepted
	Fields []string `json:"fields,omitempty"`
	Raw    []byte   `json:"raw,omitempty"` // base64 in JSON
}

// Duration is a time.Duration that is a Go duration string in JSON ("1.5ms").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// newFrame stores payload as fields when it is text with a text message id
// (below server version 201, and every handshake reply), else as raw bytes.
func newFrame(from string, at time.Duration, payload []byte) Frame {
	f := Frame{From: from, At: Duration(at)}
	if fields, err := splitFields(payload); err == nil && utf8.Valid(payload) && fields[0] != "" && allDigits(fields[0]) {
		f.Fields = fields
	} else {
		f.Raw = bytes.Clone(payload)
	}
	return f
}

// Payload returns the frame's payload bytes (without the length prefix).
func (f Frame) Payload() []byte {
	if f.Fields == nil {
		return f.Raw
	}
	b, _ := AppendFrame(nil, f.Fields...)
	return b[4:]
}

// Bytes returns the whole frame as sent on the wire.
func (f Frame) Bytes() []byte {
	p := f.Payload()
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
}

// ID returns the frame's message id: its first text field, or the raw 4-byte id
// of a binary frame; "" if it has none.
func (f Frame) ID() string {
	if f.Fields != nil {
		return f.Fields[0]
	}
	if len(f.Raw) >= 4 {
		return strconv.FormatUint(uint64(binary.BigEndian.Uint32(f.Raw)), 10)
	}
	return ""
}

// LoadSession reads a recording written by Save. A file that is not JSON of
// SessionFormat, or holds a frame with neither fields nor raw bytes, is an
// error wrapping broker.ErrInvalidArgument.
func LoadSession(path string) (Session, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Session{}, fmt.Errorf("fakes: load session: %w", err)
	}
	s, err := ParseSession(b)
	if err != nil {
		return Session{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseSession parses a recording (see LoadSession).
func ParseSession(b []byte) (Session, error) {
	var s Session
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Session{}, fmt.Errorf("%w: session: %v", broker.ErrInvalidArgument, err)
	}
	if s.Format != SessionFormat {
		return Session{}, fmt.Errorf("%w: session: format %q, want %q", broker.ErrInvalidArgument, s.Format, SessionFormat)
	}
	for i, c := range s.Connections {
		if _, err := ParseHandshake(c.Handshake); err != nil {
			return Session{}, fmt.Errorf("%w: session: connection %d: %v", broker.ErrInvalidArgument, i, err)
		}
		for j, f := range c.Frames {
			_, ferr := AppendFrame(nil, f.Fields...)
			if (f.From != FromClient && f.From != FromServer) || (f.Fields == nil && len(f.Raw) == 0) ||
				(f.Fields != nil && ferr != nil) {
				return Session{}, fmt.Errorf("%w: session: connection %d frame %d: bad direction or payload",
					broker.ErrInvalidArgument, i, j)
			}
		}
	}
	return s, nil
}

// Save writes s to path as JSON with one frame per line.
func (s Session) Save(path string) error {
	var buf bytes.Buffer
	head, err := json.Marshal(Session{Format: s.Format, Upstream: s.Upstream, Redacted: s.Redacted})
	if err != nil {
		return fmt.Errorf("fakes: save session: %w", err)
	}
	buf.Write(head[:bytes.LastIndex(head, []byte(`"connections"`))])
	buf.WriteString("\"connections\": [")
	for i, c := range s.Connections {
		if i > 0 {
			buf.WriteString(",")
		}
		h, _ := json.Marshal(c.Handshake)
		fmt.Fprintf(&buf, "\n  {\"handshake\": %s, \"frames\": [", h)
		for j, f := range c.Frames {
			b, err := json.Marshal(f)
			if err != nil {
				return fmt.Errorf("fakes: save session: %w", err)
			}
			if j > 0 {
				buf.WriteString(",")
			}
			buf.WriteString("\n    ")
			buf.Write(b)
		}
		buf.WriteString("\n  ]")
		if c.ClosedBy != "" {
			cb, _ := json.Marshal(c.ClosedBy)
			ca, _ := json.Marshal(c.ClosedAt)
			fmt.Fprintf(&buf, ", \"closed_by\": %s, \"closed_at\": %s", cb, ca)
		}
		buf.WriteString("}")
	}
	buf.WriteString("\n]}\n")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("fakes: save session: %w", err)
	}
	return nil
}

// Redact returns a copy of s with every account id the server announced in
// MANAGED_ACCTS (text, or protobuf from server version 207) replaced, wherever it appears in a text frame or in the bytes
// of a raw frame, by a placeholder of the same length that keeps the first two
// characters ("DU1234567" becomes "DU0000001"), so lengths inside binary
// payloads stay valid.
func (s Session) Redact() Session {
	var accounts []string
	seen := map[string]bool{}
	for _, c := range s.Connections {
		for _, f := range c.Frames {
			if f.From != FromServer {
				continue
			}
			list := ""
			switch {
			case f.ID() == itoa(outManagedAccts) && len(f.Fields) >= 3:
				list = f.Fields[2]
			case f.ID() == itoa(outManagedAccts+protobufIDOffset):
				var m twspb.ManagedAccounts
				if proto.Unmarshal(f.Raw[4:], &m) == nil {
					list = m.GetAccountsList()
				}
			}
			if list != "" {
				for a := range strings.SplitSeq(list, ",") {
					if a = strings.TrimSpace(a); a != "" && !seen[a] {
						seen[a] = true
						accounts = append(accounts, a)
					}
				}
			}
		}
	}
	var pairs []string
	for i, a := range accounts {
		pairs = append(pairs, a, placeholder(a, i+1))
	}
	r := strings.NewReplacer(pairs...)
	out := s
	out.Redacted = true
	out.Connections = make([]SessionConn, len(s.Connections))
	for i, c := range s.Connections {
		c.Frames = append([]Frame(nil), c.Frames...)
		for j, f := range c.Frames {
			if f.Fields != nil {
				fs := make([]string, len(f.Fields))
				for k, x := range f.Fields {
					fs[k] = r.Replace(x)
				}
				f.Fields = fs
			} else {
				f.Raw = []byte(r.Replace(string(f.Raw)))
			}
			c.Frames[j] = f
		}
		out.Connections[i] = c
	}
	return out
}

// placeholder returns the n-th redacted account id for a, as long as a.
func placeholder(a string, n int) string {
	keep := min(2, len(a)-1)
	if keep < 0 {
		keep = 0
	}
	num := strconv.Itoa(n)
	width := len(a) - keep
	if len(num) > width {
		num = num[len(num)-width:]
	}
	return a[:keep] + strings.Repeat("0", width-len(num)) + num
}
