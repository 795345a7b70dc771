"""The read side: account updates, executions and orders, every number a Decimal, values as the script gives them."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

import brokerkit
from conftest import script

DEMO = script()


@pytest.mark.asyncio
async def test_read_side(brokerkit_bin, gateway):
    async with brokerkit.Client(brokerkit_bin) as client:
        await client.connect(gateway.host, gateway.port, client_id=52)
        acct = DEMO["accounts"][1]
        u = await client.account_updates(acct)
        assert u.account == acct and len(u.update_time) == 5
        want_values = sorted((k, v["value"], v.get("currency", "")) for s in DEMO["summary"] if s["account"] == acct
                             for k, v in s["values"].items())
        assert [(v.key, v.value, v.currency) for v in u.values] == want_values
        want = [p for p in DEMO["positions"] if p["account"] == acct]
        assert [(p.contract.con_id, p.position, p.avg_cost) for p in u.portfolio] == \
            [(w["contract"]["con_id"], Decimal(w["quantity"]), Decimal(w["avg_cost"])) for w in want]
        marks = {m["con_id"]: m for m in DEMO["marks"] if m["account"] == acct}
        for p in u.portfolio:
            assert all(type(x) is Decimal for x in (p.market_price, p.market_value, p.unrealized_pnl, p.realized_pnl))
            if p.contract.con_id in marks:
                assert p.market_price == Decimal(marks[p.contract.con_id]["market_price"])
                assert p.unrealized_pnl == Decimal(marks[p.contract.con_id].get("unrealized_pnl", "0"))
        with pytest.raises(brokerkit.InvalidArgument):
            await client.account_updates("DU0000000")

        xs = await client.executions()
        assert [(x.exec_id, x.shares, x.price, x.commission) for x in xs] == \
            [(e["exec_id"], Decimal(e["shares"]), Decimal(e["price"]), Decimal(e["commission"]))
             for e in DEMO["executions"]]
        spy = await client.executions(symbol="SPY")
        assert [x.contract.symbol for x in spy] == ["SPY"] and spy[0].realized_pnl == Decimal("12.5")
        assert await client.open_orders() == []
        assert await client.completed_orders() == []


@pytest.mark.asyncio
async def test_account_updates_stream(brokerkit_bin, gateway):
    async with brokerkit.Client(brokerkit_bin) as client:
        await client.connect(gateway.host, gateway.port, client_id=53)
        acct = DEMO["accounts"][0]
        stream = await client.account_updates_stream(acct)
        first = await asyncio.wait_for(stream.__anext__(), 10)
        assert first == await client.account_updates(acct)  # the one-shot is answered from the stream
        assert first.account == acct and len(first.portfolio) == sum(p["account"] == acct for p in DEMO["positions"])
        await stream.aclose()  # unsubscribes
        with pytest.raises(brokerkit.InvalidArgument):
            await client.account_updates_stream("DU0000000")
