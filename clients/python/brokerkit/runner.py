"""The plan's runner: ``python -m brokerkit.runner --symbols AAPL``.

Keeps a session through :class:`brokerkit.Client` (worker restarts, reconnection, retries) and prints one JSON
line per tick with the fields of ``brokerkit run`` (cmd/brokerkit/runner.go): ts, ok, latency_ms, state, breaker,
restarts, reconnects, worker_pid, error, error_code (only on failure), positions (of the given symbols, each
in the worker's JSON shape; null on failure), net_liquidation (per account, {value, currency}; null on failure)
and, with ``--symbols``, quotes (per symbol, the newest bid, ask and last of its quote stream, with time, gap or
error as ``brokerkit run`` reports them; only on success). Without ``--host`` it starts
``brokerkit gateway`` (the fake IB Gateway) on a free port and uses it, as ``brokerkit run`` does. SIGINT and
SIGTERM stop it cleanly: the session is disconnected and no worker or gateway process is left; exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import json
import logging
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any, Optional, Sequence

from .client import Client, find_binary
from .errors import BrokerError
from .quotes import QuoteStream


def go_time(t: _dt.datetime) -> str:
    """RFC 3339 in UTC with the fraction's trailing zeros trimmed, as Go's time.Time marshals."""
    s = t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return s + "Z"


def _json_default(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


class QuoteBoard:
    """The quote streams of ``--symbols`` and their newest values, as ``brokerkit run`` keeps them
    (cmd/brokerkit/runquotes.go): a symbol whose stream failed or ended is subscribed again at the next tick."""

    def __init__(self, symbols: set) -> None:
        self.symbols = sorted(symbols)
        self._latest: dict = {s: {"bid": "", "ask": "", "last": ""} for s in self.symbols}
        self._tasks: dict = {}
        self._stopping = False

    async def ensure(self, client: Client, timeout: float) -> None:
        """Subscribes every symbol without a live stream; a refusal is its error until the next tick."""
        for sym in self.symbols:
            if sym in self._tasks:
                continue
            try:
                stream = await client.subscribe_quotes(sym, timeout)
            except BrokerError as e:
                self._latest[sym]["error"] = str(e) or type(e).__name__
                continue
            self._tasks[sym] = asyncio.ensure_future(self._follow(sym, stream))

    async def _follow(self, sym: str, stream: QuoteStream) -> None:
        try:
            async for u in stream:
                v = self._latest[sym]
                v.pop("error", None)
                v["gap"] = u.gap
                if u.quote.market_data_type:  # not a bare gap marker: fresh values
                    q = u.quote
                    v.update(bid=format(q.bid, "f"), ask=format(q.ask, "f"), last=format(q.last, "f"),
                             time=go_time(q.time), gap="")
        finally:
            self._tasks.pop(sym, None)
            if not self._stopping:
                self._latest[sym]["error"] = "the quote stream ended; subscribing again at the next tick"
            with contextlib.suppress(BaseException):
                await stream.aclose()

    def report(self) -> dict:
        """Each symbol's newest quote, in the field order of ``brokerkit run``."""
        out = {}
        for sym in self.symbols:
            v = self._latest[sym]
            out[sym] = {k: v[k] for k in ("bid", "ask", "last", "time", "gap", "error") if v.get(k)
                        or k in ("bid", "ask", "last")}
        return out

    async def close(self) -> None:
        self._stopping = True
        for t in list(self._tasks.values()):
            t.cancel()
            with contextlib.suppress(BaseException):
                await t


async def tick(client: Client, params: dict, want: set, interval: float,
               board: Optional[QuoteBoard] = None) -> dict:
    """One tick: connect if needed (and subscribe the quotes of --symbols), then positions and NetLiquidation;
    never raises a BrokerError."""
    start = time.perf_counter()
    t: dict = {"ts": go_time(_dt.datetime.now(_dt.timezone.utc)), "ok": False, "latency_ms": 0.0}
    positions: Optional[list] = None
    netliq: Optional[dict] = None
    err: Optional[BaseException] = None
    budget = max(interval, 5.0)
    try:
        async def body() -> None:
            nonlocal positions, netliq
            if not client.session_wanted:
                await client.connect(**params)
            if board is not None:
                await board.ensure(client, budget)
            pos = await client.positions()
            summary = await client.account_summary(["NetLiquidation"])
            positions = [position_json(p) for p in pos if not want or p.contract.symbol in want]
            netliq = {}
            for s in summary:
                v = s.values.get("NetLiquidation")
                if v is not None:
                    netliq[s.account] = {"value": v.value, "currency": v.currency}
        await asyncio.wait_for(body(), budget)
    except (BrokerError, asyncio.TimeoutError) as e:
        err = e
    t["latency_ms"] = round((time.perf_counter() - start) * 1000, 3)
    t["ok"] = err is None
    t.update({"state": str(client.state), "breaker": str(client.breaker.state), "restarts": client.restarts,
              "reconnects": client.reconnects, "worker_pid": client.pid or 0,
              "error": "" if err is None else (str(err) or type(err).__name__)})
    if err is not None:
        t["error_code"] = err.code if isinstance(err, BrokerError) else "deadline_exceeded"
        positions, netliq = None, None
    t["positions"] = positions
    t["net_liquidation"] = netliq
    if board is not None and err is None:
        t["quotes"] = board.report()
    return t


