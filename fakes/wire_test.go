package fakes_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The byte sequences of the protocol notes (tws-protocol.md §1).
func TestEncodingMatchesProtocolNotes(t *testing.T) {
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"scmhub handshake", fakes.EncodeHandshake(fakes.Handshake{MinVersion: 100, MaxVersion: 225}),
			"41 50 49 00 00 00 00 09 76 31 30 30 2e 2e 32 32 35"},
		{"stoqey handshake", fakes.EncodeHandshake(fakes.Handshake{MinVersion: 100, MaxVersion: 193}),
			"41 50 49 00 00 00 00 09 76 31 30 30 2e 2e 31 39 33"},
		{"server version reply", fakes.EncodeFrame("193", "20250102 15:04:05 EST"),
			"00 00 00 1a 31 39 33 00 32 30 32 35 30 31 30 32 20 31 35 3a 30 34 3a 30 35 20 45 53 54 00"},
		{"START_API client 1", fakes.EncodeFrame("71", "2", "1", ""), "00 00 00 08 37 31 00 32 00 31 00 00"},
	}
	for _, tc := range cases {
		if !bytes.Equal(tc.got, unhex(t, tc.want)) {
			t.Errorf("%s: got % x, want %s", tc.name, tc.got, tc.want)
		}
	}
}

func TestReadFrameErrors(t *testing.T) {
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"nothing", nil, io.EOF},
		{"short header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"truncated payload", []byte{0, 0, 0, 5, '4', '9', 0}, io.ErrUnexpectedEOF},
		{"empty payload", []byte{0, 0, 0, 0}, broker.ErrProtocol},
		{"unterminated field", []byte{0, 0, 0, 2, '4', '9'}, broker.ErrProtocol},
		{"too large", []byte{0x01, 0, 0, 0}, fakes.ErrFrameTooLarge},
		{"huge claim", []byte{0xff, 0xff, 0xff, 0xff, 'x'}, broker.ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := fakes.ReadFrame(bytes.NewReader(tc.input))
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame = %q, %v; want error matching %v", f, err, tc.want)
			}
		})
	}
}

func TestReadFrameMaxLenAccepted(t *testing.T) {
	big := strings.Repeat("x", fakes.MaxFrameLen-1)
	frame := fakes.EncodeFrame(big)
	f, err := fakes.ReadFrame(bytes.NewReader(frame))
	if err != nil || len(f) != 1 || f[0] != big {
		t.Fatalf("ReadFrame of a MaxFrameLen payload: %d fields, %v", len(f), err)
	}
	if _, err := fakes.AppendFrame(nil, big+"x"); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Fatalf("AppendFrame over MaxFrameLen: %v, want ErrInvalidArgument", err)
	}
}

