package fakes

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
)

// FuzzDecodeRequest: whatever a client sends after the handshake, at any
// version, decodeRequest returns fields (the id first) or an error matching
// broker.ErrProtocol, and never panics; a text request decodes the same with
// a raw id from 201 as with a text id below it.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(201, []byte{0, 0, 0, 61, '1', 0})
	f.Add(225, []byte{0, 0, 1, 15, 0x08, 0x07})            // START_API as protobuf, clientId 7
	f.Add(225, []byte{0, 0, 1, 6, 0x08, 0x01, 0x12, 0x01}) // truncated AccountDataRequest
	f.Add(193, []byte("62\x001\x009\x00All\x00NetLiquidation\x00"))
	f.Add(207, []byte{0, 0, 1, 0x0a, 0xff})
	f.Fuzz(func(t *testing.T, v int, payload []byte) {
		v = MinServerVersion + (v%(MaxServerVersion-MinServerVersion+1)+(MaxServerVersion-MinServerVersion+1))%(MaxServerVersion-MinServerVersion+1)
		fields, _, err := decodeRequest(v, payload)
		if err != nil {
			if !errors.Is(err, broker.ErrProtocol) {
				t.Fatalf("error %v does not match ErrProtocol", err)
			}
			return
		}
		if len(fields) == 0 {
			t.Fatal("no fields and no error")
		}
		if v >= VersionRawIDs || len(payload) == 0 || payload[len(payload)-1] != 0 {
			return
		}
		// The same text request with a raw id at 201 decodes to the same fields.
		id, ok := parseID(fields[0])
		if !ok {
			return
		}
		rest := payload[len(fields[0])+1:]
		bin := append(binary.BigEndian.AppendUint32(nil, uint32(id)), rest...)
		got, isProto, err := decodeRequest(VersionRawIDs, bin)
		if err != nil || isProto || !slices.Equal(got, fields) {
			t.Fatalf("at 201: %q, %v, %v; want %q as text", got, isProto, err, fields)
		}
	})
}

// parseID reads a text message id the way the raw form can carry it.
func parseID(s string) (int, bool) {
	if s == "" || len(s) > 3 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n < protobufIDOffset && itoa(n) == s
}

// TestEncodeMessageErrors: what cannot be encoded at a version is an error
// matching broker.ErrInvalidArgument, never a frame a client would misread.
func TestEncodeMessageErrors(t *testing.T) {
	for _, c := range []struct {
		v      int
		fields []string
	}{
		{193, nil},
		{193, []string{"49", "a\x00b"}},
		{201, nil},
		{201, []string{"not-an-id", "1"}},
		{201, []string{"200", "1"}},
		{201, []string{"-1"}},
		{225, []string{"49", "1", "x\x00"}},
	} {
		if b, err := encodeMessage(c.v, c.fields, false); !errors.Is(err, broker.ErrInvalidArgument) {
			t.Errorf("encodeMessage(%d, %q) = % x, %v; want ErrInvalidArgument", c.v, c.fields, b, err)
		}
	}
}
