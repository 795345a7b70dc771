"""Market data through the worker: contract details, snapshots, bars and the market data type, exact Decimals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import brokerkit
from conftest import script

DEMO = script()
AAPL = next(i for i in DEMO["instruments"] if i["contract"]["symbol"] == "AAPL" and i["contract"]["sec_type"] == "STK")


@pytest.mark.asyncio
async def test_market_data(brokerkit_bin, gateway):
    async with brokerkit.Client(brokerkit_bin) as client:
        await client.connect(gateway.host, gateway.port, client_id=71)
        details = await client.contract_details("AAPL")
        assert len(details) == 1
        d = details[0]
        assert d.contract.con_id == AAPL["contract"]["con_id"] and d.long_name == AAPL["long_name"]
        assert d.min_tick == Decimal(AAPL["min_tick"]) and type(d.min_tick) is Decimal
        both = await client.contract_details({"symbol": "AAPL"})
        assert [x.contract.sec_type for x in both] == ["STK", "OPT"]
        assert both[1].contract.strike == Decimal("200")
        with pytest.raises(brokerkit.NotFound) as e:
            await client.contract_details("NOSUCH")
        assert e.value.ib_code == 200

        q = await client.snapshot(brokerkit.Contract(con_id=AAPL["contract"]["con_id"], symbol="", sec_type=""))
        want = AAPL["quote"]
        assert (q.bid, q.ask, q.last, q.volume) == tuple(Decimal(want[k]) for k in ("bid", "ask", "last", "volume"))
        assert type(q.volume) is Decimal and q.market_data_type == "live" and not q.halted
        assert q.last_time is not None and q.time.tzinfo is not None
        assert (await client.snapshot({"symbol": "GME", "sec_type": "STK"})).halted
        with pytest.raises(brokerkit.NotSubscribed) as e:
            await client.snapshot({"symbol": "IBM", "sec_type": "STK"})
        assert e.value.ib_code == 10089
        await client.set_market_data_type("delayed")
        assert (await client.snapshot({"symbol": "IBM", "sec_type": "STK"})).market_data_type == "delayed"
        with pytest.raises(brokerkit.InvalidArgument):
            await client.set_market_data_type("sometimes")

        end = dt.datetime(2026, 12, 1, 21, 0, tzinfo=dt.timezone.utc)
        bars = await client.historical_bars("AAPL", "1 D", "1 hour", use_rth=True, end=end)
        assert [b.time.hour for b in bars] == [15, 16, 17, 18, 19, 20]
        assert all(type(b.close) is Decimal and b.low <= b.close <= b.high for b in bars)
        again = await client.historical_bars("AAPL", "1 D", "1 hour", use_rth=True, end=end.replace(hour=20))
        assert again != bars
        with pytest.raises(brokerkit.InvalidArgument):
            await client.historical_bars("AAPL", "1 D", "7 mins", end=end)
