//go:build linux

package goplugin

import (
	"context"
	"os"
	"os/signal"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/internal/childproc"
)

// guardStdout points fd 1 at a pipe read by filterStdout, so that only
// go-plugin's handshake line reaches the host's stdout reader. On failure it
// logs and leaves stdout alone.
func guardStdout(log hclog.Logger) {
	realFD, err := unix.Dup(1)
	if err != nil {
		log.Warn("stdout guard: dup", "error", err)
		return
	}
	unix.CloseOnExec(realFD)
	real := os.NewFile(uintptr(realFD), "host-stdout")
	r, w, err := os.Pipe()
	if err != nil {
		_ = real.Close()
		log.Warn("stdout guard: pipe", "error", err)
		return
	}
	if err := unix.Dup3(int(w.Fd()), 1, 0); err != nil {
		_ = real.Close()
		_ = r.Close()
		_ = w.Close()
		log.Warn("stdout guard: dup3", "error", err)
		return
	}
	_ = w.Close() // fd 1 now holds the pipe's write end
	go filterStdout(r, real, log)
}

// watchHost makes the child exit once its host is gone: by the parent-death
// signal (SIGKILL, re-armed here with prctl) and by polling the parent pid. A
// SIGTERM (from the host or anyone) makes it close its Broker and exit.
func watchHost(log hclog.Logger, b broker.Broker) {
	ppid := os.Getppid()
	if host := hostPID(); host != 0 && host != ppid {
		// Started through a wrapper (a shell, go run), or the host already died
		// and we were re-parented before we could look.
		if unix.Kill(host, 0) == unix.ESRCH {
			log.Warn("host process is gone; exiting", "host_pid", host)
			exitChild(log, b, 2)
		}
	}
	if err := childproc.SetParentDeathSignal(unix.SIGKILL); err != nil {
		log.Warn("prctl(PR_SET_PDEATHSIG)", "error", err)
	}
	if os.Getppid() != ppid { // the parent died between Getppid and prctl
		exitChild(log, b, 2)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM)
	go func() {
		<-sigs
		log.Warn("terminated; exiting")
		exitChild(log, b, 2)
	}()
	go watchParent(context.Background(), log, ppid, func(code int) { exitChild(log, b, code) })
}
