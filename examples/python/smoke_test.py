"""Smoke test of brokerkit_client.py against `brokerkit worker` and the fake IB Gateway.

    python3 examples/python/smoke_test.py --brokerkit bin/brokerkit

It starts `brokerkit gateway --listen 127.0.0.1:0`, reads the line `listening on 127.0.0.1:PORT`, then drives
`brokerkit worker` through SubprocessIBKRClient and, separately, with the original plan's id-less lines. It
exits 0 if every check passed and 1 otherwise, naming each failure. Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import decimal
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from brokerkit_client import (AlreadyConnected, NotConnected, SubprocessIBKRClient, Unsupported,  # noqa: E402
                              WorkerUnavailable)

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def start_gateway(brokerkit: str) -> tuple[subprocess.Popen, str, int]:
    gw = subprocess.Popen([brokerkit, "gateway", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = gw.stdout.readline()
        if not line:
            break
        m = re.search(r"listening on ([0-9.]+):(\d+)", line)
        if m:
            return gw, m.group(1), int(m.group(2))
    gw.kill()
    gw.wait()
    raise SystemExit("smoke_test: the gateway did not print 'listening on HOST:PORT'")


async def expect_error(coro, cls, what: str) -> None:
    try:
        await coro
    except cls as e:
        check(True, f"{what} -> {e.code}")
        return
    except BaseException as e:  # noqa: BLE001
        check(False, f"{what}: raised {type(e).__name__} {e}, want {cls.__name__}")
        return
    check(False, f"{what}: succeeded, want {cls.__name__}")


async def drive_client(brokerkit: str, host: str, port: int) -> None:
    async with SubprocessIBKRClient([brokerkit, "worker"]) as ib:
        check(ib.pid is not None and ib.pid > 0, f"worker started (pid {ib.pid})")
        await expect_error(ib.ping(), NotConnected, "ping before connect")

        info = await ib.connect(host, port, client_id=1, timeout=10)
        check(info.get("connected") is True and len(info.get("accounts", [])) > 0,
              f"connect -> accounts {info.get('accounts')}, server version {info.get('server_version')}")
        accounts = await ib.get_accounts()
        check(accounts == info["accounts"], f"get_accounts -> {accounts}")

        positions = await ib.get_positions()
        check(len(positions) > 0, f"get_positions -> {len(positions)} positions")
        check(all(isinstance(p["quantity"], decimal.Decimal) and isinstance(p["avg_cost"], decimal.Decimal)
                  for p in positions), "quantities and costs are exact decimals")
        check(all(p["account"] in accounts for p in positions), "every position belongs to a managed account")
        check(all(p["contract"]["symbol"] and p["contract"]["con_id"] > 0 for p in positions),
              "every position has a contract")

        summaries = await ib.get_account_summary(["NetLiquidation", "AccountType"])
        check([s["account"] for s in summaries] == accounts, f"get_account_summary -> {len(summaries)} accounts")
        for s in summaries:
            nl = s["values"].get("NetLiquidation", {}).get("value")
            try:
                decimal.Decimal(nl)
                ok = True
            except (TypeError, decimal.InvalidOperation):
                ok = False
            check(ok, f"{s['account']} NetLiquidation = {nl}")

        await ib.ping()
        check(True, "ping")

        # Many calls in flight at once, answered by id.
        results = await asyncio.gather(*([ib.ping() for _ in range(20)] + [ib.get_accounts() for _ in range(5)]))
        check(results[-5:] == [accounts] * 5, "25 concurrent calls each got their own answer")

        await expect_error(ib.request("launch_rockets"), Unsupported, "unknown command")
        await expect_error(ib.connect(host, port, client_id=2), AlreadyConnected, "second connect")

        await ib.disconnect()
        check(True, "disconnect")
        await expect_error(ib.ping(), NotConnected, "ping after disconnect")
    check(ib.returncode == 0, f"worker exited with status {ib.returncode} after close")


async def drive_kill(brokerkit: str, host: str, port: int) -> None:
    ib = SubprocessIBKRClient([brokerkit, "worker"])
    await ib.start()
    try:
        await ib.connect(host, port, client_id=3)
        os.kill(ib.pid, signal.SIGKILL)
        t0 = time.monotonic()
        await expect_error(ib.ping(timeout=30), WorkerUnavailable, "call after kill -9 of the worker")
        check(time.monotonic() - t0 < 10, "the call failed at once, not after a timeout")
    finally:
        await ib.close()


def plan_lines(brokerkit: str, host: str, port: int) -> None:
    """The original plan's id-less lines, piped into the worker, get the plan's shapes in order."""
    lines = [
        {"command": "connect", "host": host, "port": port, "client_id": 4},
        {"command": "get_accounts"},
        {"command": "get_positions"},
        "this is not json",
        {"command": "ping"},
        {"command": "disconnect"},
    ]
    text = "".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines)
    out = subprocess.run([brokerkit, "worker"], input=text, capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, f"worker fed the plan's lines exited {out.returncode}")
    got = [json.loads(l) for l in out.stdout.splitlines()]
    check(len(got) == len(lines), f"{len(got)} answers to {len(lines)} plan lines, nothing else on stdout")
    if len(got) != len(lines):
        return
    check(all("id" not in g for g in got), "plan answers carry no id")
    c = got[0]
    check(c.get("status") == "success" and c["data"].get("connected") is True and c["data"].get("accounts"),
          f"plan connect -> {json.dumps(c)[:120]}")
    check(got[1].get("data", {}).get("accounts") == c["data"]["accounts"], "plan get_accounts -> {accounts: [...]}")
    check(isinstance(got[2].get("data", {}).get("positions"), list), "plan get_positions -> {positions: [...]}")
    check(got[3].get("status") == "error" and got[3].get("code") == "protocol", "malformed line -> protocol error")
    check(got[4] == {"status": "success", "data": {"pong": True}}, "plan ping -> {pong: true}")
    check(got[5] == {"status": "success", "data": {"disconnected": True}}, "plan disconnect -> {disconnected: true}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokerkit", default=os.environ.get("BROKERKIT", "bin/brokerkit"),
                    help="the brokerkit binary (default $BROKERKIT or bin/brokerkit)")
    args = ap.parse_args()
    gw, host, port = start_gateway(args.brokerkit)
    try:
        asyncio.run(asyncio.wait_for(drive_client(args.brokerkit, host, port), 120))
        asyncio.run(asyncio.wait_for(drive_kill(args.brokerkit, host, port), 60))
        plan_lines(args.brokerkit, host, port)
    finally:
        gw.terminate()
        try:
            gw.wait(10)
        except subprocess.TimeoutExpired:
            gw.kill()
            gw.wait()
    if failures:
        print(f"smoke_test: {len(failures)} check(s) failed:", *failures, sep="\n  ", file=sys.stderr)
        return 1
    print("smoke_test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
