package grpclink

import "google.golang.org/grpc"

// DialOptions tune the host's side of the connection for large answers (a
// Positions of 10 000 rows is about 1.5 MB): a fixed 4 MB stream window lets it
// flow without waiting for window updates, and larger buffers make fewer writes.
// Messages are never compressed.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(4 << 20), grpc.WithInitialConnWindowSize(8 << 20),
		grpc.WithWriteBufferSize(256 << 10), grpc.WithReadBufferSize(256 << 10),
	}
}

// ServerOptions are the child's half of DialOptions; one stream worker
// goroutine is reused for calls instead of a new goroutine each (gRPC starts
// one anyway when the worker is busy).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(4 << 20), grpc.InitialConnWindowSize(8 << 20),
		grpc.WriteBufferSize(256 << 10), grpc.ReadBufferSize(256 << 10), grpc.NumStreamWorkers(1),
	}
}
