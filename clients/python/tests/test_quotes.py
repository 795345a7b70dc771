"""Quote streams (subscribe_quotes): exact Decimals, gaps and dropped counts, conflation for a consumer that does
not read, unsubscribing, and the end of the stream when the worker dies. Against a stand-in worker
(quote_worker.py) that writes the protocol's quote lines, so that any number of lines can be produced."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
import time
import tracemalloc
from decimal import Decimal

import pytest

import brokerkit
from conftest import PKG


@pytest.fixture
def quote_worker(tmp_path) -> str:
    """An executable that runs quote_worker.py with this Python (the client runs ``BINARY worker ...``)."""
    path = tmp_path / "quote-worker"
    path.write_text(f"#!/bin/sh\nexec {sys.executable} {PKG / 'tests' / 'quote_worker.py'} \"$@\"\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def started(binary: str) -> brokerkit.Client:
    client = brokerkit.Client(binary, health_interval=0)
    await client.start()
    await client.connect("127.0.0.1", 4002, client_id=1)
    return client


async def live_streams(client: brokerkit.Client) -> list:
    return (await client.request("streams", 10))["live"]


@pytest.mark.asyncio
async def test_quote_stream_values(quote_worker):
    client = await started(quote_worker)
    try:
        async with client.subscribe_quotes("AAPL") as quotes:
            assert quotes.name is not None and await live_streams(client) == [quotes.name]
            first = await asyncio.wait_for(quotes.__anext__(), 10)
            q = first.quote
            assert (q.bid, q.ask, q.last, q.volume) == (Decimal("0.01"), Decimal("0.02"), Decimal("0.015"),
                                                        Decimal("000.5"))
            assert all(type(x) is Decimal for x in (q.bid, q.ask, q.last, q.bid_size, q.volume, q.close))
            assert q.contract.con_id == 265598 and q.market_data_type == "live" and q.time.tzinfo is not None
            assert (first.gap, first.dropped) == ("", 0)

            await client.request("push", 10, subscription=quotes.name, n=1, dropped=4, gap_at=1, gap="session lost")
            u = await asyncio.wait_for(quotes.__anext__(), 10)
            assert (u.quote.bid, u.quote.volume, u.gap, u.dropped) == (Decimal("1.01"), Decimal("100.5"),
                                                                       "session lost", 4)
        assert quotes.ended and await live_streams(client) == []  # leaving the block unsubscribed

        with pytest.raises(brokerkit.NotFound) as e:
            await client.subscribe_quotes("NOSUCH")
        assert e.value.ib_code == 200
        await client.disconnect()
        with pytest.raises(brokerkit.NotConnected):
            async with client.subscribe_quotes("AAPL"):
                pass
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_quote_stream_never_read(quote_worker):
    """100 000 quote lines for a consumer that does not read: other calls are answered in between, the client
    holds one update, and the next read is the newest quote with every line and the worker's drops counted."""
    chunks, per = 20, 5_000
    client = await started(quote_worker)
    try:
        quotes = await client.subscribe_quotes("AAPL")
        slowest = 0.0
        for c in range(chunks):
            if c == chunks - 1:  # traced for the last 5 000 lines only: tracing slows Python fivefold
                tracemalloc.start()
            gap = {"gap_at": 1, "gap": "worker restarted"} if c == chunks // 2 else {}
            await client.request("push", 60, subscription=quotes.name, n=per, dropped=2, **gap)
            t0 = time.perf_counter()
            await client.ping(10)
            slowest = max(slowest, time.perf_counter() - t0)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert slowest < 5, f"a ping took {slowest:.2f}s while the stream was unread"
        # Queueing 5 000 updates would take about 10 MiB; conflated, the client holds one.
        assert peak < 2 << 20, f"the client allocated up to {peak >> 10} KiB for 5 000 unread lines"

        u = await asyncio.wait_for(quotes.__anext__(), 10)
        assert u.quote.bid == Decimal(f"{per}.01") and u.gap == "worker restarted"
        # The first quote and chunks*per lines, each standing for 3 changes: all but u itself were dropped.
        assert u.dropped == 1 + chunks * per * 3 - 1
        await client.request("push", 10, subscription=quotes.name, n=1)  # waits, untaken, as the stream closes
        await quotes.aclose()
        with pytest.raises(StopAsyncIteration):
            await quotes.__anext__()
        assert await live_streams(client) == []
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_quote_stream_ends_when_the_worker_dies(quote_worker):
    client = await started(quote_worker)
    try:
        async with client.subscribe_quotes({"symbol": "AAPL", "sec_type": "STK"}) as quotes:
            await asyncio.wait_for(quotes.__anext__(), 10)
            os.kill(client.pid, signal.SIGKILL)

            async def drain() -> int:
                return len([u async for u in quotes])

            assert await asyncio.wait_for(drain(), 20) == 0
    finally:
        await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("robust", [False, True], ids=["plain", "robust"])
