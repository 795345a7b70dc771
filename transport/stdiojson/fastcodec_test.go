package stdiojson

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
)

// anyText draws strings that exercise every branch of JSON string escaping:
// HTML characters, control characters, quotes, backslashes, U+2028/2029,
// multi-byte runes and (when invalid is set) bytes that are not UTF-8.
func anyText(invalid bool) *rapid.Generator[string] {
	pieces := []string{"", "A", "AAPL", "<", ">", "&", "\"", "\\", "\n", "\t", "\b", "\f", "\r", "\x00", "\x1f",
		"\u2028", "\u2029", "é", "トヨタ", "🚀", " ", ",", "/", "\x7f"}
	if invalid {
		pieces = append(pieces, "\xff", "\xc3", "\xed\xa0\x80")
	}
	return rapid.Custom(func(t *rapid.T) string {
		n := rapid.IntRange(0, 6).Draw(t, "pieces")
		s := ""
		for range n {
			s += rapid.SampledFrom(pieces).Draw(t, "piece")
		}
		return s
	})
}

func anyDecimal() *rapid.Generator[broker.Decimal] {
	return rapid.Custom(func(t *rapid.T) broker.Decimal {
		i := rapid.Int64().Draw(t, "int")
		frac := rapid.IntRange(0, 999999).Draw(t, "frac")
		if rapid.Bool().Draw(t, "whole") {
			return broker.DecimalFromInt(i)
		}
		return broker.MustDecimal(strconv.FormatInt(i, 10) + "." + strconv.Itoa(frac))
	})
}

func anyPositions(invalid bool) *rapid.Generator[[]broker.Position] {
	text := anyText(invalid)
	pos := rapid.Custom(func(t *rapid.T) broker.Position {
		return broker.Position{
			Account: text.Draw(t, "account"),
			Contract: broker.Contract{
				ConID: rapid.Int64().Draw(t, "con_id"), Symbol: text.Draw(t, "symbol"), SecType: text.Draw(t, "sec_type"),
				Expiry: text.Draw(t, "expiry"), Strike: anyDecimal().Draw(t, "strike"), Right: text.Draw(t, "right"),
				Multiplier: text.Draw(t, "multiplier"), Exchange: text.Draw(t, "exchange"), Currency: text.Draw(t, "currency"),
				LocalSymbol: text.Draw(t, "local_symbol"), TradingClass: text.Draw(t, "trading_class"),
			},
			Quantity: anyDecimal().Draw(t, "quantity"),
			AvgCost:  anyDecimal().Draw(t, "avg_cost"),
		}
	})
	return rapid.SliceOfN(pos, 0, 8)
}

// slowDecodePositions is the encoding/json path every line used to take.
func slowDecodePositions(data []byte) ([]broker.Position, error) {
	var d positionsData
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	return fromWirePositions(d.Positions)
}

// The hand-written answer is byte for byte what encoding/json writes, so the
// wire format of PROTOCOL.md is untouched.
func TestPositionsEncodingMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ps := anyPositions(true).Draw(t, "positions")
		if rapid.Bool().Draw(t, "nil") && len(ps) == 0 {
			ps = nil
		}
		id := json.RawMessage(rapid.SampledFrom([]string{"", "7", "18446744073709551615", `"a<b"`, `"x"`, "-3"}).Draw(t, "id"))
		want, err := json.Marshal(wireResponse{ID: id, Status: statusSuccess, Data: positionsData{Positions: toWirePositions(ps)}})
		if err != nil {
			t.Fatal(err)
		}
		got := encodeResponse(id, positionsPayload(ps), nil)
		if diff := cmp.Diff(string(want)+"\n", string(got)); diff != "" {
			t.Fatalf("encodeResponse (-encoding/json +hand-written):\n%s", diff)
		}
	})
}

func TestPongEncodingMatchesEncodingJSON(t *testing.T) {
	want, _ := json.Marshal(wireResponse{ID: json.RawMessage("12"), Status: statusSuccess, Data: pingData{Pong: true}})
	if got := encodeResponse(json.RawMessage("12"), pongPayload{}, nil); string(got) != string(want)+"\n" {
		t.Fatalf("ping answer %q, want %q", got, want)
	}
}

