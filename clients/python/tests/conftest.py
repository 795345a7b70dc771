"""Fixtures: the brokerkit binary and fake IB Gateways (`brokerkit gateway`) on free loopback ports."""

from __future__ import annotations

import json
import os
import pathlib
import re
import select
import signal
import subprocess
import sys
import time
from typing import Optional

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
PKG = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PKG))  # the package under test, not an installed copy


@pytest.fixture(scope="session")
def brokerkit_bin() -> str:
    path = os.environ.get("BROKERKIT") or str(ROOT / "bin" / "brokerkit")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no brokerkit binary at {path}: run `make build` or set $BROKERKIT")
    return path


def children() -> set:
    """The pids of this process's live children (zombies included: they are not reaped)."""
    pids = set()
    for task in pathlib.Path("/proc/self/task").iterdir():
        with open(task / "children") as f:
            pids.update(int(p) for p in f.read().split())
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def script(**faults) -> dict:
    """The demo script of the fake gateway, with faults (e.g. reply_delay="800ms")."""
    s = json.loads((ROOT / "fakes" / "testdata" / "demo.json").read_text())
    if faults:
        s["faults"] = faults
    return s


class Gateway:
    """`brokerkit gateway` as a child process; restart() serves again on the same port."""

    def __init__(self, binary: str, script_path: Optional[str]) -> None:
        self.binary = binary
        self.script_path = script_path
        self.proc: Optional[subprocess.Popen] = None
        self.host = "127.0.0.1"
        self.port = 0

    def start(self) -> "Gateway":
        argv = [self.binary, "gateway", "--listen", f"{self.host}:{self.port}"]
        if self.script_path:
            argv += ["--script", self.script_path]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on ([0-9.]+):(\d+)", line)
            if m:
                self.port = int(m.group(2))
                return self
        self.stop()
        raise RuntimeError("the gateway did not print 'listening on HOST:PORT'")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        deadline = time.monotonic() + 10
        while True:  # the port may linger for a moment after the old process exits
            try:
                self.start()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise


@pytest.fixture
def make_gateway(brokerkit_bin, tmp_path):
    made = []

    def make(**faults) -> Gateway:
        path = None
        if faults:
            path = tmp_path / f"script{len(made)}.json"
            path.write_text(json.dumps(script(**faults)))
        gw = Gateway(brokerkit_bin, str(path) if path else None).start()
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.stop()


@pytest.fixture
def gateway(make_gateway) -> Gateway:
    return make_gateway()


@pytest.fixture(autouse=True)
def no_orphans():
    """Every test ends with no child process of its own left (workers included)."""
    before = children()
    yield
    deadline = time.monotonic() + 5
    while (left := children() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"child processes left behind: {sorted(left)}"
