package grpclink

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// rawCodec passes messages as *[]byte, so that the test service needs no
// generated code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	p, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *p, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "grpclink-test-raw" }

// TestUnaryCallsRunOnStreamWorkers holds that with the long-lived streams of a
// goplugin child open (go-plugin's broker and stdio streams and a few
// subscriptions), a unary call still runs on one of the server's stream
// workers, not on a goroutine started for it (whose stack grows on every call).
func TestUnaryCallsRunOnStreamWorkers(t *testing.T) {
	const longLived = 5 // go-plugin's two, and three subscriptions
	release := make(chan struct{})
	svc := grpc.ServiceDesc{
		ServiceName: "grpclink.Test",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Where",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var in []byte
				if err := dec(&in); err != nil {
					return nil, err
				}
				buf := make([]byte, 64<<10)
				out := buf[:runtime.Stack(buf, false)]
				return &out, nil
			},
		}},
		Streams: []grpc.StreamDesc{{
			StreamName:    "Hold",
			ServerStreams: true,
			Handler: func(_ any, s grpc.ServerStream) error {
				var in []byte
				if err := s.RecvMsg(&in); err != nil {
					return err
				}
				if err := s.SendMsg(&in); err != nil {
					return err
				}
				select {
				case <-release:
				case <-s.Context().Done():
				}
				return nil
			},
		}},
	}
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(ServerOptions(), grpc.ForceServerCodec(rawCodec{}))...)
	srv.RegisterService(&svc, struct{}{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	conn, err := grpc.NewClient("unix://"+ln.Addr().String(), append(DialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(release)
		_ = conn.Close()
		srv.Stop()
		<-served
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range longLived {
		st, err := conn.NewStream(ctx, &svc.Streams[0], "/grpclink.Test/Hold")
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte{byte(i)}
		if err := st.SendMsg(&msg); err != nil {
			t.Fatal(err)
		}
		if err := st.CloseSend(); err != nil {
			t.Fatal(err)
		}
		// The handler has answered: it holds a worker (or a goroutine) now.
		var got []byte
		if err := st.RecvMsg(&got); err != nil {
			t.Fatalf("long-lived stream %d: %v", i, err)
		}
	}
	// A worker that has not yet come back to wait for work (or, right after
	// NewServer, not yet started to) makes gRPC start a goroutine for that one
	// call; so most calls, not every one, must run on a worker. With a single
	// worker held by a long-lived stream none does.
	const calls = 10
	onWorker, last := 0, ""
	for range calls {
		in, out := []byte{}, []byte{}
		if err := conn.Invoke(ctx, "/grpclink.Test/Where", &in, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "grpc.(*Server).serverWorker") {
			onWorker++
		} else {
			last = string(out)
		}
	}
	if onWorker < calls*8/10 {
		t.Fatalf("with %d long-lived streams open, %d of %d unary calls ran on a stream worker; one that did not:\n%s",
			longLived, onWorker, calls, last)
	}
}