func TestAppendFrameRejects(t *testing.T) {
	for name, fields := range map[string][]string{"no fields": nil, "NUL inside": {"4", "a\x00b"}} {
		if _, err := fakes.AppendFrame(nil, fields...); !errors.Is(err, broker.ErrInvalidArgument) {
			t.Errorf("%s: AppendFrame error %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestFrameRoundTripProperty(t *testing.T) {
	// Any bytes but NUL, invalid UTF-8 included.
	field := rapid.Map(rapid.SliceOfN(rapid.Byte(), 0, 40), func(b []byte) string {
		return strings.ReplaceAll(string(b), "\x00", "\x01")
	})
	rapid.Check(t, func(t *rapid.T) {
		var stream []byte
		var want [][]string
		for range rapid.IntRange(1, 5).Draw(t, "frames") {
			fs := rapid.SliceOfN(field, 1, 8).Draw(t, "fields")
			stream = append(stream, fakes.EncodeFrame(fs...)...)
			want = append(want, fs)
		}
		r := bytes.NewReader(stream)
		for i, w := range want {
			got, err := fakes.ReadFrame(r)
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if diff := cmp.Diff(w, got); diff != "" {
				t.Fatalf("frame %d (-want +got):\n%s", i, diff)
			}
		}
		if _, err := fakes.ReadFrame(r); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
	})
}

func TestParseHandshake(t *testing.T) {
	ok := []struct {
		in   string
		want fakes.Handshake
	}{
		{"v100..225", fakes.Handshake{MinVersion: 100, MaxVersion: 225}},
		{"v100..193", fakes.Handshake{MinVersion: 100, MaxVersion: 193}},
		{"v100..225 +PACEAPI", fakes.Handshake{MinVersion: 100, MaxVersion: 225, Options: "+PACEAPI"}},
		{"v150", fakes.Handshake{MinVersion: 150, MaxVersion: 150}},
		{"v0100..0193", fakes.Handshake{MinVersion: 100, MaxVersion: 193}},
	}
	for _, tc := range ok {
		got, err := fakes.ParseHandshake(tc.in)
		if err != nil {
			t.Errorf("ParseHandshake(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseHandshake(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, in := range []string{"", "100..225", "v", "v..225", "v100..", "v225..100", "vabc", "v-1..5",
		"v1234567890..1234567891", "v100...225", "v100..225x"} {
		if h, err := fakes.ParseHandshake(in); !errors.Is(err, broker.ErrProtocol) {
			t.Errorf("ParseHandshake(%q) = %+v, %v; want ErrProtocol", in, h, err)
		}
	}
}

func TestReadHandshakeErrors(t *testing.T) {
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"no API prefix", []byte("GET / HTTP/1.1\r\n"), broker.ErrProtocol},
		{"raw frame without handshake", fakes.EncodeFrame("49", "1"), broker.ErrProtocol},
		{"empty", nil, io.EOF},
		{"prefix only", []byte("API\x00"), io.ErrUnexpectedEOF},
		{"short string", append([]byte("API\x00\x00\x00\x00\x09"), "v100"...), io.ErrUnexpectedEOF},
		{"oversized", []byte("API\x00\x7f\x00\x00\x00"), broker.ErrProtocol},
	}
	for _, tc := range cases {
		if h, err := fakes.ReadHandshake(bytes.NewReader(tc.input)); !errors.Is(err, tc.want) {
			t.Errorf("%s: ReadHandshake = %+v, %v; want %v", tc.name, h, err, tc.want)
		}
	}
}

// FuzzReadFrame: any bytes either decode into fields whose canonical encoding
// is exactly the bytes consumed, or give an error; never a panic.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(fakes.EncodeFrame("49", "1"))
	f.Add(fakes.EncodeFrame("71", "2", "1", ""))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 2, '4', '9'})
	f.Add([]byte{0x01, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(append(fakes.EncodeFrame("62", "1", "9", "All", "NetLiquidation"), fakes.EncodeFrame("64", "1")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			before := r.Len()
			fields, err := fakes.ReadFrame(r)
			if err != nil {
				return
			}
			consumed := data[len(data)-before : len(data)-r.Len()]
			if re := fakes.EncodeFrame(fields...); !bytes.Equal(re, consumed) {
				t.Fatalf("re-encoding %q gives % x, consumed % x", fields, re, consumed)
			}
		}
	})
}

// FuzzHandshake: any bytes either parse into a Handshake whose encoding parses
// back to the same value, or give an error; never a panic.
func FuzzHandshake(f *testing.F) {
	f.Add(fakes.EncodeHandshake(fakes.Handshake{MinVersion: 100, MaxVersion: 225}))
	f.Add(fakes.EncodeHandshake(fakes.Handshake{MinVersion: 100, MaxVersion: 193, Options: "+PACEAPI"}))
	f.Add([]byte("API\x00\x00\x00\x00\x04v150"))
	f.Add([]byte("API\x00\xff\xff\xff\xff"))
	f.Add([]byte("API\x00"))
	f.Add([]byte("GET / HTTP/1.1"))
	f.Add(fakes.EncodeFrame("71", "2", "1", ""))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := fakes.ReadHandshake(bytes.NewReader(data))
		if err != nil {
			return
		}
		if h.MinVersion > h.MaxVersion || h.MinVersion < 0 {
			t.Fatalf("accepted inconsistent range %+v", h)
		}
		again, err := fakes.ReadHandshake(bytes.NewReader(fakes.EncodeHandshake(h)))
		if err != nil {
			t.Fatalf("re-reading %+v: %v", h, err)
		}
		if diff := cmp.Diff(h, again); diff != "" {
			t.Fatalf("round trip (-first +again):\n%s", diff)
		}
	})
}

func BenchmarkReadFrame(b *testing.B) {
	frame := fakes.EncodeFrame("61", "3", "DU1234567", "265598", "AAPL", "STK", "", "0", "", "", "NASDAQ", "USD", "AAPL", "NMS", "100", "150.25")
	r := bytes.NewReader(frame)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(frame)
		if _, err := fakes.ReadFrame(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeFrame(b *testing.B) {
	fields := []string{"61", "3", "DU1234567", "265598", "AAPL", "STK", "", "0", "", "", "NASDAQ", "USD", "AAPL", "NMS", "100", "150.25"}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = fakes.AppendFrame(buf[:0], fields...)
	}
}

func TestNoticeText(t *testing.T) {
	want := map[int64]string{
		326:  "Unable to connect as the client id is already in use. Retry with a unique client id.",
		1100: "Connectivity between IB and Trader Workstation has been lost.",
		1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
		1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
		2104: "Market data farm connection is OK:usfarm",
		2106: "HMDS data farm connection is OK:ushmds",
		2158: "Sec-def data farm connection is OK:secdefnj",
		2110: "fake gateway notice 2110",
	}
	for code, text := range want {
		if got := fakes.NoticeText(code); got != text {
			t.Errorf("NoticeText(%d) = %q, want %q", code, got, text)
		}
	}
}
