"""An asyncio client of the brokerkit stdiojson worker, using only the standard library.

The worker (``brokerkit worker``) holds the connection to Interactive Brokers in a child process and speaks
JSON lines on its stdin/stdout; the protocol is specified in ``transport/stdiojson/PROTOCOL.md``, from which
this file is written. Unlike a client that serialises every call behind one lock and reads "the next line"
as the answer, this one tags each request with an id and matches answers by id, so many calls are in flight
at once and a call that times out never desynchronises the stream.

    async with SubprocessIBKRClient(["brokerkit", "worker"]) as ib:
        info = await ib.connect("127.0.0.1", 4002, client_id=1)
        for p in await ib.get_positions():
            print(p["account"], p["contract"]["symbol"], p["quantity"])   # quantity is a decimal.Decimal
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import itertools
import json
import logging
import os
import signal
from typing import Any, Iterable, Optional, Sequence

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 64 << 20

log = logging.getLogger("brokerkit")


class BrokerError(Exception):
    """An error response from the worker, or the worker's death.

    ``code`` is the stable wire code (see PROTOCOL.md); match on it or on the subclasses, never on the text.
    ``ib_code`` is Interactive Brokers' numeric code when the gateway gave one, else 0.
    """

    code = "internal"

    def __init__(self, message: str, code: Optional[str] = None, ib_code: int = 0):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.ib_code = ib_code

    @classmethod
    def from_response(cls, resp: dict) -> "BrokerError":
        code = resp.get("code") or "internal"
        return _ERRORS.get(code, BrokerError)(resp.get("error") or code, code, int(resp.get("ib_code") or 0))


class NotConnected(BrokerError):
    code = "not_connected"


class AlreadyConnected(BrokerError):
    code = "already_connected"


class ClientIDInUse(BrokerError):
    code = "client_id_in_use"


class GatewayUnreachable(BrokerError):
    code = "gateway_unreachable"


class WorkerUnavailable(BrokerError):
    """The worker process is dead or not answering; every call in flight fails with it at once."""

    code = "unavailable"


class ProtocolError(BrokerError):
    code = "protocol"


class Unsupported(BrokerError):
    code = "unsupported"


class InvalidArgument(BrokerError):
    code = "invalid_argument"


_ERRORS = {c.code: c for c in (NotConnected, AlreadyConnected, ClientIDInUse, GatewayUnreachable,
                               WorkerUnavailable, ProtocolError, Unsupported, InvalidArgument)}


def _decimals(position: dict) -> dict:
    """Turns the decimal strings of a position into decimal.Decimal, exactly."""
    position["quantity"] = decimal.Decimal(position["quantity"])
    position["avg_cost"] = decimal.Decimal(position["avg_cost"])
    position["contract"]["strike"] = decimal.Decimal(position["contract"]["strike"])
    return position


class SubprocessIBKRClient:
    """Runs a stdiojson worker as a child process and calls it; safe for concurrent use by many tasks."""

    def __init__(self, argv: Sequence[str], *, env: Optional[dict] = None, grace: float = 2.0):
        self.argv = list(argv)
        self.env = env
        self.grace = grace
        self.pid: Optional[int] = None
        self.returncode: Optional[int] = None
        self._proc: Optional[asyncio.subprocess.Process] = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._events: asyncio.Queue = asyncio.Queue(maxsize=1024)
        self._dead: Optional[BrokerError] = None
        self._tasks: list[asyncio.Task] = []
        self._closed = False

    async def __aenter__(self) -> "SubprocessIBKRClient":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def start(self, timeout: float = 10.0) -> dict:
        """Starts the worker and says hello; returns the hello data (protocol, pid, events, commands)."""
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env, limit=MAX_LINE_BYTES, start_new_session=True)
        self.pid = self._proc.pid
        self._tasks = [asyncio.create_task(self._read_stdout()), asyncio.create_task(self._read_stderr())]
        try:
            hello = await self.request("hello", call_timeout=timeout, protocol=PROTOCOL_VERSION, events=True)
        except BaseException:
            await self.close()
            raise
        if hello.get("protocol") != PROTOCOL_VERSION:
            await self.close()
            raise ProtocolError(f"worker speaks protocol {hello.get('protocol')}, this client {PROTOCOL_VERSION}")
        return hello

    async def request(self, command: str, call_timeout: Optional[float] = None, **params: Any) -> Any:
        """Sends one request (params are its fields, see PROTOCOL.md) and returns its data; raises BrokerError,
        or TimeoutError after call_timeout seconds (then the request is canceled in the worker and its late
        answer ignored)."""
        if self._closed:
            raise BrokerError("client is closed", "closed")
        if self._dead is not None:
            raise self._dead
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        line = json.dumps({"id": rid, "command": command, **params}, separators=(",", ":")) + "\n"
        try:
            self._proc.stdin.write(line.encode())
            await self._proc.stdin.drain()
            return await asyncio.wait_for(asyncio.shield(fut), call_timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            if self._pending.pop(rid, None) is not None and self._dead is None:
                self._send_nowait({"id": next(self._ids), "command": "cancel", "target": rid})
            raise
        except (BrokenPipeError, ConnectionResetError) as e:
            self._pending.pop(rid, None)
            await self._wait_dead()
            raise self._dead or WorkerUnavailable(f"write to worker: {e}") from e

    def _send_nowait(self, obj: dict) -> None:
        with contextlib.suppress(Exception):
            self._proc.stdin.write((json.dumps(obj, separators=(",", ":")) + "\n").encode())

    async def _wait_dead(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._tasks[0]), 5)

    async def _read_stdout(self) -> None:
        reader = self._proc.stdout
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError) as e:  # a line over the limit
                log.error("line from worker too long: %s", e)
                break
            if not line:
                break
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                log.warning("ignoring non-JSON line from worker: %.200r", line)
                continue
            if "event" in msg:
                with contextlib.suppress(asyncio.QueueFull):
                    self._events.put_nowait(msg)
                continue
            fut = self._pending.pop(msg.get("id"), None)
            if fut is None or fut.done():
                continue  # an answer to a canceled or abandoned request
            if msg.get("status") == "success":
                fut.set_result(msg.get("data"))
            else:
                fut.set_exception(BrokerError.from_response(msg))
        # The worker closed its stdout: it is exiting or dead. Fail everything at once.
        try:
            rc = await asyncio.wait_for(self._proc.wait(), self.grace)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            rc = await self._proc.wait()
        self.returncode = rc
        how = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
        self._dead = WorkerUnavailable(f"worker (pid {self.pid}) exited: {how}")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(self._dead)
        self._pending.clear()
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait({"event": "connection_lost", "message": str(self._dead)})

    async def _read_stderr(self) -> None:
        wlog = log.getChild("worker")
        async for raw in self._proc.stderr:
            text = raw.decode(errors="replace").rstrip("\n")
            try:
                rec = json.loads(text)
                level = logging.getLevelName(str(rec.get("@level", "info")).upper())
                wlog.log(level if isinstance(level, int) else logging.INFO, "%s %s", rec.get("@message", ""),
                         {k: v for k, v in rec.items() if not k.startswith("@")})
            except (ValueError, AttributeError):
                wlog.info("%s", text)

    async def events(self) -> dict:
        """Waits for the next event (connection_lost, connection_restored, notice)."""
        return await self._events.get()

    async def close(self) -> Optional[int]:
        """Disconnects, closes the worker's stdin, waits the grace period, kills if need be; returns the exit
        status (negative: killed by that signal). Idempotent."""
        if self._proc is None or self._closed:
            return self.returncode
        self._closed = True
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(BrokerError("client closed", "closed"))
        if self._dead is None:
            with contextlib.suppress(Exception):
                self._send_nowait({"id": next(self._ids), "command": "disconnect"})
        with contextlib.suppress(Exception):
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), self.grace)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGKILL)
            await self._proc.wait()
        for t in self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t, self.grace)
        self.returncode = self._proc.returncode
        return self.returncode

    # The Broker port.

    async def connect(self, host: str = "127.0.0.1", port: int = 4002, client_id: int = 0,
                      readonly: bool = False, timeout: float = 10.0) -> dict:
        """Opens the session; returns {"connected": True, "accounts": [...], "server_version": N}."""
        return await self.request("connect", call_timeout=timeout + 5, host=host, port=port, client_id=client_id,
                                  readonly=readonly, timeout=timeout)

    async def disconnect(self, timeout: Optional[float] = 30) -> None:
        await self.request("disconnect", call_timeout=timeout)

    async def get_accounts(self, timeout: Optional[float] = 30) -> list[str]:
        return (await self.request("get_accounts", call_timeout=timeout))["accounts"]

    async def get_positions(self, timeout: Optional[float] = 60) -> list[dict]:
        """Every position; quantity, avg_cost and contract.strike are decimal.Decimal."""
        return [_decimals(p) for p in (await self.request("get_positions", call_timeout=timeout))["positions"]]

    async def get_account_summary(self, tags: Optional[Iterable[str]] = None,
                                  timeout: Optional[float] = 60) -> list[dict]:
        params = {"tags": list(tags)} if tags else {}
        return (await self.request("get_account_summary", call_timeout=timeout, **params))["summaries"]

    async def ping(self, timeout: Optional[float] = 10) -> None:
        await self.request("ping", call_timeout=timeout)
