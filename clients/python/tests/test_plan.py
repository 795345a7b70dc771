"""The original plan's integration lines: connect, accounts, positions, summary, ping, disconnect, stop."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal

import pytest

import brokerkit
from conftest import alive, script

DEMO = script()


def wire_positions() -> list:
    """The demo script's positions in the worker's wire shape, numbers as Decimals."""
    out = []
    for p in DEMO["positions"]:
        c = p["contract"]
        out.append({"account": p["account"],
                    "contract": {"con_id": c["con_id"], "symbol": c["symbol"], "sec_type": c["sec_type"],
                                 "expiry": c.get("expiry", ""), "strike": Decimal(c.get("strike", "0")),
                                 "right": c.get("right", ""), "multiplier": c.get("multiplier", ""),
                                 "exchange": c.get("exchange", ""), "currency": c.get("currency", ""),
                                 "local_symbol": c.get("local_symbol", ""),
                                 "trading_class": c.get("trading_class", "")},
                    "quantity": Decimal(p["quantity"]), "avg_cost": Decimal(p["avg_cost"])})
    return out


@pytest.mark.asyncio
async def test_plan_client(brokerkit_bin, gateway):
    ib = brokerkit.SubprocessIBKRClient(brokerkit_bin)
    await ib.start()
    pid = ib.pid
    try:
        assert await ib.ping() is False
        assert isinstance(ib.last_error, brokerkit.NotConnected)
        assert await ib.connect(gateway.host, gateway.port, client_id=1) is True
        assert ib.is_connected
        assert await ib.get_accounts() == DEMO["accounts"]
        positions = await ib.get_positions()
        assert positions == wire_positions()
        assert all(type(p["quantity"]) is Decimal and type(p["avg_cost"]) is Decimal
                   and type(p["contract"]["strike"]) is Decimal for p in positions)
        summary = await ib.get_account_summary()
        want = {s["account"]: {tag: {"value": v["value"], "currency": v.get("currency", "")}
                               for tag, v in s["values"].items()} for s in DEMO["summary"]}
        assert list(summary) == DEMO["accounts"]
        for account, values in want.items():
            for tag, v in values.items():
                got = summary[account][tag]
                if tag == "AccountType":
                    assert got == v  # a word stays a string
                else:
                    assert got == {"value": Decimal(v["value"]), "currency": v["currency"]}
                    assert type(got["value"]) is Decimal
        assert await ib.ping() is True
        await ib.disconnect()
        assert await ib.ping() is False
    finally:
        await ib.stop()
    assert not alive(pid)
    assert ib.client.state is brokerkit.State.CLOSED


@pytest.mark.asyncio
async def test_plan_client_connect_failure_is_false(brokerkit_bin):
    async with brokerkit.SubprocessIBKRClient(brokerkit_bin) as ib:
        assert await ib.connect("127.0.0.1", 1, client_id=1, timeout=2) is False
        assert isinstance(ib.last_error, brokerkit.GatewayUnreachable)


def test_plan_lines(brokerkit_bin, gateway):
    """The plan's id-less lines piped into `brokerkit worker` get the plan's shapes, in order, nothing else."""
    lines = [
        {"command": "connect", "host": gateway.host, "port": gateway.port, "client_id": 4},
        {"command": "get_accounts"},
        {"command": "get_positions"},
        {"command": "get_account_summary", "tags": ["NetLiquidation"]},
        "this is not json",
        {"command": "ping"},
        {"command": "disconnect"},
    ]
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    out = subprocess.run([brokerkit_bin, "worker"], input=text, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(got) == len(lines)
    assert got[0] == {"status": "success", "data": {"connected": True, "accounts": DEMO["accounts"],
                                                     "server_version": DEMO["server_version"]}}
    assert got[1] == {"status": "success", "data": {"accounts": DEMO["accounts"]}}
    assert [brokerkit.Position.from_wire(p).to_dict() for p in got[2]["data"]["positions"]] == wire_positions()
    assert got[3] == {"status": "success", "data": {"summaries": [
        {"account": s["account"], "values": {"NetLiquidation": s["values"]["NetLiquidation"]}} for s in DEMO["summary"]]}}
    assert got[4]["status"] == "error" and got[4]["code"] == "protocol" and "id" not in got[4]
    assert got[5] == {"status": "success", "data": {"pong": True}}
    assert got[6] == {"status": "success", "data": {"disconnected": True}}
