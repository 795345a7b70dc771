package fakes_test

import (
	"encoding/binary"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scmhub/ibapi/protobuf"
	"google.golang.org/protobuf/proto"

	"github.com/brokerkit/brokerkit/fakes"
)

// binMsg is one message of the protocol from version 201: a raw id and either
// text fields or a protobuf body (id ≥ 200).
type binMsg struct {
	id     int
	fields []string // text messages: the fields after the id
	body   []byte   // protobuf messages
}

// readBin reads one frame of the protocol from version 201.
func (c *rawClient) readBin() binMsg {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(hangLimit))
	var hdr [4]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	p := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c.br, p); err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	if len(p) < 4 {
		c.t.Fatalf("frame %q has no raw id", p)
	}
	m := binMsg{id: int(binary.BigEndian.Uint32(p))}
	if m.id >= 200 {
		m.body = p[4:]
		return m
	}
	if rest := p[4:]; len(rest) > 0 {
		if rest[len(rest)-1] != 0 {
			c.t.Fatalf("text message %d does not end with NUL: %q", m.id, rest)
		}
		m.fields = strings.Split(string(rest[:len(rest)-1]), "\x00")
	}
	return m
}

// sendBin sends a text message with a raw id, or a protobuf one (id+200).
func (c *rawClient) sendBin(id int, m proto.Message, fields ...string) {
	c.t.Helper()
	p := binary.BigEndian.AppendUint32(nil, uint32(id))
	if m != nil {
		binary.BigEndian.PutUint32(p, uint32(id+200))
		b, err := proto.Marshal(m)
		if err != nil {
			c.t.Fatal(err)
		}
		p = append(p, b...)
	}
	for _, f := range fields {
		p = append(append(p, f...), 0)
	}
	c.write(append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...))
}

// unmarshalAs decodes a protobuf message with scmhub's generated types (not the
// fake's own) and fails unless it came under id+200.
func unmarshalAs[M proto.Message](t *testing.T, m binMsg, id int, into M) M {
	t.Helper()
	if m.id != id+200 {
		t.Fatalf("message id %d (fields %q), want protobuf %d", m.id, m.fields, id+200)
	}
	if err := proto.Unmarshal(m.body, into); err != nil {
		t.Fatalf("message %d: %v", id, err)
	}
	return into
}

func wantText(t *testing.T, m binMsg, id int, fields ...string) {
	t.Helper()
	if m.id != id {
		t.Fatalf("message id %d, want text %d", m.id, id)
	}
	if fields != nil {
		if diff := cmp.Diff(fields, m.fields); diff != "" {
			t.Fatalf("message %d (-want +got):\n%s", id, diff)
		}
	}
}

