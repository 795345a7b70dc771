package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWorkerWritesProfileAndTrace holds `make profile`'s worker side: a worker
// started with $BROKERKIT_BENCH_WORKER_PROFILE and _TRACE set writes a complete
// CPU profile and execution trace when its host closes it, over each transport.
func TestWorkerWritesProfileAndTrace(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv(envWorkerProfile, dir)
			t.Setenv(envWorkerTrace, dir)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			br, err := tr.start(ctx, "mem", 0)
			if err != nil {
				t.Fatalf("start %s worker: %v", tr.name, err)
			}
			if _, err := br.Connect(ctx, memParams); err != nil {
				t.Fatal(err)
			}
			for range 100 {
				if err := br.Ping(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := br.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			for ext, magic := range map[string][]byte{
				".prof":  {0x1f, 0x8b}, // a pprof profile is gzipped
				".trace": []byte("go 1."),
			} {
				files, err := filepath.Glob(filepath.Join(dir, "worker-"+tr.name+"-*"+ext))
				if err != nil || len(files) != 1 {
					t.Fatalf("worker %s files: %v, %v; want one", ext, files, err)
				}
				data, err := os.ReadFile(files[0])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(data, magic) || len(data) < 64 {
					t.Errorf("%s: %d bytes starting %q; want a complete %s file", files[0], len(data), data[:min(len(data), 8)], ext)
				}
			}
		})
	}
}
