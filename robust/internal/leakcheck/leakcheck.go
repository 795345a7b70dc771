// Package leakcheck finds what a Broker should not leave behind on Linux: sockets
// to the gateway still ESTABLISHED or in CLOSE_WAIT (from /proc/<pid>/fd and
// /proc/net/tcp) and child processes not reaped. It is a test helper of robust's tests.
package leakcheck

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TCP states in /proc/net/tcp.
const (
	tcpEstablished = "01"
	tcpCloseWait   = "08"
)

// LiveSocketsTo lists the sockets to 127.0.0.1:port (remote side) that are
// ESTABLISHED or in CLOSE_WAIT in this network namespace, as /proc/net/tcp lines,
// each tagged with the process that holds it when that is this process or one of
// pids. A socket to the gateway in either state after a restart, reconnect or Close
// is a leak (CLOSE_WAIT: the gateway hung up and we never closed our end).
func LiveSocketsTo(t testing.TB, port int, pids ...int) []string {
	t.Helper()
	owners := map[string]string{} // socket inode -> owner
	for _, pid := range append([]int{os.Getpid()}, pids...) {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		if pid == os.Getpid() {
			dir = "/proc/self/fd"
		}
		fds, _ := os.ReadDir(dir) // a child may be gone: then it holds nothing
		for _, fd := range fds {
			l, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err == nil && strings.HasPrefix(l, "socket:[") {
				owners[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = "pid " + strconv.Itoa(pid)
			}
		}
	}
	var out []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[0] == "sl" {
				continue
			}
			remote, state, inode := fields[2], fields[3], fields[9]
			i := strings.LastIndexByte(remote, ':')
			p, err := strconv.ParseUint(remote[i+1:], 16, 16)
			if err != nil || int(p) != port || (state != tcpEstablished && state != tcpCloseWait) {
				continue
			}
			owner := owners[inode]
			if owner == "" {
				owner = "another process"
			}
			out = append(out, fmt.Sprintf("%s state=%s inode=%s (%s)", table, state, inode, owner))
		}
		f.Close()
	}
	return out
}

// AssertSockets waits (generously, against slow teardown only) until exactly want
// sockets to port are ESTABLISHED or in CLOSE_WAIT, and fails the test listing them
// otherwise.
func AssertSockets(t testing.TB, port, want int, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := LiveSocketsTo(t, port, pids...)
		if len(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d live socket(s) to port %d, found %d:\n%s", want, port, len(got), strings.Join(got, "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// AssertProcessGone fails the test unless pid has exited and been reaped (no zombie).
func AssertProcessGone(t testing.TB, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("no pid to check")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		if os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			t.Fatalf("process %d still exists (stat: %s)", pid, stat)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
