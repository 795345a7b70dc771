package leakcheck

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestSocketsAndProcesses(t *testing.T) {
	if !Available() {
		t.Skip("needs /proc (Linux)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if got := OwnSocketStates(port); len(got) != 0 {
		t.Fatalf("before dialing: %v", got)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got := OwnSocketStates(port); !slices.Equal(got, []string{StateEstablished}) {
		t.Fatalf("connected: %v, want one ESTABLISHED", got)
	}
	AssertSockets(t, port, 1)
	_ = s.Close() // the peer hangs up; c is left in CLOSE_WAIT
	AssertSockets(t, port, 1)
	if n := CloseWait(); n < 1 {
		t.Errorf("CloseWait() = %d after the peer hung up", n)
	}
	_ = c.Close()
	AssertSockets(t, port, 0)

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	pid := cmd.Process.Pid
	if !Alive(pid) || !slices.Contains(Children(0), pid) {
		t.Fatalf("child %d: alive %v, children %v", pid, Alive(pid), Children(0))
	}
	if len(FDs(0)) == 0 || len(FDs(os.Getpid())) == 0 {
		t.Error("FDs of this process is empty")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	AssertProcessGone(t, pid)
	if _, _, ok := ProcState(pid); ok {
		t.Errorf("ProcState of reaped %d still ok", pid)
	}
}
