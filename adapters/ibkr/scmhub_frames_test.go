//go:build !race

// Left out of -race builds like fakes/scmhub_test.go: scmhub/ibapi v0.10.47
// races with itself when a session ends. `make test` runs it in its second pass.

package ibkr

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// TestRequestFramesMatchScmhub: at every server version of the matrix, the
// frame the adapter writes itself for each of its requests is byte for byte
// the frame scmhub's own request method writes at that version (text, raw id,
// or protobuf).
func TestRequestFramesMatchScmhub(t *testing.T) {
	stock := broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"}
	option := broker.Contract{ConID: 730264138, Symbol: "AAPL", SecType: "OPT", Expiry: "20261218",
		Strike: broker.MustDecimal("187.5"), Right: "C", Multiplier: "100", Exchange: "SMART", Currency: "USD",
		LocalSymbol: "AAPL  261218C00187500", TradingClass: "AAPL"}
	bars := broker.BarsRequest{End: time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC), Duration: "1 D", BarSize: "5 mins",
		WhatToShow: "TRADES", UseRTH: true}
	for _, v := range []int{178, 193, 201, 205, 206, 207, 208, 212, 213, 225} {
		t.Run(strconv.Itoa(v), func(t *testing.T) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			frames := make(chan []byte, 32)
			served := make(chan struct{})
			go func() { // a gateway that answers the handshake at v and hands over every frame
				defer close(served)
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(nc)
				if _, err := fakes.ReadHandshake(br); err != nil {
					return
				}
				if _, err := nc.Write(fakes.EncodeFrame(strconv.Itoa(v), "20250102 15:04:05 EST")); err != nil {
					return
				}
				for {
					var hdr [4]byte
					if _, err := io.ReadFull(br, hdr[:]); err != nil {
						return
					}
					b := make([]byte, 4+binary.BigEndian.Uint32(hdr[:]))
					copy(b, hdr[:])
					if _, err := io.ReadFull(br, b[4:]); err != nil {
						return
					}
					frames <- b
					if len(frames) == cap(frames) {
						return
					}
				}
			}()
			ec := ibapi.NewEClient(&ibapi.Wrapper{})
			addr := ln.Addr().(*net.TCPAddr)
			if err := ec.Connect(addr.IP.String(), addr.Port, 1); err != nil {
				t.Fatal(err)
			}
			next := func(what string) []byte {
				select {
				case b := <-frames:
					return b
				case <-time.After(10 * time.Second):
					t.Fatalf("no frame for %s", what)
					return nil
				}
			}
			next("START_API")
			for _, r := range []request{reqPositions(), cancelPositions(), reqAccountSummary(1048577, "All", "NetLiquidation,$LEDGER"),
				cancelAccountSummary(1048577), reqCurrentTime(false),
				reqContractData(v, 1048578, stock), reqContractData(v, 1048579, option), reqMktData(v, 1048580, option, true), reqMktData(v, 1048583, stock, false),
				cancelMktData(1048580), cancelMktData(1048583), reqMarketDataType(3), reqHistorical(v, 1048581, stock, bars),
				reqHistorical(v, 1048582, option, broker.BarsRequest{Duration: "2 W", BarSize: "1 day", WhatToShow: "MIDPOINT"}),
				cancelHistorical(1048581), orderRequest(t, v, 7), cancelRequest(t, v, 7), idsRequest(t, v)} {
				r.call(ec)
				want := next(strconv.Itoa(int(r.id)))
				if got, err := r.frame(v); err != nil || !bytes.Equal(got, want) {
					t.Errorf("request %d at %d: adapter writes % x (%v), scmhub % x", r.id, v, got, err, want)
				}
			}
			tc := tcpConnOf(connectionOf(ec))
			if tc != nil {
				_ = tc.CloseRead() // scmhub's watcher ends the session, as in the adapter
			}
			ln.Close()
			<-served
		})
	}
}

// orderRequest, cancelRequest and idsRequest are the order requests as the
// adapter builds them (on an offline scmhub client, orders_frames.go) beside
// the call that makes a connected scmhub client write them.
func orderRequest(t *testing.T, v int, id int64) request {
	r := broker.OrderRequest{Key: "k-1", Contract: broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART",
		Currency: "USD"}, Action: "BUY", Quantity: broker.MustDecimal("12.5"), OrderType: "STP LMT",
		LimitPrice: broker.MustDecimal("190.25"), AuxPrice: broker.MustDecimal("191"), TIF: "GTC", OutsideRTH: true, Hold: true}
	frame, err := placeOrderFrame(v, id, r)
	if err != nil {
		t.Fatal(err)
	}
	c, o, err := scmhubOrder(r)
	if err != nil {
		t.Fatal(err)
	}
	return request{id: ibapi.PLACE_ORDER, raw: frame, call: func(ec *ibapi.EClient) { ec.PlaceOrder(id, c, o) }}
}

func cancelRequest(t *testing.T, v int, id int64) request {
	frame, err := cancelOrderFrame(v, id)
	if err != nil {
		t.Fatal(err)
	}
	return request{id: ibapi.CANCEL_ORDER, raw: frame, call: func(ec *ibapi.EClient) { ec.CancelOrder(id, ibapi.NewOrderCancel()) }}
}

func idsRequest(t *testing.T, v int) request {
	frame, err := reqIDsFrame(v)
	if err != nil {
		t.Fatal(err)
	}
	return request{id: ibapi.REQ_IDS, raw: frame, call: func(ec *ibapi.EClient) { ec.ReqIDs(1) }}
}