// TestWireFormsByVersion checks the bytes a client sees at each version of the
// binary protocol, decoding protobuf bodies with scmhub's generated types: raw
// ids from 201, ERR_MSG as protobuf from 201, accounts, positions and summary
// from 207, START_API, NEXT_VALID_ID and CURRENT_TIME from 213; and that the
// gateway understands requests in the form of each version.
func TestWireFormsByVersion(t *testing.T) {
	for _, v := range []int{201, 206, 207, 212, 213, 225} {
		t.Run(strconv.Itoa(v), func(t *testing.T) {
			s := fakes.DefaultScript()
			s.ServerVersion = v
			g := startGateway(t, s)
			c := dialRaw(t, g)
			if got := c.hello(fakes.Handshake{MinVersion: 100, MaxVersion: 225}); got[0] != strconv.Itoa(v) {
				t.Fatalf("handshake reply %q, want version %d as text", got, v)
			}
			accounts := strings.Join(s.Accounts, ",")
			rest3, accts := v >= 213, v >= 207
			if rest3 {
				c.sendBin(71, &protobuf.StartApiRequest{ClientId: proto.Int32(42), OptionalCapabilities: proto.String("")})
			} else {
				c.sendBin(71, nil, "2", "42", "")
			}
			if m := c.readBin(); accts {
				if got := unmarshalAs(t, m, 15, &protobuf.ManagedAccounts{}).GetAccountsList(); got != accounts {
					t.Fatalf("accounts %q", got)
				}
			} else {
				wantText(t, m, 15, "1", accounts)
			}
			if m := c.readBin(); rest3 {
				if got := unmarshalAs(t, m, 9, &protobuf.NextValidId{}); got.GetOrderId() != 1 {
					t.Fatalf("next valid id %v", got)
				}
			} else {
				wantText(t, m, 9, "1", "1")
			}
			for _, code := range []int32{fakes.CodeMarketDataFarmOK, fakes.CodeHistDataFarmOK, fakes.CodeSecDefDataFarmOK} {
				e := unmarshalAs(t, c.readBin(), 4, &protobuf.ErrorMessage{})
				if e.GetId() != -1 || e.GetErrorCode() != code || e.GetErrorMsg() != fakes.NoticeText(int64(code)) ||
					e.GetErrorTime() <= 0 {
					t.Fatalf("farm notice %v, want id -1, code %d, a time", e, code)
				}
			}

			// Positions: the quantity travels as exact text, the cost as a double.
			if accts {
				c.sendBin(61, &protobuf.PositionsRequest{})
			} else {
				c.sendBin(61, nil, "1")
			}
			for _, p := range s.Positions {
				m := c.readBin()
				if !accts {
					wantText(t, m, 61)
					if m.fields[13] != p.Quantity.String() {
						t.Fatalf("position fields %q", m.fields)
					}
					continue
				}
				got := unmarshalAs(t, m, 61, &protobuf.Position{})
				k := got.GetContract()
				if got.GetAccount() != p.Account || got.GetPosition() != p.Quantity.String() ||
					got.GetAvgCost() != p.AvgCost.Float64() || int64(k.GetConId()) != p.Contract.ConID ||
					k.GetSymbol() != p.Contract.Symbol || k.GetLocalSymbol() != p.Contract.LocalSymbol ||
					k.GetLastTradeDateOrContractMonth() != p.Contract.Expiry || k.GetStrike() != p.Contract.Strike.Float64() {
					t.Fatalf("position %v, want %+v", got, p)
				}
			}
			if m := c.readBin(); accts {
				unmarshalAs(t, m, 62, &protobuf.PositionEnd{})
			} else {
				wantText(t, m, 62, "1")
			}

			if accts {
				c.sendBin(62, &protobuf.AccountSummaryRequest{ReqId: proto.Int32(5), Group: proto.String("All"),
					Tags: proto.String("NetLiquidation")})
			} else {
				c.sendBin(62, nil, "1", "5", "All", "NetLiquidation")
			}
			for _, a := range s.Summary {
				m := c.readBin()
				nl := a.Values["NetLiquidation"]
				if !accts {
					wantText(t, m, 63, "1", "5", a.Account, "NetLiquidation", nl.Value, nl.Currency)
					continue
				}
				got := unmarshalAs(t, m, 63, &protobuf.AccountSummary{})
				if got.GetReqId() != 5 || got.GetAccount() != a.Account || got.GetTag() != "NetLiquidation" ||
					got.GetValue() != nl.Value || got.GetCurrency() != nl.Currency {
					t.Fatalf("summary row %v", got)
				}
			}
			if m := c.readBin(); accts {
				if got := unmarshalAs(t, m, 64, &protobuf.AccountSummaryEnd{}); got.GetReqId() != 5 {
					t.Fatalf("summary end %v", got)
				}
			} else {
				wantText(t, m, 64, "1", "5")
			}

			if rest3 {
				c.sendBin(49, &protobuf.CurrentTimeRequest{})
				if got := unmarshalAs(t, c.readBin(), 49, &protobuf.CurrentTime{}); got.GetCurrentTime() < time.Now().Unix()-60 {
					t.Fatalf("current time %v", got)
				}
			} else {
				c.sendBin(49, nil, "1")
				if m := c.readBin(); m.id != 49 || len(m.fields) != 2 {
					t.Fatalf("current time %+v", m)
				}
			}

			// SendRaw keeps the text form with a raw id.
			if n := g.SendRaw("49", "1", "12345"); n != 1 {
				t.Fatalf("SendRaw reached %d", n)
			}
			wantText(t, c.readBin(), 49, "1", "12345")

			rec := lastConn(t, g)
			var got []bool
			for _, r := range rec.Requests {
				got = append(got, r.Protobuf)
			}
			if diff := cmp.Diff([]bool{rest3, accts, accts, rest3}, got); diff != "" {
				t.Fatalf("recorded protobuf flags (-want +got):\n%s", diff)
			}
			if rec.ClientID != 42 || rec.Requests[2].Fields[2] != "5" {
				t.Fatalf("record %+v", rec)
			}
		})
	}
}

// TestWireMalformedProtobufRequest: a protobuf body that does not parse is a
// protocol error that closes that connection, recorded as such.
func TestWireMalformedProtobufRequest(t *testing.T) {
	g := startGateway(t, fakes.Script{})
	c := dialRaw(t, g)
	c.hello(fakes.Handshake{MinVersion: 100, MaxVersion: 225})
	p := append(binary.BigEndian.AppendUint32(nil, 71+200), 0xff, 0xff, 0xff)
	c.write(append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...))
	c.expectClosed()
	if rec := waitClosedRecord(t, g); !strings.Contains(rec.Error, "protobuf request 71") {
		t.Fatalf("record %+v, want the protobuf error", rec)
	}
}

// TestWireValueBeyondSchema: a scripted value the protobuf schema cannot carry
// (a conId beyond int32; real ones never are) goes out as text with a raw id,
// which clients decode at every version, instead of ending the session.
func TestWireValueBeyondSchema(t *testing.T) {
	s := fakes.DefaultScript()
	s.Positions = s.Positions[:2]
	s.Positions[1].Contract.ConID = 1 << 40
	g := startGateway(t, s)
	c := dialRaw(t, g)
	c.hello(fakes.Handshake{MinVersion: 100, MaxVersion: 225})
	c.sendBin(71, &protobuf.StartApiRequest{ClientId: proto.Int32(1)})
	for range 5 {
		c.readBin()
	}
	c.sendBin(61, &protobuf.PositionsRequest{})
	unmarshalAs(t, c.readBin(), 61, &protobuf.Position{})
	m := c.readBin()
	wantText(t, m, 61)
	if m.fields[2] != strconv.FormatInt(1<<40, 10) {
		t.Fatalf("position fields %q", m.fields)
	}
	unmarshalAs(t, c.readBin(), 62, &protobuf.PositionEnd{})
}
