package goplugin

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/internal/grpclink"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// server is the child's half: it serves a broker.Broker as the gRPC Broker service.
type server struct {
	pb.UnimplementedBrokerServer
	b   broker.Broker
	log hclog.Logger
}

func (s *server) Close(context.Context, *pb.Empty) (*pb.Empty, error) {
	return &pb.Empty{}, errorToStatus(s.b.Close())
}

// Subscribe registers with the served Broker, then sends the response headers
// (the client waits for them, so no event published after its Subscribe returns
// is missed) and streams events until the call ends or the Broker closes the channel.
func (s *server) Subscribe(_ *pb.Empty, stream pb.Broker_SubscribeServer) error {
	ctx := stream.Context()
	ch, err := s.b.Subscribe(ctx)
	if err != nil {
		return errorToStatus(err)
	}
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-ch:
			if !ok {
				return nil
			}
			if err := stream.Send(eventToPB(e)); err != nil {
				return err
			}
		}
	}
}

// recoverUnary and recoverStream turn a panic in the served Broker into an
// internal error for that call, so that a bug never kills the child mid-session.
func recoverUnary(log hclog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic serving call", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				resp, err = nil, errorToStatus(fmt.Errorf("goplugin: panic in %s: %v", info.FullMethod, r))
			}
		}()
		return h(ctx, req)
	}
}

func recoverStream(log hclog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic serving stream", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = errorToStatus(fmt.Errorf("goplugin: panic in %s: %v", info.FullMethod, r))
			}
		}()
		return h(srv, ss)
	}
}

// newGRPCServer is the grpc.Server factory for plugin.ServeConfig.GRPCServer.
func newGRPCServer(log hclog.Logger) func([]grpc.ServerOption) *grpc.Server {
	return func(opts []grpc.ServerOption) *grpc.Server {
		opts = append(append(opts, grpclink.ServerOptions()...),
			grpc.ChainUnaryInterceptor(recoverUnary(log)),
			grpc.ChainStreamInterceptor(recoverStream(log)),
		)
		return grpc.NewServer(opts...)
	}
}
