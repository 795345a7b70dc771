"""Orders: place, modify, cancel with Decimals and typed errors; a lost answer is OutcomeUnknown, never a retry;
order events are queued with a gap on overflow."""

from __future__ import annotations

import asyncio
import pathlib
from decimal import Decimal

import pytest

import brokerkit

FAKE = str(pathlib.Path(__file__).resolve().parent / "fake_order_worker.py")


def fake_client(**kw) -> brokerkit.Client:
    return brokerkit.Client(FAKE, robust_worker=False, health_interval=0, backoff_base=0.01, **kw)


@pytest.mark.asyncio
async def test_place_order_sends_exact_decimals_and_typed_errors():
    async with fake_client() as client:
        await client.connect(client_id=1)
        placed = await client.place_order("echo-1", "AAPL", "buy", Decimal("0.1"), "LMT", limit_price="150.25")
        assert placed == brokerkit.PlacedOrder(order_id=1, key="echo-1", status="0.1@150.25", perm_id=1001)
        with pytest.raises(TypeError):
            await client.place_order("k-2", "AAPL", "BUY", 0.1)  # a float is not exact
        with pytest.raises(brokerkit.ReadOnly):
            await client.place_order("readonly", "AAPL", "BUY", 1)
        with pytest.raises(brokerkit.Rejected) as e:
            await client.place_order("reject", "AAPL", "BUY", 1)
        assert e.value.ib_code == 201 and e.value.code == "rejected"
        with pytest.raises(brokerkit.WorkerUnavailable) as u:  # the worker's own answer: not OutcomeUnknown
            await client.place_order("unavailable", "AAPL", "BUY", 1)
        assert not isinstance(u.value, brokerkit.OutcomeUnknown)


@pytest.mark.asyncio
async def test_worker_death_after_place_order_is_outcome_unknown():
    async with fake_client() as client:
        await client.connect(client_id=1)
        pid = client.pid
        with pytest.raises(brokerkit.OutcomeUnknown) as e:
            await client.place_order("die", "AAPL", "BUY", 1)
        assert isinstance(e.value.__cause__, brokerkit.WorkerExited)
        # Never retried: the next order goes to the restarted worker and is placed once.
        placed = await client.place_order("after", "AAPL", "BUY", 1, timeout=10)
        assert placed.key == "after" and client.pid != pid


@pytest.mark.asyncio
async def test_timeout_after_place_order_is_outcome_unknown():
    async with fake_client() as client:
        await client.connect(client_id=1)
        with pytest.raises(brokerkit.OutcomeUnknown):
            await client.place_order("hang", "AAPL", "BUY", 1, timeout=0.3)


@pytest.mark.asyncio
async def test_order_events_are_queued_with_a_gap_on_overflow():
    async with fake_client() as client:
        await client.connect(client_id=1)
        events = await client.orders()
        await client.place_order("burst:1030", "AAPL", "BUY", 1)  # 1030 events before we read any
        await client.place_order("marker", "AAPL", "BUY", 1)  # a round trip after the burst: all of it was read
        got = [await asyncio.wait_for(events.__anext__(), 5) for _ in range(1024)]
        assert [e.order.order_id for e in got] == list(range(1, 1025))
        assert got[0].kind == "status" and got[0].order.total_quantity == Decimal("0.5")
        await client.place_order("burst:1", "AAPL", "BUY", 1)
        gap = await asyncio.wait_for(events.__anext__(), 5)
        assert gap.kind == "gap" and "6 order events dropped" in gap.gap
        nxt = await asyncio.wait_for(events.__anext__(), 5)
        assert nxt.kind == "status" and nxt.order.order_id == 1
        await events.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("robust_worker", [False, True])
async def test_orders_on_the_fake_gateway(brokerkit_bin, gateway, robust_worker):
    """The real worker (IBKR adapter, plain or inside robust) against `brokerkit gateway`: a market order fills at
    the scripted price, the stream reports it, the key is reused, a read-only session refuses."""
    cid = 61 if robust_worker else 63
    async with brokerkit.Client(brokerkit_bin, robust_worker=robust_worker) as client:
        await client.connect(gateway.host, gateway.port, client_id=cid)
        events = await client.orders()
        placed = await client.place_order("py-1", "AAPL", "BUY", Decimal("2"))
        assert placed.key == "py-1" and placed.order_id > 0
        seen = []
        while not any(e.kind == "status" and e.order.status == "Filled" for e in seen):
            seen.append(await asyncio.wait_for(events.__anext__(), 10))
        fills = [e.fill for e in seen if e.kind == "fill"]
        assert fills and fills[0].shares == Decimal("2") and fills[0].order_ref == "py-1"
        again = await client.place_order("py-1", "AAPL", "BUY", Decimal("2"))
        assert again.existing and again.order_id == placed.order_id
        with pytest.raises(brokerkit.Rejected):
            await client.place_order("py-2", "AAPL", "BUY", 1, "LMT", limit_price="150.001")
        with pytest.raises(brokerkit.NotFound):
            await client.cancel_order(999999)
        await events.aclose()
    async with brokerkit.Client(brokerkit_bin, robust_worker=robust_worker) as client:
        await client.connect(gateway.host, gateway.port, client_id=cid + 1, readonly=True)
        with pytest.raises(brokerkit.ReadOnly):
            await client.place_order("py-3", "AAPL", "BUY", 1)