def position_json(p: Any) -> dict:
    """A position in the shape of the worker's and ``brokerkit run``'s JSON (decimals as exact strings)."""
    c = p.contract
    return {"account": p.account,
            "contract": {"con_id": c.con_id, "symbol": c.symbol, "sec_type": c.sec_type, "expiry": c.expiry,
                         "strike": c.strike, "right": c.right, "multiplier": c.multiplier, "exchange": c.exchange,
                         "currency": c.currency, "local_symbol": c.local_symbol, "trading_class": c.trading_class},
            "quantity": p.quantity, "avg_cost": p.avg_cost}


def start_gateway(binary: str, script: Optional[str]) -> tuple:
    """Starts ``brokerkit gateway`` on a free port; returns (process, host, port)."""
    argv = [binary, "gateway", "--listen", "127.0.0.1:0"] + (["--script", script] if script else [])
    gw = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    line = gw.stdout.readline() if gw.stdout else ""
    m = re.search(r"listening on ([0-9.]+):(\d+)", line)
    if not m:
        gw.kill()
        gw.wait()
        raise SystemExit(f"brokerkit.runner: the gateway did not start (printed {line!r})")
    return gw, m.group(1), int(m.group(2))


async def run(args: argparse.Namespace) -> int:
    binary = find_binary(args.binary)
    gw = None
    host, port = args.host, args.port
    if not host:
        gw, host, port = start_gateway(binary, args.script)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    want = {s.strip() for s in args.symbols.split(",") if s.strip()}
    params = {"host": host, "port": port, "client_id": args.client_id, "readonly": True, "timeout": args.timeout}
    client = Client(binary, health_interval=args.interval)
    board = QuoteBoard(want) if want else None
    ends = loop.time() + args.duration if args.duration > 0 else None
    try:
        await client.start()
        while not stop.is_set():
            ticking = asyncio.ensure_future(tick(client, params, want, args.interval, board))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({ticking, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                ticking.cancel()
                with contextlib.suppress(BaseException):
                    await ticking
                break
            sys.stdout.write(json.dumps(ticking.result(), default=_json_default, separators=(",", ":")) + "\n")
            sys.stdout.flush()
            wait = args.interval if ends is None else min(args.interval, ends - loop.time())
            if wait <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if ends is not None and loop.time() >= ends:
                break
    finally:
        if board is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(board.close(), 5)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(client.close(), 5)
        if gw is not None:
            gw.terminate()
            try:
                gw.wait(5)
            except subprocess.TimeoutExpired:
                gw.kill()
                gw.wait()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m brokerkit.runner", description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", default="", help="comma-separated symbols (US stocks) whose positions and live "
                    "bid/ask/last each line reports (default: all positions, no quotes)")
    ap.add_argument("--host", default="", help="gateway host (default: start the fake gateway)")
    ap.add_argument("--port", type=int, default=4002, help="gateway API port")
    ap.add_argument("--client-id", type=int, default=1, help="API client id")
    ap.add_argument("--timeout", type=float, default=10.0, help="connect timeout in seconds")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between ticks")
    ap.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until SIGINT/SIGTERM)")
    ap.add_argument("--binary", default=None, help="the brokerkit binary (default $BROKERKIT or brokerkit on $PATH)")
    ap.add_argument("--script", default=None, help="JSON script for the started fake gateway (only without --host)")
    ap.add_argument("-v", action="store_true", help="log to stderr")
    args = ap.parse_args(argv)
    if args.interval <= 0:
        ap.error("--interval must be positive")
    logging.basicConfig(level=logging.DEBUG if args.v else logging.CRITICAL, stream=sys.stderr)
    try:
        return asyncio.run(run(args))
    except BrokerError as e:
        print(f"brokerkit.runner: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