// Whatever the fast reader accepts, encoding/json reads the same way; what it
// writes, it reads back.
func TestPositionsDecodingMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ps := anyPositions(true).Draw(t, "positions")
		data := positionsPayload(ps).appendJSON(nil)
		want, err := slowDecodePositions(data)
		if err != nil {
			t.Fatalf("encoding/json cannot read %s: %v", data, err)
		}
		var r positionsResult
		if err := r.decodeData(data); err != nil {
			t.Fatalf("decodeData: %v", err)
		}
		if diff := cmp.Diff(want, r.positions); diff != "" {
			t.Fatalf("decoded (-encoding/json +hand-written):\n%s", diff)
		}
	})
}

func TestPositionsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ps := anyPositions(false).Draw(t, "positions")
		got, ok := fastDecodePositions(positionsPayload(ps).appendJSON(nil))
		if !ok {
			t.Fatalf("fast path refused its own rendering of %v", ps)
		}
		if diff := cmp.Diff(ps, got, cmp.Comparer(func(a, b []broker.Position) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) })); diff != "" {
			t.Fatalf("round trip (-sent +received):\n%s", diff)
		}
	})
}

// Other renderings (a Python worker's spacing, field order) take the slow path
// and give the same answer.
func TestPositionsDecodingOtherShapes(t *testing.T) {
	ps := makePositions(3)
	canonical := positionsPayload(ps).appendJSON(nil)
	indented, err := json.MarshalIndent(json.RawMessage(canonical), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	reordered := []byte(`{"positions":[{"quantity":"1","avg_cost":"2.5","account":"DU1","contract":{"symbol":"A\u0042C","con_id":5}}]}`)
	for name, tc := range map[string]struct {
		data []byte
		want []broker.Position
	}{
		"indented":  {indented, ps},
		"reordered": {reordered, []broker.Position{{Account: "DU1", Contract: broker.Contract{ConID: 5, Symbol: "ABC"}, Quantity: broker.MustDecimal("1"), AvgCost: broker.MustDecimal("2.5")}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok := fastDecodePositions(tc.data); ok {
				t.Fatal("fast path accepted a non-canonical rendering")
			}
			var r positionsResult
			if err := r.decodeData(tc.data); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, r.positions); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
	var r positionsResult
	if err := r.decodeData([]byte(`{"positions":[{"quantity":"1e3"}]}`)); err == nil {
		t.Fatal("a quantity that is not a decimal was accepted")
	}
}

func TestEncodeRequestMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		req := wireRequest{
			ID:      json.RawMessage(strconv.FormatUint(rapid.Uint64().Draw(t, "id"), 10)),
			Command: rapid.SampledFrom([]string{"ping", "get_positions", "get_accounts", "disconnect", "a<b", "é"}).Draw(t, "command"),
		}
		if rapid.Bool().Draw(t, "tags") {
			req.Tags = []string{"NetLiquidation"}
		}
		want, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeRequest(&req)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want)+"\n" {
			t.Fatalf("encodeRequest = %q, want %q", got, want)
		}
	})
}

// FuzzDecodePositions: the fast reader never disagrees with encoding/json.
func FuzzDecodePositions(f *testing.F) {
	f.Add(positionsPayload(makePositions(3)).appendJSON(nil))
	f.Add([]byte(`{"positions":[]}`))
	f.Add([]byte(`{"positions":[{"account":"A","contract":{"con_id":-0,"symbol":"","sec_type":"","expiry":"","strike":"","right":"","multiplier":"","exchange":"","currency":"","local_symbol":"","trading_class":""},"quantity":"","avg_cost":"01.50"}]}`))
	f.Add([]byte(`{"positions":[{"account":"\u00e9"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := fastDecodePositions(data)
		if !ok {
			return
		}
		slow, err := slowDecodePositions(data)
		if err != nil {
			t.Fatalf("fast path accepted what encoding/json rejects (%v): %q", err, data)
		}
		if len(fast) == 0 && len(slow) == 0 {
			return
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("(-encoding/json +fast):\n%s", diff)
		}
	})
}