async def test_quote_stream_through_the_real_worker(brokerkit_bin, gateway, robust):
    """The brokerkit worker over the fake gateway, plain and --robust: the stream fills the book the snapshot shows
    (one update per tick, so the first updates may hold only some fields; AAPL walks at 10 ticks/s, so only the
    close, which does not walk, must equal the snapshot's), then AAPL moves, and leaving the block unsubscribes."""
    async with brokerkit.Client(brokerkit_bin, robust_worker=robust) as client:
        await client.connect(gateway.host, gateway.port, client_id=81)
        snap = await client.snapshot("AAPL")
        async with client.subscribe_quotes("AAPL") as quotes:

            async def full_book() -> brokerkit.QuoteUpdate:
                async for u in quotes:
                    assert u.gap == "", u
                    if u.quote.bid and u.quote.ask and u.quote.last and u.quote.close:
                        return u
                raise AssertionError("the stream ended")

            first = await asyncio.wait_for(full_book(), 10)
            q = first.quote
            assert q.close == snap.close and snap.close
            assert type(q.bid) is Decimal and q.market_data_type == "live"
            moved = await asyncio.wait_for(quotes.__anext__(), 10)
            assert moved.quote.contract.symbol == "AAPL" and moved.dropped >= 0
            assert (moved.quote.bid, moved.quote.ask, moved.quote.last) != (q.bid, q.ask, q.last) or moved.dropped
        assert quotes.ended
        with pytest.raises(brokerkit.NotSubscribed) as e:
            await client.subscribe_quotes({"symbol": "IBM", "sec_type": "STK"})
        assert e.value.ib_code == 10089
        assert await client.ping(10) >= 0


@pytest.mark.asyncio
async def test_quote_stream_survives_a_gateway_restart(brokerkit_bin, gateway):
    """Through a --robust worker the stream outlives the gateway: after a restart the iterator goes on with a gap
    marker (its reason in ``gap``), then fresh quotes."""
    async with brokerkit.Client(brokerkit_bin) as client:
        await client.connect(gateway.host, gateway.port, client_id=82)
        async with client.subscribe_quotes("AAPL") as quotes:
            await asyncio.wait_for(quotes.__anext__(), 10)
            await asyncio.get_running_loop().run_in_executor(None, gateway.restart)

            async def gap_then_fresh() -> tuple:
                gap = None
                async for u in quotes:
                    if u.gap and gap is None:
                        gap = u
                        if u.quote.market_data_type:  # merged into the first fresh value
                            return gap, u
                    elif gap is not None and u.quote.market_data_type == "live":
                        return gap, u
                raise AssertionError("the stream ended")

            gap, fresh = await asyncio.wait_for(gap_then_fresh(), 60)
            assert gap.gap and fresh.quote.contract.symbol == "AAPL" and type(fresh.quote.bid) is Decimal
            assert not quotes.ended
