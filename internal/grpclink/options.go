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

// StreamWorkers is how many stream worker goroutines the child's server keeps.
// A call handed to an idle worker runs on its already grown stack; when every
// worker is busy, gRPC starts a goroutine for the call, whose stack then grows
// on every call (runtime.newstack was 13–16 % of a goplugin worker's CPU in a
// Ping loop, ADR 0018). A long-lived stream holds its worker for its whole life,
// and a goplugin child always has two (go-plugin's broker and stdio streams)
// plus one per subscription of the host, so one worker was never idle.
const StreamWorkers = 8

// ServerOptions are the child's half of DialOptions, and StreamWorkers stream
// workers that carry calls on reused goroutines.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(4 << 20), grpc.InitialConnWindowSize(8 << 20),
		grpc.WriteBufferSize(256 << 10), grpc.ReadBufferSize(256 << 10), grpc.NumStreamWorkers(StreamWorkers),
	}
}
