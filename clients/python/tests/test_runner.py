"""`python -m brokerkit.runner` prints `brokerkit run`'s tick lines and stops cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from conftest import PKG, alive


def read_lines(proc: subprocess.Popen, n: int, timeout: float) -> list:
    lines = []
    deadline = time.monotonic() + timeout
    while len(lines) < n:
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            raise AssertionError(f"got {len(lines)} of {n} lines within {timeout}s")
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"output ended after {len(lines)} lines: {proc.stderr.read()}")
        lines.append(json.loads(line))
    return lines


def go_ticks(brokerkit_bin: str, gateway) -> list:
    out = subprocess.run([brokerkit_bin, "run", "--symbols", "AAPL", "--host", gateway.host, "--port",
                          str(gateway.port), "--client-id", "61", "--interval", "300ms", "--duration", "1s"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_runner_ticks_like_brokerkit_run(brokerkit_bin, gateway, sig):
    want = go_ticks(brokerkit_bin, gateway)[0]
    env = dict(os.environ, PYTHONPATH=str(PKG))
    proc = subprocess.Popen([sys.executable, "-m", "brokerkit.runner", "--symbols", "AAPL", "--host", gateway.host,
                             "--port", str(gateway.port), "--client-id", "62", "--interval", "0.2",
                             "--binary", brokerkit_bin], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        ticks = read_lines(proc, 2, 20)
        for t in ticks:
            assert list(t) == list(want), "the same fields in the same order"
            assert t["ok"] is True and t["error"] == "" and t["state"] == "connected" and t["breaker"] == "closed"
            assert t["positions"] == want["positions"] and t["net_liquidation"] == want["net_liquidation"]
            assert all(p["contract"]["symbol"] == "AAPL" for p in t["positions"]) and t["positions"]
            assert t["ts"].endswith("Z") and isinstance(t["latency_ms"], float)
            q = t["quotes"]["AAPL"]  # the newest of AAPL's stream, "" until it has delivered
            assert list(q)[:3] == ["bid", "ask", "last"] and "error" not in q and set(t["quotes"]) == {"AAPL"}
            assert all(Decimal(q[k]) > 0 for k in ("bid", "ask", "last") if q[k])
        deadline = time.monotonic() + 20
        while not ticks[-1]["quotes"]["AAPL"]["bid"]:  # the stream's first value reaches a later tick
            assert time.monotonic() < deadline, f"no quote in {len(ticks)} ticks"
            ticks += read_lines(proc, 1, 20)
        assert Decimal(ticks[-1]["quotes"]["AAPL"]["bid"]) > 0 and ticks[-1]["quotes"]["AAPL"]["time"].endswith("Z")
        worker = ticks[-1]["worker_pid"]
        assert alive(worker)
        t0 = time.monotonic()
        proc.send_signal(sig)
        assert proc.wait(10) == 0, proc.stderr.read()
        assert time.monotonic() - t0 < 5
        assert not alive(worker), f"worker {worker} left behind"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_runner_with_its_own_gateway_and_duration(brokerkit_bin):
    env = dict(os.environ, PYTHONPATH=str(PKG))
    out = subprocess.run([sys.executable, "-m", "brokerkit.runner", "--symbols", "SPY", "--interval", "0.2",
                          "--duration", "0.5", "--binary", brokerkit_bin], capture_output=True, text=True,
                         env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    ticks = [json.loads(line) for line in out.stdout.splitlines()]
    assert ticks and all(t["ok"] for t in ticks)
    assert {p["contract"]["symbol"] for t in ticks for p in t["positions"]} == {"SPY"}


def test_runner_survives_kill_9_of_its_worker(brokerkit_bin, gateway):
    env = dict(os.environ, PYTHONPATH=str(PKG))
    proc = subprocess.Popen([sys.executable, "-m", "brokerkit.runner", "--host", gateway.host, "--port",
                             str(gateway.port), "--client-id", "63", "--interval", "0.1", "--binary", brokerkit_bin],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = read_lines(proc, 1, 20)[0]
        assert first["ok"] and first["restarts"] == 0
        os.kill(first["worker_pid"], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while True:  # ticks keep coming; one of them is served by a new worker
            t = read_lines(proc, 1, max(deadline - time.monotonic(), 0.1))[0]
            if t["ok"] and t["restarts"] == 1:
                break
        assert t["worker_pid"] != first["worker_pid"] and t["reconnects"] >= 1 and t["state"] == "connected"
        assert not alive(first["worker_pid"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert not alive(t["worker_pid"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
