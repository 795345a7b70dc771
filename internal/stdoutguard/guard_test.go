package stdoutguard

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

const envChild = "STDOUTGUARD_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		fd, err := Take()
		if err != nil {
			fmt.Fprintln(os.Stderr, "take:", err)
			os.Exit(3)
		}
		out := os.NewFile(uintptr(fd), "/dev/stdout")
		fmt.Println("stray-println") // os.Stdout
		if runtime.GOOS == "linux" { // elsewhere Take does not divert fd 1 itself
			_, _ = syscall.Write(1, []byte("stray-raw-fd1\n"))
		}
		_, _ = fmt.Fprintln(out, "own-output")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestStrayWritesGoToStderr: after Take, fmt.Println and raw writes to fd 1 land
// on stderr, and only what is written to the returned descriptor on stdout.
func TestStrayWritesGoToStderr(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if got := stdout.String(); got != "own-output\n" {
		t.Errorf("stdout = %q, want only the program's own output", got)
	}
	want := []string{"stray-println"}
	if runtime.GOOS == "linux" {
		want = append(want, "stray-raw-fd1")
	}
	for _, w := range want {
		if !bytes.Contains(stderr.Bytes(), []byte(w)) {
			t.Errorf("stderr %q lacks %q", stderr.String(), w)
		}
	}
}
