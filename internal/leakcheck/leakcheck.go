// Package leakcheck finds what a Broker or a transport should not leave behind on
// Linux: sockets still ESTABLISHED or in CLOSE_WAIT (from /proc/<pid>/fd and
// /proc/net/tcp), child processes not reaped, and process states read from
// /proc/<pid>/stat. It is a test helper shared by the module's tests (robust,
// the adapter, the transports, soak); it imports nothing of ours.
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
	// StateEstablished is an ESTABLISHED socket.
	StateEstablished = "01"
	// StateCloseWait is a socket whose peer hung up and whose owner never closed it.
	StateCloseWait = "08"
)

// Available reports whether /proc is there to be read (Linux).
func Available() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
}

// Socket is one TCP socket from /proc/net/tcp or /proc/net/tcp6.
type Socket struct {
	Table string // "/proc/net/tcp" or "/proc/net/tcp6"
	State string // StateEstablished, StateCloseWait, ...
	Inode string
	Owner string // "pid N" when held by this process or one of the pids asked about; "" otherwise
}

func (s Socket) String() string {
	owner := s.Owner
	if owner == "" {
		owner = "another process"
	}
	return fmt.Sprintf("%s state=%s inode=%s (%s)", s.Table, s.State, s.Inode, owner)
}

// FDs returns the targets of /proc/<pid>/fd/* ("socket:[123]", paths, ...) of pid,
// or of this process when pid is 0. A process that is gone holds nothing.
func FDs(pid int) []string {
	dir := "/proc/self/fd"
	if pid != 0 && pid != os.Getpid() {
		dir = fmt.Sprintf("/proc/%d/fd", pid)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// socketOwners maps the socket inodes held by this process and pids to their owner.
func socketOwners(pids []int) map[string]string {
	owners := map[string]string{}
	for _, pid := range append([]int{os.Getpid()}, pids...) {
		for _, l := range FDs(pid) {
			if in, ok := strings.CutPrefix(l, "socket:["); ok {
				owners[strings.TrimSuffix(in, "]")] = "pid " + strconv.Itoa(pid)
			}
		}
	}
	return owners
}

// Sockets lists every TCP socket in this network namespace whose remote port is
// port (any port when port is 0), tagged with its owner when that is this process
// or one of pids.
func Sockets(port int, pids ...int) []Socket {
	owners := socketOwners(pids)
	var out []Socket
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			if len(fields) < 10 || fields[0] == "sl" {
				continue
			}
			remote := fields[2]
			i := strings.LastIndexByte(remote, ':')
			p, err := strconv.ParseUint(remote[i+1:], 16, 16)
			if err != nil || (port != 0 && int(p) != port) {
				continue
			}
			out = append(out, Socket{Table: table, State: fields[3], Inode: fields[9], Owner: owners[fields[9]]})
		}
		f.Close()
	}
	return out
}

// OwnSocketStates returns the TCP state of every socket to remote port port held
// by this process or one of pids ("01" ESTABLISHED, "08" CLOSE_WAIT, ...).
func OwnSocketStates(port int, pids ...int) []string {
	var states []string
	for _, s := range Sockets(port, pids...) {
		if s.Owner != "" {
			states = append(states, s.State)
		}
	}
	return states
}

// CloseWait counts the TCP sockets, to any port, in CLOSE_WAIT held by this
// process or by pids.
func CloseWait(pids ...int) int {
	n := 0
	for _, s := range Sockets(0, pids...) {
		if s.Owner != "" && s.State == StateCloseWait {
			n++
		}
	}
	return n
}

// LiveSocketsTo lists the sockets to 127.0.0.1:port (remote side) that are
// ESTABLISHED or in CLOSE_WAIT in this network namespace, as /proc/net/tcp lines,
// each tagged with the process that holds it when that is this process or one of
// pids. A socket to the gateway in either state after a restart, reconnect or Close
// is a leak (CLOSE_WAIT: the gateway hung up and we never closed our end).
func LiveSocketsTo(t testing.TB, port int, pids ...int) []string {
	t.Helper()
	var out []string
	for _, s := range Sockets(port, pids...) {
		if s.State == StateEstablished || s.State == StateCloseWait {
			out = append(out, s.String())
		}
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

// ProcState returns the state letter of pid from /proc/<pid>/stat ('R', 'S',
// 'T' stopped, 'Z' zombie, 'X' dead ...), the whole stat line for messages, and
// false once the process is gone (reaped).
func ProcState(pid int) (state byte, stat string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, s, true
	}
	return s[i+2], s, true
}

// Alive reports whether pid runs and is not a zombie.
func Alive(pid int) bool {
	st, _, ok := ProcState(pid)
	return ok && st != 'Z' && st != 'X'
}

// Children returns the pids of pid's children (this process's when pid is 0),
// zombies included.
func Children(pid int) []int {
	if pid == 0 {
		pid = os.Getpid()
	}
	parent := strconv.Itoa(pid)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		_, stat, ok := ProcState(child)
		if !ok {
			continue
		}
		i := strings.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(stat[i+1:]); len(f) >= 2 && f[1] == parent {
			out = append(out, child)
		}
	}
	return out
}

// AssertProcessGone fails the test unless pid has exited and been reaped (no zombie).
func AssertProcessGone(t testing.TB, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("no pid to check")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, stat, ok := ProcState(pid)
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still exists (stat: %s)", pid, stat)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
