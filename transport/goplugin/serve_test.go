package goplugin

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestWatchParentExitsWhenOrphaned(t *testing.T) {
	exited := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go watchParent(ctx, hclog.NewNullLogger(), os.Getppid()+1, func(code int) { exited <- code })
	within(t, 10*time.Second, "watchParent noticing a changed parent", func() {
		if code := <-exited; code != 2 {
			t.Errorf("exit code %d, want 2", code)
		}
	})
}

func TestWatchParentStaysWhileParentLives(t *testing.T) {
	exited := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchParent(ctx, hclog.NewNullLogger(), os.Getppid(), func(code int) { exited <- code })
	}()
	time.Sleep(3 * hostPollInterval)
	cancel()
	within(t, 10*time.Second, "watchParent returning on cancel", func() { <-done })
	select {
	case code := <-exited:
		t.Fatalf("exit(%d) with the parent alive", code)
	default:
	}
}

func TestRememberSocket(t *testing.T) {
	servedSocket.Store(nil)
	t.Cleanup(func() { servedSocket.Store(nil) })
	rememberSocket([]byte("1|1|tcp|127.0.0.1:1234|grpc|\n"))
	if p := servedSocket.Load(); p != nil {
		t.Fatalf("remembered %q from a tcp handshake", *p)
	}
	rememberSocket([]byte(sampleHandshake))
	if p := servedSocket.Load(); p == nil || *p != "/tmp/plugin123" {
		t.Fatalf("remembered %v, want /tmp/plugin123", p)
	}
}
