package goplugin

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// Handshake is the go-plugin handshake shared by host and child. The protocol
// version changes whenever broker.proto changes incompatibly; the magic cookie
// only tells a user who runs the child by hand that it is not a command.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BROKERKIT_PLUGIN",
	MagicCookieValue: "6f0a3c1e-brokerkit-broker-port",
}

// PluginName is the name under which the child serves the Broker port.
const PluginName = "broker"

// PluginMap is the plugin set of the host: the Broker port under PluginName.
var PluginMap = map[string]plugin.Plugin{PluginName: &Plugin{}}

// Plugin is the go-plugin GRPCPlugin for the Broker port. In the child, Broker is
// the implementation to serve; on the host it is unused and GRPCClient returns a
// *Client. Most programs use Serve and Start instead of Plugin directly.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin

	Broker broker.Broker // the implementation the child serves
	Logger hclog.Logger  // the child's logger; hclog.NewNullLogger() if nil
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCServer registers the Broker service on the child's gRPC server.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterBrokerServer(s, &server{b: p.Broker, log: loggerOr(p.Logger)})
	pb.RegisterOrdersServer(s, &orderServer{b: p.Broker, log: loggerOr(p.Logger)}) // orders.go
	return nil
}

// GRPCClient returns the host's *Client over conn. done is go-plugin's context
// that ends when the child process exits; every call of the Client fails with
// broker.ErrUnavailable from then on.
func (p *Plugin) GRPCClient(done context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return newClient(conn, done, loggerOr(p.Logger)), nil
}

func loggerOr(l hclog.Logger) hclog.Logger {
	if l == nil {
		return hclog.NewNullLogger()
	}
	return l
}
