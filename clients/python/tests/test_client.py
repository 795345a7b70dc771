"""The typed API: Decimals everywhere, clear exceptions, state events."""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal

import pytest

import brokerkit
from brokerkit.types import summary_number
from conftest import script

DEMO = script()


@pytest.mark.asyncio
async def test_typed_api(brokerkit_bin, gateway):
    events: list = []
    async with brokerkit.Client(brokerkit_bin) as client:
        stream = client.events()  # subscribed from here on

        async def collect():
            async for ev in stream:
                events.append(ev)
        watcher = asyncio.ensure_future(collect())
        info = await client.connect(gateway.host, gateway.port, client_id=51)
        assert info == brokerkit.ConnectInfo(accounts=DEMO["accounts"], server_version=DEMO["server_version"])
        positions = await client.positions()
        want = [(p["account"], p["contract"]["con_id"], Decimal(p["quantity"]), Decimal(p["avg_cost"]),
                 Decimal(p["contract"].get("strike", "0"))) for p in DEMO["positions"]]
        assert [(p.account, p.contract.con_id, p.quantity, p.avg_cost, p.contract.strike) for p in positions] == want
        summaries = await client.account_summary(["NetLiquidation", "AccountType", "Cushion"])
        assert [s.account for s in summaries] == DEMO["accounts"]
        for s, w in zip(summaries, DEMO["summary"]):
            nl = s.values["NetLiquidation"]
            assert nl == brokerkit.SummaryValue(Decimal(w["values"]["NetLiquidation"]["value"]),
                                                w["values"]["NetLiquidation"]["currency"])
            assert type(s.values["Cushion"].value) is Decimal
            assert s.values["AccountType"].value == w["values"]["AccountType"]["value"]
        assert await client.ping() > 0
        await client.disconnect()
        with pytest.raises(brokerkit.NotConnected):
            await client.accounts()
        await client.close()
        await asyncio.wait_for(watcher, 5)  # the iterator ends when the client closes
    states = [e.state for e in events if e.kind == "state"]
    assert states == ["connecting", "connected", "disconnected", "closed"]


def test_decimals_are_exact():
    p = brokerkit.Position.from_wire({"account": "A", "contract": {"con_id": 1, "symbol": "X", "sec_type": "STK",
                                                                   "strike": "0.1"},
                                      "quantity": "12345678.1234567", "avg_cost": "0.0001"})
    assert p.quantity == Decimal("12345678.1234567") and p.avg_cost == Decimal("0.0001")
    assert p.contract.strike == Decimal("0.1")
    for bad in (1.5, "1e", "NaN", None):
        with pytest.raises(brokerkit.ProtocolError):
            brokerkit.Position.from_wire({"account": "A", "contract": {"con_id": 1}, "quantity": bad, "avg_cost": "1"})
    assert summary_number("100523.45") == Decimal("100523.45")
    assert summary_number("INDIVIDUAL") == "INDIVIDUAL"
    assert summary_number("Infinity") == "Infinity"


@pytest.mark.asyncio
async def test_missing_binary(tmp_path):
    missing = str(tmp_path / "no-such-brokerkit")
    with pytest.raises(brokerkit.WorkerNotFound) as exc:
        await brokerkit.Client(missing).start()
    assert missing in str(exc.value) and "make build" in str(exc.value)
    with pytest.raises(brokerkit.WorkerNotFound):
        await brokerkit.connect_ibkr_robust(binary=missing, breaker=brokerkit.CircuitBreaker())


def test_no_binary_anywhere(monkeypatch):
    monkeypatch.delenv("BROKERKIT", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(brokerkit.WorkerNotFound, match=r"\$BROKERKIT"):
        brokerkit.find_binary()


@pytest.mark.asyncio
async def test_worker_exit_status(tmp_path):
    fake = tmp_path / "brokerkit"
    fake.write_text("#!/bin/sh\necho 'cannot open the gateway config' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(brokerkit.WorkerExited) as exc:
        await brokerkit.Client(str(fake)).start()
    assert exc.value.returncode == 3
    assert "exit status 3" in str(exc.value) and "cannot open the gateway config" in str(exc.value)


@pytest.mark.asyncio
async def test_protocol_errors_are_typed(brokerkit_bin):
    async with brokerkit.Client(brokerkit_bin) as client:
        with pytest.raises(brokerkit.Unsupported):
            await client.request("launch_rockets")
        with pytest.raises(brokerkit.InvalidArgument):
            await client.connect("127.0.0.1", 99999, client_id=1)
        with pytest.raises(brokerkit.NotConnected):
            await client.ping()
    with pytest.raises(brokerkit.Closed):
        await client.ping()
    assert os.environ.get("BROKERKIT_STDIOJSON_WORKER") is None


@pytest.mark.asyncio
async def test_concurrent_calls_second_connect_and_exit_status(brokerkit_bin, gateway):
    client = brokerkit.Client(brokerkit_bin)
    try:
        await client.start()
        await client.connect(gateway.host, gateway.port, client_id=52)
        results = await asyncio.gather(*([client.ping() for _ in range(20)] + [client.accounts() for _ in range(5)]))
        assert results[-5:] == [DEMO["accounts"]] * 5, "25 concurrent calls each got their own answer"
        with pytest.raises(brokerkit.AlreadyConnected):
            await client.connect(gateway.host, gateway.port, client_id=53)
        assert client.state is brokerkit.State.CONNECTED and client.session_wanted
        assert await client.close() == 0, "the worker exits with status 0 after close"
    finally:
        await client.close()
