"""The plan's robustness lines: the worker killed or frozen mid-call, the gateway dropped and restarted, a client
id in use, a call cancelled by asyncio.wait_for, connect_ibkr_robust's retries and breaker."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

import brokerkit
from conftest import alive, script

DEMO = script()
N_POSITIONS = len(DEMO["positions"])


async def wait_until(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def in_flight(client: brokerkit.Client) -> None:
    """Waits until a request is written to the worker and not yet answered."""
    await wait_until(lambda: client._worker is not None and len(client._worker._pending) > 0, 5, "a call in flight")


async def collect(client: brokerkit.Client, into: list) -> None:
    async for ev in client.events():
        into.append(ev)


@pytest.mark.asyncio
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["kill-9", "SIGSTOP"])
async def test_worker_dies_or_freezes_mid_call(brokerkit_bin, make_gateway, sig):
    gw = make_gateway(reply_delay="500ms")
    client = brokerkit.Client(brokerkit_bin, health_interval=0.2, health_timeout=0.5)
    events: list = []
    await client.start()
    watcher = asyncio.ensure_future(collect(client, events))
    try:
        await client.connect(gw.host, gw.port, client_id=11)
        first = client.pid
        call = asyncio.ensure_future(client.positions(timeout=20))
        await in_flight(client)
        os.kill(first, sig)
        t0 = time.monotonic()
        positions = await call  # retried on a new worker, reconnected with the last parameters
        assert len(positions) == N_POSITIONS
        assert client.pid != first and client.restarts == 1 and client.reconnects >= 1
        assert client.state is brokerkit.State.CONNECTED
        assert time.monotonic() - t0 < 10
        assert not alive(first), "the old worker was not reaped"
        assert await client.accounts() == DEMO["accounts"]  # the next call too
        kinds = [e.kind for e in events]
        assert "worker_exited" in kinds and kinds.index("worker_exited") < kinds.index("worker_started")
        if sig == signal.SIGSTOP:
            assert "worker_frozen" in kinds
        states = [e.state for e in events if e.kind == "state"]
        assert states[-2:] == ["reconnecting", "connected"]
    finally:
        await client.close()
        watcher.cancel()


@pytest.mark.asyncio
async def test_gateway_drop_and_restart(brokerkit_bin, gateway):
    client = brokerkit.Client(brokerkit_bin)
    events: list = []
    await client.start()
    watcher = asyncio.ensure_future(collect(client, events))
    try:
        await client.connect(gateway.host, gateway.port, client_id=12)
        pid = client.pid
        gateway.restart()  # every connection drops; a new gateway serves on the same port
        await wait_until(lambda: any(e.kind == "connection_restored" for e in events), 20, "connection_restored")
        assert len(await client.positions(timeout=20)) == N_POSITIONS
        assert client.pid == pid, "the robust worker reconnected by itself"
        assert client.state is brokerkit.State.CONNECTED and client.reconnects >= 1
        lost = [e for e in events if e.kind == "connection_lost"]
        assert lost and lost[0].ib_code == 0
        assert [e.state for e in events if e.kind == "state"][-2:] == ["reconnecting", "connected"]
    finally:
        await client.close()
        watcher.cancel()


@pytest.mark.asyncio
async def test_plain_worker_gateway_restart(brokerkit_bin, gateway):
    """Without --robust in the worker, this client reconnects by itself after the drop."""
    client = brokerkit.Client(brokerkit_bin, robust_worker=False, backoff_base=0.1)
    await client.start()
    try:
        await client.connect(gateway.host, gateway.port, client_id=13)
        gateway.restart()
        assert len(await client.positions(timeout=20)) == N_POSITIONS
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_client_id_in_use(brokerkit_bin, gateway):
    async with brokerkit.Client(brokerkit_bin) as holder, \
            brokerkit.Client(brokerkit_bin) as same, \
            brokerkit.Client(brokerkit_bin, client_id_policy="next", client_id_span=3) as moving:
        await holder.connect(gateway.host, gateway.port, client_id=21)
        with pytest.raises(brokerkit.ClientIDInUse) as exc:
            await same.connect(gateway.host, gateway.port, client_id=21)
        assert exc.value.code == "client_id_in_use" and exc.value.ib_code == 326
        assert same.state is brokerkit.State.DISCONNECTED
        info = await moving.connect(gateway.host, gateway.port, client_id=21)  # moves on to 22
        assert info.accounts == DEMO["accounts"]
        assert await moving.accounts() == DEMO["accounts"]
    plan = brokerkit.SubprocessIBKRClient(brokerkit_bin)
    async with brokerkit.SubprocessIBKRClient(brokerkit_bin) as first:
        assert await first.connect(gateway.host, gateway.port, client_id=23)
        async with plan:
            assert await plan.connect(gateway.host, gateway.port, client_id=23) is False
            assert isinstance(plan.last_error, brokerkit.ClientIDInUse)


@pytest.mark.asyncio
async def test_call_cancelled_by_wait_for(brokerkit_bin, make_gateway):
    gw = make_gateway(reply_delay="400ms")
    async with brokerkit.Client(brokerkit_bin, health_interval=0.2, health_timeout=2) as client:
        await client.connect(gw.host, gw.port, client_id=31)
        pid = client.pid
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.positions(), 0.1)
        assert client._worker._pending == {}, "the abandoned request is forgotten"
        # The worker was told to cancel and keeps serving; the late answer never reaches anyone.
        got = await asyncio.gather(client.accounts(), client.positions())
        assert got[0] == DEMO["accounts"] and len(got[1]) == N_POSITIONS
        assert client.pid == pid and client.restarts == 0


@pytest.mark.asyncio
async def test_connect_ibkr_robust(brokerkit_bin, gateway):
    breaker = brokerkit.CircuitBreaker(threshold=2, cooldown=60)
    for _ in range(1):
        with pytest.raises(brokerkit.GatewayUnreachable):
            await brokerkit.connect_ibkr_robust("127.0.0.1", 1, 41, binary=brokerkit_bin, max_retries=2,
                                                base_delay=0.01, timeout=2, breaker=breaker)
    assert breaker.state is brokerkit.BreakerState.OPEN
    t0 = time.monotonic()
    with pytest.raises(brokerkit.CircuitOpen):
        await brokerkit.connect_ibkr_robust("127.0.0.1", 1, 41, binary=brokerkit_bin, breaker=breaker)
    assert time.monotonic() - t0 < 0.5, "an open breaker fails at once"
    ib = await brokerkit.connect_ibkr_robust(gateway.host, gateway.port, 42, binary=brokerkit_bin,
                                             breaker=brokerkit.CircuitBreaker())
    try:
        assert await ib.get_accounts() == DEMO["accounts"]
    finally:
        await ib.stop()


def test_breaker_half_open():
    now = [0.0]
    b = brokerkit.CircuitBreaker(threshold=2, cooldown=5, clock=lambda: now[0])
    b.failure()
    b.allow()
    b.failure()
    with pytest.raises(brokerkit.CircuitOpen):
        b.allow()
    now[0] = 5.0
    assert b.state is brokerkit.BreakerState.HALF_OPEN
    b.allow()  # the probe
    with pytest.raises(brokerkit.CircuitOpen):
        b.allow()  # only one
    b.failure()
    assert b.state is brokerkit.BreakerState.OPEN
    now[0] = 10.0
    b.allow()
    b.success()
    assert b.state is brokerkit.BreakerState.CLOSED


@pytest.mark.asyncio
async def test_only_idempotent_calls_are_retried(brokerkit_bin, make_gateway, monkeypatch):
    """A call that the table does not name idempotent fails with the worker's death instead of being repeated."""
    monkeypatch.setattr(brokerkit.client, "IDEMPOTENT_COMMANDS",
                        brokerkit.IDEMPOTENT_COMMANDS - {"get_positions"})
    gw = make_gateway(reply_delay="500ms")
    async with brokerkit.Client(brokerkit_bin, health_interval=0.2, health_timeout=0.5) as client:
        await client.connect(gw.host, gw.port, client_id=14)
        first = client.pid
        call = asyncio.ensure_future(client.positions(timeout=20))
        await in_flight(client)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(brokerkit.WorkerExited) as exc:
            await call
        assert exc.value.returncode == -signal.SIGKILL and "SIGKILL" in str(exc.value)
        assert await client.accounts(timeout=20) == DEMO["accounts"]  # idempotent: waits for the new worker
        assert client.pid != first
