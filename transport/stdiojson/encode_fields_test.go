package stdiojson

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
)

// TestEncodeRequestKeepsEveryField: the hand-written fast path of
// encodeRequest never drops a parameter. Every field of wireRequest, set alone
// on a request with a numeric id, survives encoding and decoding (a field added
// to wireRequest without its check in encodeRequest fails here).
func TestEncodeRequestKeepsEveryField(t *testing.T) {
	samples := map[reflect.Kind]any{reflect.String: "x", reflect.Int: 7, reflect.Int64: int64(7), reflect.Bool: true,
		reflect.Float64: 1.5}
	typ := reflect.TypeFor[wireRequest]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "ID" || f.Name == "Command" {
			continue
		}
		req := wireRequest{ID: json.RawMessage("3"), Command: "get_executions"}
		v := reflect.ValueOf(&req).Elem().Field(i)
		switch {
		case f.Type == reflect.TypeFor[json.RawMessage]():
			v.Set(reflect.ValueOf(json.RawMessage(`"t"`)))
		case f.Type == reflect.TypeFor[[]string]():
			v.Set(reflect.ValueOf([]string{"NetLiquidation"}))
		case f.Type == reflect.TypeFor[*broker.ExecutionFilter]():
			v.Set(reflect.ValueOf(&broker.ExecutionFilter{Symbol: "SPY"}))
		case f.Type == reflect.TypeFor[*wireContract]():
			v.Set(reflect.ValueOf(&wireContract{ConID: 265598, Symbol: "AAPL", Strike: "0"}))
		case f.Type == reflect.TypeFor[*broker.OrderRequest]():
			v.Set(reflect.ValueOf(&broker.OrderRequest{Key: "k", Contract: broker.Contract{Symbol: "AAPL"}, Action: "BUY",
				Quantity: broker.MustDecimal("1.5"), OrderType: "MKT"}))
		case f.Type == reflect.TypeFor[*wireBarsRequest]():
			v.Set(reflect.ValueOf(&wireBarsRequest{Duration: "1 D", BarSize: "5 mins"}))
		case samples[f.Type.Kind()] != nil:
			v.Set(reflect.ValueOf(samples[f.Type.Kind()]).Convert(f.Type))
		default:
			t.Fatalf("field %s has a type (%v) this test cannot fill: extend it", f.Name, f.Type)
		}
		line, err := encodeRequest(&req)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		got, err := parseRequest(line[:len(line)-1])
		if err != nil {
			t.Fatalf("%s: %s: %v", f.Name, line, err)
		}
		if !reflect.DeepEqual(reflect.ValueOf(got).Field(i).Interface(), v.Interface()) {
			t.Errorf("field %s lost in %s", f.Name, line)
		}
	}
}
