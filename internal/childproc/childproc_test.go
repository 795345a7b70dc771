package childproc

import (
	"runtime"
	"syscall"
	"testing"
)

func TestSetProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for env, want := range map[string]int{"": 1, "3": 3, "0": 1, "-2": 1, "x": 1} {
		t.Setenv(EnvProcs, env)
		SetProcs()
		if got := runtime.GOMAXPROCS(0); got != want {
			t.Errorf("%s=%q: GOMAXPROCS %d, want %d", EnvProcs, env, got, want)
		}
	}
}

func TestSysProcAttr(t *testing.T) {
	a := SysProcAttr(syscall.SIGTERM, true)
	if runtime.GOOS == "linux" && (a == nil || !a.Setpgid || a.Pdeathsig != syscall.SIGTERM) {
		t.Errorf("SysProcAttr(SIGTERM, own group) = %+v", a)
	}
	if a := SysProcAttr(syscall.SIGKILL, false); runtime.GOOS == "linux" && (a == nil || a.Setpgid || a.Pdeathsig != syscall.SIGKILL) {
		t.Errorf("SysProcAttr(SIGKILL, same group) = %+v", a)
	}
}
