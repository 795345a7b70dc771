//go:build goexperiment.jsonv2

package stdiojson

import (
	"encoding/json"
	jsonv2 "encoding/json/v2"

	"github.com/brokerkit/brokerkit/broker"
)

// encoding/json/v2 is github.com/go-json-experiment/json as upstreamed into the
// standard library (behind GOEXPERIMENT=jsonv2 in Go 1.25 and 1.26): the
// maintained alternative docs/adr/0003 weighs the hand-written codec against,
// without adding a module dependency. Its defaults differ from encoding/json's in
// bytes (omitempty keeps zero numbers), not in the values read back.
func init() {
	benchCodecs = append(benchCodecs, benchCodec{
		name:       "json_v2",
		otherBytes: true,
		encodePositions: func(id json.RawMessage, ps []broker.Position) ([]byte, error) {
			return jsonv2.Marshal(wireResponse{ID: id, Status: statusSuccess, Data: positionsData{Positions: toWirePositions(ps)}})
		},
		decodePositions: func(data []byte) ([]broker.Position, error) {
			var d positionsData
			if err := jsonv2.Unmarshal(data, &d); err != nil {
				return nil, err
			}
			return fromWirePositions(d.Positions)
		},
		encodeRequest: func(req *wireRequest) ([]byte, error) { return jsonv2.Marshal(req) },
		decodeRequest: func(line []byte) (wireRequest, error) {
			var req wireRequest
			err := jsonv2.Unmarshal(line, &req)
			return req, err
		},
		encodeSuccessAck: func(id json.RawMessage) ([]byte, error) {
			return jsonv2.Marshal(wireResponse{ID: id, Status: statusSuccess, Data: pingData{Pong: true}})
		},
	})
}
