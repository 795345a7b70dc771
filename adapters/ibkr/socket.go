package ibkr

import (
	"net"
	"reflect"
	"sync/atomic"
	"unsafe"

	"github.com/scmhub/ibapi"
)

// scmhub/ibapi v0.10.47 gives no way to interrupt EClient.Connect (it dials
// without a timeout and then blocks reading the handshake reply with no
// deadline) and no way to close the socket of a client stuck in the CONNECTING
// state (Disconnect returns early unless the state is CONNECTED). The adapter
// therefore reaches the socket through two unexported fields,
// EClient.conn (*ibapi.Connection) and Connection.tcpConn
// (atomic.Pointer[net.TCPConn]), by reflection. Both lookups check the field's
// type, so a layout change in a later scmhub makes them return nil (and
// TestSocketLayout fail) instead of corrupting memory.

var (
	connectionType = reflect.TypeFor[*ibapi.Connection]()
	tcpPtrType     = reflect.TypeFor[atomic.Pointer[net.TCPConn]]()
)

// connectionOf returns the *ibapi.Connection held by ec, or nil if scmhub's
// layout is not the one this package knows. It reads a plain field, so call it
// only while no other goroutine uses ec (right after NewEClient).
func connectionOf(ec *ibapi.EClient) *ibapi.Connection {
	f := reflect.ValueOf(ec).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != connectionType {
		return nil
	}
	return *(**ibapi.Connection)(unsafe.Pointer(f.UnsafeAddr()))
}

// tcpConnOf returns the socket c currently holds, or nil. It is safe to call
// from any goroutine: the field is an atomic pointer.
func tcpConnOf(c *ibapi.Connection) *net.TCPConn {
	if c == nil {
		return nil
	}
	f := reflect.ValueOf(c).Elem().FieldByName("tcpConn")
	if !f.IsValid() || f.Type() != tcpPtrType {
		return nil
	}
	return (*atomic.Pointer[net.TCPConn])(unsafe.Pointer(f.UnsafeAddr())).Load()
}

// shutdownRead makes a read blocked on c's socket return EOF, which unblocks a
// stalled EClient.Connect or makes scmhub's reader end the session through its
// own Disconnect (so that exactly one goroutine ever runs Disconnect). The
// socket itself stays open for scmhub to close.
func shutdownRead(c *ibapi.Connection) {
	if tc := tcpConnOf(c); tc != nil {
		_ = tc.CloseRead()
	}
}

// closeSocket closes c's socket, for a client that never reached CONNECTED and
// so will never close it itself.
func closeSocket(c *ibapi.Connection) {
	if tc := tcpConnOf(c); tc != nil {
		_ = tc.Close()
	}
}
