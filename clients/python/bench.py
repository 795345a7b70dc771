"""Measures the brokerkit Python client against `brokerkit worker`, next to a client written the original plan's
way (id-less lines, one request in flight behind an asyncio.Lock), in the same run and against the same fake
gateway:

    python3 clients/python/bench.py --brokerkit bin/brokerkit      (make bench-python)

Figures: the median and 99th percentile of sequential ping round trips (each one a round trip to the gateway
through the worker), and the throughput of 64 concurrent tasks pinging. Rounds alternate between the clients;
the medians over rounds are printed. Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import brokerkit  # noqa: E402


class PlanClient:
    """The plan's client: one line out, the next line in, behind a lock."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.lock = asyncio.Lock()
        self.proc: Optional[asyncio.subprocess.Process] = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(self.binary, "worker", stdin=asyncio.subprocess.PIPE,
                                                         stdout=asyncio.subprocess.PIPE,
                                                         stderr=asyncio.subprocess.DEVNULL)

    async def send(self, cmd: dict) -> dict:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        async with self.lock:
            self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
            await self.proc.stdin.drain()
            resp = json.loads(await self.proc.stdout.readline())
        if resp.get("status") != "success":
            raise RuntimeError(resp)
        return resp["data"]

    async def connect(self, host: str, port: int, client_id: int) -> None:
        await self.send({"command": "connect", "host": host, "port": port, "client_id": client_id})

    async def ping(self) -> None:
        await self.send({"command": "ping"})

    async def close(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        await self.proc.wait()


async def latency(ping, n: int) -> list:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await ping()
        out.append(time.perf_counter() - t0)
    return out


async def throughput(ping, tasks: int, per_task: int) -> float:
    async def worker() -> None:
        for _ in range(per_task):
            await ping()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return tasks * per_task / (time.perf_counter() - t0)


def pct(xs: list, p: float) -> float:
    xs = sorted(xs)
    return xs[min(int(len(xs) * p), len(xs) - 1)]


async def main(args: argparse.Namespace) -> None:
    gw = subprocess.Popen([args.brokerkit, "gateway", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        assert gw.stdout is not None
        m = re.search(r":(\d+)\s*$", gw.stdout.readline())
        if m is None:
            raise SystemExit("bench: the gateway did not print its address")
        port = int(m.group(1))
        ours = brokerkit.Client(args.brokerkit, health_interval=0)
        await ours.start()
        await ours.connect("127.0.0.1", port, client_id=1)
        plain = brokerkit.Client(args.brokerkit, health_interval=0, robust_worker=False)
        await plain.start()
        await plain.connect("127.0.0.1", port, client_id=3)
        plan = PlanClient(args.brokerkit)
        await plan.start()
        await plan.connect("127.0.0.1", port, 2)
        clients = {"brokerkit.Client, worker --robust (default)": ours.ping,
                   "brokerkit.Client, plain worker": plain.ping,
                   "plan-style: lock, one in flight, plain worker": plan.ping}
        lat: Dict[str, List[float]] = {k: [] for k in clients}
        thr: Dict[str, List[float]] = {k: [] for k in clients}
        for name, ping in clients.items():  # warm up
            await latency(ping, 200)
        for _ in range(args.rounds):
            for name, ping in clients.items():
                lat[name].extend(await latency(ping, args.n))
                thr[name].append(await throughput(ping, args.tasks, args.per_task))
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.rounds} rounds; ping = one round trip "
              f"to the fake gateway through `brokerkit worker`")
        print(f"{'client':46} {'p50 µs':>8} {'p99 µs':>8} {f'{args.tasks} tasks calls/s':>20}")
        for name in clients:
            print(f"{name:46} {pct(lat[name], .5) * 1e6:8.0f} {pct(lat[name], .99) * 1e6:8.0f} "
                  f"{statistics.median(thr[name]):20.0f}")
        await ours.close()
        await plain.close()
        await plan.close()
    finally:
        gw.terminate()
        gw.wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokerkit", default=os.environ.get("BROKERKIT", "bin/brokerkit"))
    ap.add_argument("--n", type=int, default=1000, help="sequential pings per round")
    ap.add_argument("--tasks", type=int, default=64, help="concurrent tasks")
    ap.add_argument("--per-task", type=int, default=50, help="pings per task per round")
    ap.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(ap.parse_args()))
