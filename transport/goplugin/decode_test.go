package goplugin

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

const sampleHandshake = "1|1|unix|/tmp/plugin123|grpc|MIIBszCCAVmgAwIBAgIRAK\n"

func TestFindHandshake(t *testing.T) {
	tests := []struct {
		line string
		at   int
		ok   bool
	}{
		{sampleHandshake, 0, true},
		{"1|1|tcp|127.0.0.1:1234|grpc|\n", 0, true},
		{"1|1|unix|/tmp/p|grpc|cert|true\n", 0, true},
		{"stray text " + sampleHandshake, len("stray text "), true},
		{"stray 21|" + sampleHandshake, len("stray 21|"), true},
		{"hello world\n", 0, false},
		{"1|1|unix|/tmp/p|grpc|cert", 0, false}, // no newline yet
		{"1|x|unix|/tmp/p|grpc\n", 0, false},
		{"2|1|unix|/tmp/p|grpc\n", 0, false}, // other core protocol
		{"1|1|udp|/tmp/p|grpc\n", 0, false},
	}
	for _, tt := range tests {
		at, ok := findHandshake([]byte(tt.line))
		if at != tt.at || ok != tt.ok {
			t.Errorf("findHandshake(%q) = %d, %v; want %d, %v", tt.line, at, ok, tt.at, tt.ok)
		}
	}
}

// FuzzFindHandshake: any stray prefix without a newline, followed by a handshake
// line, yields the handshake intact; no input panics.
func FuzzFindHandshake(f *testing.F) {
	f.Add("")
	f.Add("stray ")
	f.Add("1|1|")
	f.Add("\x00\xff|grpc|")
	f.Fuzz(func(t *testing.T, prefix string) {
		_, _ = findHandshake([]byte(prefix))
		if strings.ContainsRune(prefix, '\n') {
			return
		}
		line := []byte(prefix + sampleHandshake)
		at, ok := findHandshake(line)
		if !ok || at > len(prefix) {
			t.Fatalf("findHandshake(%q) = %d, %v", line, at, ok)
		}
		if got := string(line[at:]); !strings.HasSuffix(got, sampleHandshake) || !strings.HasPrefix(got, "1|") {
			t.Fatalf("handshake cut as %q", got)
		}
	})
}

func TestFilterStdout(t *testing.T) {
	var logs, real bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	in := "early print\n" + "half line, " + sampleHandshake + "late print\n" + "1|1|unix|/tmp/x|grpc|\n" + "no newline at EOF"
	filterStdout(strings.NewReader(in), &real, log)
	if real.String() != sampleHandshake {
		t.Errorf("forwarded %q, want only the first handshake %q", real.String(), sampleHandshake)
	}
	for _, s := range []string{"early print", "half line, ", "late print", "1|1|unix|/tmp/x|grpc|", "no newline at EOF"} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("log lacks stray %q:\n%s", s, logs.String())
		}
	}
}

func TestFilterStdoutLongLine(t *testing.T) {
	var logs, real bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	long := strings.Repeat("x", 3*maxStdoutLine)
	filterStdout(io.MultiReader(strings.NewReader(long+"\n"), strings.NewReader(sampleHandshake)), &real, log)
	if real.String() != sampleHandshake {
		t.Errorf("forwarded %q after a long stray line", real.String())
	}
	if n := strings.Count(logs.String(), "x"); n < len(long) {
		t.Errorf("logged %d of %d stray bytes", n, len(long))
	}
}

// FuzzPositionsFromPB: any bytes either fail to decode or decode into positions
// that re-encode to the same message; nothing panics.
func FuzzPositionsFromPB(f *testing.F) {
	seed, _ := proto.Marshal(positionsToPB(genPositions(2)))
	f.Add(seed)
	bad, _ := proto.Marshal(&pb.PositionsResponse{Positions: []*pb.Position{{Quantity: "1e3"}, {}}})
	f.Add(bad)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m pb.PositionsResponse
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		ps, err := positionsFromPB(&m)
		if err != nil {
			if !errors.Is(err, broker.ErrProtocol) {
				t.Fatalf("error %v does not match ErrProtocol", err)
			}
			return
		}
		again, err := positionsFromPB(positionsToPB(ps))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ps, again); diff != "" {
			t.Fatalf("re-encoding changed positions:\n%s", diff)
		}
	})
}

// FuzzEventFromPB: an event either decodes to a known kind or fails with ErrProtocol.
func FuzzEventFromPB(f *testing.F) {
	for _, k := range []string{"notice", "connection_lost", "connection_restored", "bogus", ""} {
		b, _ := proto.Marshal(&pb.Event{Kind: k, Code: broker.IBCodeMarketDataFarmOK, Message: "m"})
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m pb.Event
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		e, err := eventFromPB(&m)
		if err != nil {
			if !errors.Is(err, broker.ErrProtocol) {
				t.Fatalf("error %v does not match ErrProtocol", err)
			}
			return
		}
		if _, err := e.Kind.MarshalText(); err != nil {
			t.Fatalf("decoded unknown kind %v", e.Kind)
		}
	})
}

// FuzzErrorFromStatus: whatever status a peer sends, the result is a non-nil
// error with a wire code, and an Error detail decides it when present.
func FuzzErrorFromStatus(f *testing.F) {
	f.Add(uint32(codes.FailedPrecondition), "not_connected", "broker: not connected", int64(0), true)
	f.Add(uint32(codes.Unavailable), "", "transport is closing", int64(0), false)
	f.Add(uint32(codes.Unknown), "api_error", "no security definition", int64(200), true)
	f.Add(uint32(99), "bogus", "x", int64(-1), true)
	f.Fuzz(func(t *testing.T, c uint32, code, msg string, ib int64, detail bool) {
		st := status.New(codes.Code(c), msg)
		if detail {
			var err error
			if st, err = st.WithDetails(&pb.Error{Code: code, Message: msg, IbCode: ib}); err != nil {
				return // an OK status carries no details
			}
		}
		err := errorFromStatus(st.Err())
		if err == nil && st.Code() != codes.OK {
			t.Fatal("nil error from a failed status")
		}
		if detail && err != nil {
			want := broker.ErrorFromCode(code, msg, ib)
			if broker.ErrorCode(err) != broker.ErrorCode(want) || err.Error() != want.Error() {
				t.Fatalf("errorFromStatus = %v (%s), want %v (%s)", err, broker.ErrorCode(err), want, broker.ErrorCode(want))
			}
		}
	})
}

func TestErrorToStatusCodes(t *testing.T) {
	for _, code := range broker.ErrorCodes() {
		if _, ok := grpcCodes[code]; !ok {
			t.Errorf("wire code %q has no gRPC status code", code)
		}
	}
	st, _ := status.FromError(errorToStatus(broker.ErrNotConnected))
	if st.Code() != codes.FailedPrecondition {
		t.Errorf("ErrNotConnected crosses as %v", st.Code())
	}
}

func TestConnectParamsCross(t *testing.T) {
	p := broker.ConnectParams{Host: "gw", Port: 4001, ClientID: 2147483647, ReadOnly: true, Timeout: 1500 * 1e6}
	got, err := connectParamsFromPB(connectParamsToPB(p))
	if err != nil || got != p {
		t.Errorf("ConnectParams crossed as %+v, %v; want %+v", got, err, p)
	}
	if _, err := connectParamsFromPB(&pb.ConnectRequest{Port: 1 << 40}); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("huge port: %v, want ErrInvalidArgument", err)
	}
}
