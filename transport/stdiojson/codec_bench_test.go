package stdiojson

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
)

// The benchmarks below are the evidence docs/adr/0003 asks of the hand-written
// codec (fastcodec.go): for each message it handles, the same bytes are encoded
// and decoded by it and by every other codec registered in benchCodecs
// (encoding/json here; encoding/json/v2, the upstreamed go-json-experiment/json,
// in codec_jsonv2_bench_test.go when built with GOEXPERIMENT=jsonv2). Run them
// with
//
//	go test -run '^$' -bench Codec -benchmem ./transport/stdiojson/
//	GOEXPERIMENT=jsonv2 go test -run '^$' -bench Codec -benchmem ./transport/stdiojson/

// benchCodec is one way of rendering and reading the protocol's hot messages.
type benchCodec struct {
	name             string
	otherBytes       bool // renders the same values in other bytes (key order, omitted fields)
	encodePositions  func(id json.RawMessage, ps []broker.Position) ([]byte, error)
	decodePositions  func(data []byte) ([]broker.Position, error)
	encodeRequest    func(req *wireRequest) ([]byte, error)
	decodeRequest    func(line []byte) (wireRequest, error)
	encodeSuccessAck func(id json.RawMessage) ([]byte, error) // the answer to ping
}

var benchCodecs = []benchCodec{
	{
		name: "fastcodec",
		encodePositions: func(id json.RawMessage, ps []broker.Position) ([]byte, error) {
			b, _ := encodeSuccess(id, positionsPayload(ps))
			return b, nil
		},
		decodePositions: func(data []byte) ([]broker.Position, error) {
			ps, ok := fastDecodePositions(data)
			if !ok {
				return nil, fmt.Errorf("fast path refused the line")
			}
			return ps, nil
		},
		encodeRequest: encodeRequest,
		decodeRequest: func(line []byte) (wireRequest, error) {
			req, ok := fastRequest(line)
			if !ok {
				return wireRequest{}, fmt.Errorf("fast path refused the line")
			}
			return req, nil
		},
		encodeSuccessAck: func(id json.RawMessage) ([]byte, error) {
			b, _ := encodeSuccess(id, pongPayload{})
			return b, nil
		},
	},
	{
		name: "encoding_json",
		encodePositions: func(id json.RawMessage, ps []broker.Position) ([]byte, error) {
			return json.Marshal(wireResponse{ID: id, Status: statusSuccess, Data: positionsData{Positions: toWirePositions(ps)}})
		},
		decodePositions: slowDecodePositions,
		encodeRequest:   func(req *wireRequest) ([]byte, error) { return json.Marshal(req) },
		decodeRequest: func(line []byte) (wireRequest, error) {
			var req wireRequest
			err := json.Unmarshal(line, &req)
			return req, err
		},
		encodeSuccessAck: func(id json.RawMessage) ([]byte, error) {
			return json.Marshal(wireResponse{ID: id, Status: statusSuccess, Data: pingData{Pong: true}})
		},
	},
}

// benchPositions is an answer of n positions shaped like a real account's.
func benchPositions(n int) []broker.Position {
	ps := make([]broker.Position, n)
	for i := range ps {
		ps[i] = broker.Position{
			Account: fmt.Sprintf("DU%07d", i%3),
			Contract: broker.Contract{
				ConID: int64(265598 + i), Symbol: fmt.Sprintf("SYM%d", i), SecType: "STK",
				Exchange: "SMART", Currency: "USD", LocalSymbol: fmt.Sprintf("SYM%d", i),
			},
			Quantity: mustDecimal(fmt.Sprintf("%d.5", 100+i)),
			AvgCost:  mustDecimal(fmt.Sprintf("%d.125", 10+i%500)),
		}
	}
	return ps
}

func mustDecimal(s string) broker.Decimal {
	d, err := broker.ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// TestBenchCodecsAgree keeps the benchmark honest: every codec renders and reads
// the same messages to the same values, so the figures compare equal work.
func TestBenchCodecsAgree(t *testing.T) {
	ps := benchPositions(50)
	id := json.RawMessage("42")
	req := &wireRequest{ID: id, Command: string(broker.OpPositions)}
	var wantLine, wantReq []byte
	for i, c := range benchCodecs {
		line, err := c.encodePositions(id, ps)
		if err != nil {
			t.Fatalf("%s: encode positions: %v", c.name, err)
		}
		line = trimEOL(line)
		var in wireInbound // encoding/json: the host's fast path takes only the canonical shape
		if err := json.Unmarshal(line, &in); err != nil {
			t.Fatalf("%s: its positions line does not parse: %v", c.name, err)
		}
		got, err := c.decodePositions(in.Data)
		if err != nil {
			t.Fatalf("%s: decode positions: %v", c.name, err)
		}
		if len(got) != len(ps) || got[7].Quantity.String() != ps[7].Quantity.String() || got[7].Contract != ps[7].Contract {
			t.Fatalf("%s: positions do not round-trip: got %d, [7] = %+v", c.name, len(got), got[7])
		}
		rl, err := c.encodeRequest(req)
		if err != nil {
			t.Fatalf("%s: encode request: %v", c.name, err)
		}
		rl = trimEOL(rl)
		r, err := c.decodeRequest(rl)
		if err != nil || r.Command != req.Command || string(r.ID) != string(id) {
			t.Fatalf("%s: request does not round-trip: %+v, %v", c.name, r, err)
		}
		if i == 0 {
			wantLine, wantReq = line, rl
			continue
		}
		if c.otherBytes {
			continue
		}
		if string(line) != string(wantLine) {
			t.Errorf("%s renders positions differently from %s", c.name, benchCodecs[0].name)
		}
		if string(rl) != string(wantReq) {
			t.Errorf("%s renders the request %s, %s renders %s", c.name, rl, benchCodecs[0].name, wantReq)
		}
	}
}

func BenchmarkCodecPositions(b *testing.B) {
	for _, n := range []int{10, 1000} {
		ps := benchPositions(n)
		id := json.RawMessage("42")
		line, _ := encodeSuccess(id, positionsPayload(ps))
		in, err := parseInbound(trimEOL(line))
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range benchCodecs {
			b.Run(fmt.Sprintf("encode/n=%d/%s", n, c.name), func(b *testing.B) {
				b.SetBytes(int64(len(line)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.encodePositions(id, ps); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("decode/n=%d/%s", n, c.name), func(b *testing.B) {
				b.SetBytes(int64(len(in.Data)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.decodePositions(in.Data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkCodecRequest(b *testing.B) {
	req := &wireRequest{ID: json.RawMessage("123456"), Command: string(broker.OpPing)}
	line, _ := encodeRequest(req)
	line = trimEOL(line)
	id := json.RawMessage("123456")
	for _, c := range benchCodecs {
		b.Run("encode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.encodeRequest(req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.decodeRequest(line); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("pong/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.encodeSuccessAck(id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
