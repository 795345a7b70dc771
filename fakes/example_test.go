package fakes_test

import (
	"bufio"
	"fmt"
	"net"
	"time"

	"github.com/brokerkit/brokerkit/fakes"
)

// Start a gateway on a free loopback port and talk to it as a TWS client does:
// handshake, START_API, then read the managed accounts it sends unprompted.
func ExampleNewGateway() {
	g, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()

	nc, err := net.Dial("tcp", g.Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)

	// A text-only client (v100..193, as @stoqey/ib): from 201 the protocol has
	// raw ids and protobuf, which ReadFrame and EncodeFrame do not speak.
	_, _ = nc.Write(fakes.EncodeHandshake(fakes.Handshake{MinVersion: 100, MaxVersion: 193}))
	version, _ := fakes.ReadFrame(r)                       // [server version, connection time]
	_, _ = nc.Write(fakes.EncodeFrame("71", "2", "1", "")) // START_API, client id 1
	accts, _ := fakes.ReadFrame(r)                         // MANAGED_ACCTS
	fmt.Println("server version:", version[0])
	fmt.Println("accounts:", accts[2])
	// Output:
	// server version: 193
	// accounts: DU1234567,DU7654321
}

// A script with faults: the gateway announces a lost connection to IB 100 ms
// after START_API. The same script in JSON shows the file format.
func ExampleParseScript() {
	s, err := fakes.ParseScript([]byte(`{
		"accounts": ["DU111"],
		"positions": [{"account": "DU111", "contract": {"con_id": 265598, "symbol": "AAPL", "sec_type": "STK"},
		               "quantity": "0.5", "avg_cost": "150.25"}],
		"faults": {"notices": [{"after": "100ms", "code": 1100}]}
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Accounts, s.Positions[0].Quantity, s.Faults.Notices[0].After, s.Faults.Notices[0].Code)
	// Output: [DU111] 0.5 100ms 1100
}

// Chaos while a client is connected: a connectivity notice to every session,
// then a gateway crash.
func ExampleGateway_DropConnections() {
	g, err := fakes.NewGateway(fakes.DefaultScript())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	nc, err := net.Dial("tcp", g.Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	_, _ = nc.Write(fakes.EncodeHandshake(fakes.Handshake{MinVersion: 100, MaxVersion: 193}))
	_, _ = nc.Write(fakes.EncodeFrame("71", "2", "7", ""))
	for range 6 { // version reply and the five unprompted messages
		_, _ = fakes.ReadFrame(r)
	}

	fmt.Println("notified:", g.Notify(fakes.CodeConnectivityLost, ""))
	notice, _ := fakes.ReadFrame(r)
	fmt.Println(notice[3], notice[4])
	fmt.Println("dropped:", g.DropConnections())
	_, err = fakes.ReadFrame(r)
	fmt.Println("client sees the drop:", err != nil)
	// Output:
	// notified: 1
	// 1100 Connectivity between IB and Trader Workstation has been lost.
	// dropped: 1
	// client sees the drop: true
}
