#!/usr/bin/env node
// Smoke test: brokerkit's fake IB Gateway serves @stoqey/ib, a second TWS API
// client written independently of scmhub/ibapi (TypeScript, npm).
//
//     node examples/node/smoke.mjs [--brokerkit PATH] [--script FILE]
//
// It starts `brokerkit gateway --listen 127.0.0.1:0 --script FILE`, reads the line
// `listening on 127.0.0.1:PORT`, and then, against what FILE says
// (default: fakes/testdata/demo.json):
//   - IBApi (the core API, client id 1): server version, managed accounts,
//     nextValidId, the 2104/2106/2158 notices, reqPositions, reqAccountSummary
//     (all tags, then a subset), reqCurrentTime, and the field count of every
//     frame received;
//   - a second IBApi with the same client id: error 326, then a closed socket,
//     while the first session stays usable;
//   - IBApiNext (client id 2): connection state, getManagedAccounts,
//     getCurrentTime, getPositions, getAccountSummary;
//   - IBApi (client id 3): a real client's startup sequence (reqPositions,
//     reqOpenOrders, reqCompletedOrders, reqAccountUpdates per account,
//     reqExecutions), finished in under a second, then the account values,
//     portfolio, executions with commissions, and open/completed orders read;
//   - IBApi (client id 4), when FILE has instruments: reqContractDetails of
//     the first stock (exact fields), a snapshot (bid/ask/last, decimal sizes,
//     tickSnapshotEnd), a short moving stream cancelled with nothing after the
//     next answer, historical bars, and the field count of every frame;
//   - IBApi (client id 5), when FILE has a stock instrument with a last price:
//     a market order filled at that price (openOrder, orderStatus, execDetails
//     and commissionReport carrying its orderRef), a limit order cancelled,
//     both among the completed orders, and the field count of every frame;
//   - clean disconnects and a clean gateway shutdown on SIGTERM.
// Any `error` event that the test did not ask for (stoqey reports decoding
// underruns and leftover fields that way) is a failure.
//
// stoqey decodes quantities, average costs, strikes and multipliers to JS
// numbers (IEEE doubles). They are compared as numbers; the exact text is
// compared on the raw wire fields (stoqey's `received` event), and a note is
// printed for every script decimal that a JS number cannot carry exactly.
//
// Exits 0 when every check passed, 1 otherwise (2 on bad usage); the gateway
// is killed on every path. The last line is "N passed, M failed".

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import stoqey from "@stoqey/ib";
import { filter, firstValueFrom, from, timeout } from "rxjs";

const { IBApi, IBApiNext, EventName, ConnectionState } = stoqey;

const here = path.dirname(fileURLToPath(import.meta.url));
const TIMEOUT_MS = 5000; // for any one expected reply
const OVERALL_MS = 30000; // for the whole run
const STOQEY_MAX_SERVER_VERSION = 193; // N/api/api.js MAX_SUPPORTED_SERVER_VERSION

// ---------------------------------------------------------------- arguments

function usage(msg) {
  console.error(`smoke.mjs: ${msg}\nusage: node smoke.mjs [--brokerkit PATH] [--script FILE]`);
  process.exit(2);
}

const opts = {
  brokerkit: path.resolve(here, "../../bin/brokerkit"),
  script: path.resolve(here, "../../fakes/testdata/demo.json"),
};
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const key = flag.replace(/^--?/, "");
    if (!(key in opts) || !flag.startsWith("-")) usage(`unknown argument ${argv[i]}`);
    const value = inline ?? argv[++i];
    if (value === undefined || value === "") usage(`${flag} needs a value`);
    opts[key] = path.resolve(value);
  }
}

// ---------------------------------------------------------------- reporting

let passed = 0;
const failures = [];

function check(ok, what, detail = "") {
  if (ok) {
    passed++;
    console.log(`ok   ${what}`);
  } else {
    failures.push(what);
    console.log(`FAIL ${what}${detail ? `\n       ${detail}` : ""}`);
  }
  return ok;
}

function note(msg) {
  console.log(`note ${msg}`);
}

const show = (v) => JSON.stringify(v);

// ---------------------------------------------------------------- the gateway process

let gateway = null; // the ChildProcess
let gatewayExit = null; // Promise<{code, signal}>

function killGateway() {
  if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
    try {
      gateway.kill("SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

let finished = false;
function finish(extraFailure) {
  if (finished) return;
  finished = true;
  if (extraFailure) {
    failures.push(extraFailure);
    console.log(`FAIL ${extraFailure}`);
  }
  killGateway();
  console.log(`${passed} passed, ${failures.length} failed`);
  process.exit(failures.length === 0 ? 0 : 1);
}

process.on("exit", killGateway);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => finish(`interrupted by ${sig}`));
}
process.on("uncaughtException", (e) => finish(`uncaught exception: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => finish(`unhandled rejection: ${e?.stack ?? e}`));
setTimeout(() => finish(`the whole run took more than ${OVERALL_MS} ms`), OVERALL_MS).unref();

function startGateway() {
  return new Promise((resolve, reject) => {
    const args = ["gateway", "--listen", "127.0.0.1:0", "--script", opts.script];
    gateway = spawn(opts.brokerkit, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    gateway.stderr.on("data", (d) => {
      stderr += d;
    });
    gatewayExit = new Promise((res) => gateway.on("exit", (code, signal) => res({ code, signal })));
    const timer = setTimeout(() => reject(new Error(`no "listening on" line within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    gateway.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${opts.brokerkit}: ${e.message}`));
    });
    gateway.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited early (code ${code}, signal ${signal}): ${stderr.trim()}`));
    });
    const lines = createInterface({ input: gateway.stdout });
    lines.once("line", (line) => {
      clearTimeout(timer);
      const m = /^listening on (127\.0\.0\.1):(\d+)$/.exec(line.trim());
      if (!m) reject(new Error(`first stdout line is ${show(line)}, want "listening on 127.0.0.1:PORT"`));
      else resolve({ host: m[1], port: Number(m[2]), firstLine: line.trim() });
    });
  });
}

async function stopGateway() {
  if (!gateway || gateway.exitCode !== null || gateway.signalCode !== null) return null;
  gateway.kill("SIGTERM");
  const timer = new Promise((res) => setTimeout(() => res(null), 3000));
  return Promise.race([gatewayExit, timer]);
}

// ---------------------------------------------------------------- decimals

// normDec returns a canonical form of a decimal text ("-0012.500" -> "-12.5",
// "1e3" -> "1000"), or null if it is not a decimal number.
function normDec(text) {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(String(text).trim());
  if (!m || (m[2] === "" && (m[3] ?? "") === "")) return null;
  let digits = m[2] + (m[3] ?? "");
  let point = m[2].length + Number(m[4] ?? 0); // position of the decimal point in digits
  if (point < 0) {
    digits = "0".repeat(-point) + digits;
    point = 0;
  }
  if (point > digits.length) digits += "0".repeat(point - digits.length);
  let int = digits.slice(0, point).replace(/^0+/, "") || "0";
  let frac = digits.slice(point).replace(/0+$/, "");
  const zero = int === "0" && frac === "";
  return (m[1] === "-" && !zero ? "-" : "") + int + (frac ? "." + frac : "");
}

const decEq = (a, b) => normDec(a) !== null && normDec(a) === normDec(b);

// lossy reports whether the JS number nearest to a decimal text prints as a
// different decimal, i.e. the text cannot be recovered from the number.
function lossy(text) {
  if (text === undefined || text === "") return false;
  return normDec(String(Number(text))) !== normDec(text);
}

// ---------------------------------------------------------------- the script

let script;
try {
  script = JSON.parse(readFileSync(opts.script, "utf8"));
} catch (e) {
  usage(`cannot read the script: ${e.message}`);
}
if (script.faults && Object.keys(script.faults).length > 0) {
  usage(`${opts.script} injects faults (${Object.keys(script.faults).join(", ")}); give a fault-free script`);
}
const want = {
  serverVersion: Math.min(script.server_version || 193, STOQEY_MAX_SERVER_VERSION),
  accounts: script.accounts ?? [],
  nextValidId: script.next_valid_id || 1,
  positions: script.positions ?? [],
  summary: script.summary ?? [],
  marks: script.marks ?? [],
  executions: script.executions ?? [],
  instruments: script.instruments ?? [],
};
const allTags = [...new Set(want.summary.flatMap((a) => Object.keys(a.values ?? {})))].sort();

// expectedSummary: Map "account\0tag" -> {value, currency} for the tags asked.
function expectedSummary(tags) {
  const m = new Map();
  for (const a of want.summary) {
    for (const t of tags) {
      const v = a.values?.[t];
      if (v) m.set(`${a.account}\0${t}`, { value: v.value, currency: v.currency ?? "" });
    }
  }
  return m;
}

// Field counts of each message the fake sends at server version 193
// (/work/shared/reference/tws-protocol.md section 3; stoqey N/core/io/decoder.js).
// ERR_MSG has its advancedOrderRejectJson field from server version 166.
// EXECUTION_DATA: decodeMsg_EXECUTION_DATA reads a version field below 136,
// then 29 fields, plus modelCode (103), lastLiquidity (136),
// pendingPriceRevision (178) and submitter (198, scmhub only).
const V = want.serverVersion;
const FIELD_COUNT = {
  4: V >= 166 ? 6 : 5, 9: 3, 15: 3, 49: 3, 61: 16, 62: 2, 63: 7, 64: 3,
  6: 6, 7: 20, 8: 3, 53: 2, 54: 3, 55: 3, 59: 8, 102: 1, 71: 18, 72: 3, 73: 8, 74: 3,
  94: 3 + (V >= 129) + (V >= 135), 95: 5 + (V >= 129) + (V >= 135),
  11: 29 + (V < 136) + (V >= 103) + (V >= 136) + (V >= 178) + (V >= 198),
};

// ---------------------------------------------------------------- event recorder

// Recorder keeps every event of one IBApi in order and lets the test wait for
// a condition over them.
class Recorder {
  constructor(api, name) {
    this.name = name;
    this.events = []; // {ev, args}
    this.waiters = new Set();
    const evs = [
      EventName.connected, EventName.disconnected, EventName.server, EventName.managedAccounts,
      EventName.nextValidId, EventName.info, EventName.error, EventName.position, EventName.positionEnd,
      EventName.accountSummary, EventName.accountSummaryEnd, EventName.currentTime, EventName.received,
      EventName.updatePortfolio, EventName.updateAccountValue, EventName.updateAccountTime,
      EventName.accountDownloadEnd, EventName.execDetails, EventName.execDetailsEnd, EventName.commissionReport,
      EventName.openOrder, EventName.openOrderEnd, EventName.completedOrder, EventName.completedOrdersEnd,
      EventName.positionMulti, EventName.positionMultiEnd, EventName.accountUpdateMulti,
      EventName.accountUpdateMultiEnd, EventName.pnl, EventName.pnlSingle, EventName.orderStatus,
      EventName.contractDetails, EventName.contractDetailsEnd, EventName.tickPrice, EventName.tickSize,
      EventName.tickString, EventName.tickGeneric, EventName.tickSnapshotEnd, EventName.marketDataType,
      EventName.historicalData,
    ];
    for (const ev of evs) {
      api.on(ev, (...args) => {
        this.events.push({ ev, args });
        for (const w of [...this.waiters]) w();
      });
    }
  }

  all(ev, from = 0) {
    return this.events.slice(from).filter((e) => e.ev === ev).map((e) => e.args);
  }

  get mark() {
    return this.events.length;
  }

  // until resolves once pred() is truthy; it rejects after ms with what.
  until(pred, what, ms = TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const test = () => {
        const v = pred();
        if (v) {
          this.waiters.delete(test);
          clearTimeout(timer);
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(test);
        reject(new Error(`${this.name}: timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      this.waiters.add(test);
      test();
    });
  }
}

// waitCheck runs until() and turns a timeout into a failed check.
async function waitCheck(rec, pred, what, ms) {
  try {
    return await rec.until(pred, what, ms);
  } catch (e) {
    check(false, what, e.message);
    return null;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- checks

async function coreSession(host, port) {
  console.log("-- IBApi (core), client id 1");
  const api = new IBApi({ host, port, clientId: 1, maxReqPerSec: 40 });
  const rec = new Recorder(api, "IBApi#1");
  api.connect();

  const ready = await waitCheck(rec, () => rec.all(EventName.info).length >= 3 && rec.all(EventName.nextValidId).length,
    "connects: handshake, nextValidId and the three notices arrive");
  if (!ready) return { api, rec };

  const [server] = rec.all(EventName.server);
  check(server && server[0] === want.serverVersion && api.serverVersion === want.serverVersion,
    `server version ${want.serverVersion}`, `server event ${show(server)}, api.serverVersion ${api.serverVersion}`);
  check(server && /^\d{8} \d{2}:\d{2}:\d{2} \S+$/.test(server[1] ?? ""),
    `connection time looks like real TWS ("yyyyMMdd HH:mm:ss TZ"): ${show(server?.[1])}`);
  check(api.isConnected && rec.all(EventName.connected).length === 1, "connected event, isConnected true");

  const accts = rec.all(EventName.managedAccounts);
  check(accts.length === 1 && accts[0][0] === want.accounts.join(","),
    `managedAccounts ${show(want.accounts.join(","))}`, `got ${show(accts)}`);

  const ids = rec.all(EventName.nextValidId);
  check(ids.length === 1 && ids[0][0] === want.nextValidId, `nextValidId ${want.nextValidId}`, `got ${show(ids)}`);

  const order = rec.events.filter((e) => [EventName.managedAccounts, EventName.nextValidId, EventName.info].includes(e.ev))
    .map((e) => (e.ev === EventName.info ? e.args[1] : e.ev));
  check(show(order) === show([EventName.managedAccounts, EventName.nextValidId, 2104, 2106, 2158]),
    "unprompted messages in TWS order: managedAccounts, nextValidId, 2104, 2106, 2158", `got ${show(order)}`);
  const texts = {
    2104: "Market data farm connection is OK:usfarm",
    2106: "HMDS data farm connection is OK:ushmds",
    2158: "Sec-def data farm connection is OK:secdefnj",
  };
  const infos = rec.all(EventName.info);
  check(infos.every(([msg, code]) => texts[code] === msg),
    "info notices carry id -1 (stoqey `info`, not `error`) and real-TWS texts", `got ${show(infos)}`);

  // ---- positions
  let m = rec.mark;
  api.reqPositions();
  await waitCheck(rec, () => rec.all(EventName.positionEnd, m).length, "reqPositions: positionEnd arrives");
  const pos = rec.all(EventName.position, m);
  const rawPos = rec.all(EventName.received, m).map(([tokens]) => tokens).filter((t) => t[0] === "61");
  check(pos.length === want.positions.length, `reqPositions: ${want.positions.length} position events`,
    `got ${pos.length}`);
  check(rec.all(EventName.positionEnd, m).length === 1, "reqPositions: one positionEnd, after the rows",
    show(rec.events.slice(m).map((e) => e.ev)));
  api.cancelPositions();
  const lossyNotes = [];
  want.positions.forEach((w, i) => {
    const got = pos[i];
    const raw = rawPos[i];
    const c = w.contract;
    const label = `position ${i} ${w.account} ${c.symbol} ${c.sec_type}`;
    if (!got) {
      check(false, label, "missing");
      return;
    }
    const [account, contract, qty, avgCost] = got;
    const problems = [];
    const eq = (what, g, x) => {
      if (g !== x) problems.push(`${what}: got ${show(g)}, want ${show(x)}`);
    };
    eq("account", account, w.account);
    eq("conId", contract.conId, c.con_id);
    eq("symbol", contract.symbol, c.symbol);
    eq("secType", contract.secType, c.sec_type);
    eq("lastTradeDateOrContractMonth", contract.lastTradeDateOrContractMonth, c.expiry ?? "");
    eq("strike", contract.strike, Number(c.strike ?? 0));
    eq("right", contract.right, c.right || undefined); // stoqey maps "" to undefined
    eq("multiplier", contract.multiplier, Number(c.multiplier ?? 0)); // readDouble: "" -> 0
    eq("exchange", contract.exchange, c.exchange ?? "");
    eq("currency", contract.currency, c.currency ?? "");
    eq("localSymbol", contract.localSymbol, c.local_symbol ?? "");
    eq("tradingClass", contract.tradingClass, c.trading_class ?? "");
    eq("position (number)", qty, Number(w.quantity));
    eq("avgCost (number)", avgCost, Number(w.avg_cost));
    if (!raw) problems.push("no raw POSITION_DATA frame seen");
    else {
      if (raw.length !== FIELD_COUNT[61]) problems.push(`wire: ${raw.length} fields, want ${FIELD_COUNT[61]}`);
      if (!decEq(raw[14], w.quantity)) problems.push(`wire quantity text ${show(raw[14])} != ${show(w.quantity)}`);
      if (!decEq(raw[15], w.avg_cost)) problems.push(`wire avgCost text ${show(raw[15])} != ${show(w.avg_cost)}`);
      if (!decEq(raw[7], c.strike ?? "0")) problems.push(`wire strike text ${show(raw[7])} != ${show(c.strike ?? "0")}`);
    }
    check(problems.length === 0,
      `${label}: qty ${w.quantity} (JS ${qty}), avgCost ${w.avg_cost}, all contract fields and wire text exact`,
      problems.join("; "));
    for (const [what, text] of [["quantity", w.quantity], ["avg_cost", w.avg_cost], ["strike", c.strike],
      ["multiplier", c.multiplier]]) {
      if (lossy(text)) lossyNotes.push(`${label} ${what} ${text} -> JS number ${Number(text)}`);
    }
  });
  if (lossyNotes.length) {
    for (const n of lossyNotes) {
      note(`JS number loses exactness: ${n} (stoqey's readDecimal/readDouble use parseFloat; the wire text is exact)`);
    }
  } else {
    note("every script quantity, avg_cost, strike and multiplier survives as a JS number here; values with more "
      + "than ~15-17 significant digits (e.g. 12345678.123456789) would not, since stoqey parses them with parseFloat");
  }

  // ---- account summary: every tag, then a subset
  for (const [reqId, tags] of [[9001, allTags], [9002, ["NetLiquidation", "Cushion", "AccountType"]]]) {
    m = rec.mark;
    api.reqAccountSummary(reqId, "All", tags.join(","));
    await waitCheck(rec, () => rec.all(EventName.accountSummaryEnd, m).length,
      `reqAccountSummary ${reqId}: accountSummaryEnd arrives`);
    const rows = rec.all(EventName.accountSummary, m);
    const ends = rec.all(EventName.accountSummaryEnd, m);
    const exp = expectedSummary(tags);
    const problems = [];
    const seen = new Set();
    for (const [rid, account, tag, value, currency] of rows) {
      const key = `${account}\0${tag}`;
      if (rid !== reqId) problems.push(`row reqId ${rid}`);
      if (seen.has(key)) problems.push(`duplicate ${account}/${tag}`);
      seen.add(key);
      const x = exp.get(key);
      if (!x) problems.push(`unexpected ${account}/${tag}=${value}`);
      else if (value !== x.value || currency !== x.currency) {
        problems.push(`${account}/${tag}: got ${show([value, currency])}, want ${show([x.value, x.currency])}`);
      }
    }
    for (const key of exp.keys()) if (!seen.has(key)) problems.push(`missing ${key.replace("\0", "/")}`);
    if (ends.length !== 1 || ends[0][0] !== reqId) problems.push(`accountSummaryEnd ${show(ends)}`);
    check(problems.length === 0,
      `reqAccountSummary ${reqId} "All" [${tags.length} tags]: ${exp.size} rows, values and currencies exact, end`,
      problems.join("; "));
    api.cancelAccountSummary(reqId);
  }

  // ---- current time
  m = rec.mark;
  api.reqCurrentTime();
  const ct = await waitCheck(rec, () => rec.all(EventName.currentTime, m)[0], "reqCurrentTime: currentTime arrives");
  if (ct) {
    const skew = Math.abs(ct[0] - Date.now() / 1000);
    check(Number.isInteger(ct[0]) && skew < 5, `reqCurrentTime: ${ct[0]} (unix seconds, ${skew.toFixed(1)} s from now)`);
  }
  return { api, rec };
}

async function duplicateSession(host, port, first) {
  console.log("-- IBApi, client id 1 again (duplicate)");
  const dup = new IBApi({ host, port, clientId: 1 });
  const rec = new Recorder(dup, "IBApi#1-duplicate");
  dup.connect();
  const got = await waitCheck(rec, () => rec.all(EventName.disconnected).length,
    "duplicate client id: the gateway closes the connection");
  const infos = rec.all(EventName.info);
  const i326 = infos.findIndex(([, code]) => code === 326);
  check(i326 >= 0 && /client id is already in use/.test(infos[i326][0]),
    "duplicate client id: info 326 \"...client id is already in use...\"", `info events ${show(infos)}`);
  if (got) {
    const order = rec.events.map((e) => e.ev);
    check(i326 >= 0 && order.indexOf(EventName.info) < order.indexOf(EventName.disconnected),
      "duplicate client id: 326 arrives before the disconnect", show(order));
  }
  check(rec.all(EventName.nextValidId).length === 0 && rec.all(EventName.managedAccounts).length === 0,
    "duplicate client id: no managedAccounts or nextValidId for the refused session");
  check(!dup.isConnected, "duplicate client id: isConnected false afterwards");
  const errs = rec.all(EventName.error);
  check(errs.length === 0, "duplicate client id: no error events (326 carries id -1, so it is an info)",
    show(errs.map(([e, code, id]) => [e?.message, code, id])));
  dup.disconnect();

  // The first session must be untouched.
  const m = first.rec.mark;
  first.api.reqCurrentTime();
  const ct = await waitCheck(first.rec, () => first.rec.all(EventName.currentTime, m)[0],
    "first client id 1 session still answers after the duplicate was refused");
  if (ct) check(first.api.isConnected, "first client id 1 session still answers after the duplicate was refused");
}

async function nextSession(host, port) {
  console.log("-- IBApiNext, client id 2");
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  const next = new IBApiNext({ host, port, logger: silent });
  const errors = [];
  const errSub = next.error.subscribe((e) => errors.push([e.error?.message, e.code, e.reqId]));
  try {
    const connected = firstValueFrom(next.connectionState.pipe(filter((s) => s === ConnectionState.Connected),
      timeout(TIMEOUT_MS)));
    next.connect(2);
    await connected;
    check(true, "IBApiNext: connectionState Connected");

    const accounts = await firstValueFrom(fromPromise(next.getManagedAccounts()));
    check(show(accounts) === show(want.accounts), `IBApiNext getManagedAccounts: ${show(accounts)}`);

    const t = await firstValueFrom(fromPromise(next.getCurrentTime()));
    check(Math.abs(t - Date.now() / 1000) < 5, `IBApiNext getCurrentTime: ${t}`);

    const upd = await firstValueFrom(next.getPositions().pipe(timeout(TIMEOUT_MS)));
    const problems = [];
    for (const acct of new Set(want.positions.map((p) => p.account))) {
      const w = want.positions.filter((p) => p.account === acct);
      const g = upd.all.get(acct) ?? [];
      const key = (conId, qty, cost) => `${conId}:${qty}:${cost}`;
      const ws = w.map((p) => key(p.contract.con_id, Number(p.quantity), Number(p.avg_cost))).sort();
      const gs = g.map((p) => key(p.contract.conId, p.pos, p.avgCost)).sort();
      if (show(ws) !== show(gs)) problems.push(`${acct}: got ${show(gs)}, want ${show(ws)}`);
    }
    check(problems.length === 0,
      `IBApiNext getPositions: ${want.positions.length} positions in ${upd.all.size} accounts`, problems.join("; "));

    const sum = await firstValueFrom(next.getAccountSummary("All", "NetLiquidation,TotalCashValue")
      .pipe(timeout(TIMEOUT_MS)));
    const sp = [];
    for (const [key, x] of expectedSummary(["NetLiquidation", "TotalCashValue"])) {
      const [acct, tag] = key.split("\0");
      const v = sum.all.get(acct)?.get(tag)?.get(x.currency)?.value;
      if (v !== x.value) sp.push(`${acct}/${tag}/${x.currency}: got ${show(v)}, want ${show(x.value)}`);
    }
    check(sp.length === 0, "IBApiNext getAccountSummary NetLiquidation,TotalCashValue: values exact", sp.join("; "));
  } catch (e) {
    check(false, "IBApiNext session", e?.message ?? String(e));
  } finally {
    errSub.unsubscribe();
    check(errors.length === 0, "IBApiNext: no errors reported", show(errors));
    next.disconnect();
  }
}

// ---- a real client's startup sequence (ib_async's connectAsync)

// markOf returns what PORTFOLIO_VALUE must carry for a script position.
function markOf(p) {
  const mult = Number(p.contract.multiplier || 1);
  const m = want.marks.find((x) => x.account === p.account && x.con_id === p.contract.con_id);
  if (!m) {
    return { price: Number(p.avg_cost) / mult, value: Number(p.quantity) * Number(p.avg_cost), unreal: 0, real: 0 };
  }
  const price = Number(m.market_price);
  return {
    price,
    value: m.market_value !== undefined ? Number(m.market_value) : Number(p.quantity) * price * mult,
    unreal: Number(m.unrealized_pnl ?? 0),
    real: Number(m.realized_pnl ?? 0),
  };
}

const near = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

async function startupSession(host, port) {
  console.log("-- IBApi, client id 3: a real client's startup sequence");
  const api = new IBApi({ host, port, clientId: 3, maxReqPerSec: 40 });
  const rec = new Recorder(api, "IBApi#3");
  const start = performance.now();
  api.connect();
  const ready = await waitCheck(rec, () => rec.all(EventName.nextValidId).length, "startup: nextValidId arrives");
  if (!ready) {
    api.disconnect();
    return;
  }
  const m = rec.mark;
  const accounts = want.accounts;
  api.reqPositions();
  api.reqOpenOrders();
  api.reqCompletedOrders(false);
  for (const a of accounts) api.reqAccountUpdates(true, a);
  api.reqExecutions(4001, {});
  const ended = await waitCheck(rec, () => rec.all(EventName.positionEnd, m).length
    && rec.all(EventName.openOrderEnd, m).length && rec.all(EventName.completedOrdersEnd, m).length
    && accounts.every((a) => rec.all(EventName.accountDownloadEnd, m).some(([x]) => x === a))
    && rec.all(EventName.execDetailsEnd, m).some(([id]) => id === 4001),
  "startup: positionEnd, openOrderEnd, completedOrdersEnd, accountDownloadEnd per account, execDetailsEnd");
  const took = performance.now() - start;
  if (ended) check(took < 1000, `startup completes in under a second (${took.toFixed(1)} ms from connect)`);

  // Account values: every summary value of every account, exact text.
  const vals = rec.all(EventName.updateAccountValue, m);
  const vp = [];
  for (const a of want.summary) {
    for (const [tag, v] of Object.entries(a.values ?? {})) {
      const got = vals.filter(([k, , , acct]) => k === tag && acct === a.account);
      if (got.length !== 1 || got[0][1] !== v.value || got[0][2] !== (v.currency ?? "")) {
        vp.push(`${a.account}/${tag}: got ${show(got)}, want ${show([v.value, v.currency ?? ""])}`);
      }
    }
  }
  const nvals = want.summary.reduce((n, a) => n + Object.keys(a.values ?? {}).length, 0);
  check(vp.length === 0 && vals.length === nvals, `updateAccountValue: ${nvals} values, exact text`,
    `${vals.length} events; ${vp.join("; ")}`);
  check(rec.all(EventName.updateAccountTime, m).every(([t]) => /^\d\d:\d\d$/.test(t))
    && rec.all(EventName.updateAccountTime, m).length === accounts.length,
  "updateAccountTime: one HH:mm per account");

  // Portfolio: one row per position with market price/value and PnL.
  const pf = rec.all(EventName.updatePortfolio, m);
  const pp = [];
  for (const p of want.positions) {
    const g = pf.find(([c, , , , , , , acct]) => c.conId === p.contract.con_id && acct === p.account);
    if (!g) {
      pp.push(`missing ${p.account} ${p.contract.symbol}`);
      continue;
    }
    const [c, pos, price, value, avg, unreal, real] = g;
    const x = markOf(p);
    if (c.symbol !== p.contract.symbol || c.secType !== p.contract.sec_type) pp.push(`${p.contract.symbol}: contract`);
    if (!near(pos, Number(p.quantity))) pp.push(`${p.contract.symbol}: position ${pos}`);
    if (!near(price, x.price)) pp.push(`${p.contract.symbol}: marketPrice ${price}, want ${x.price}`);
    if (!near(value, x.value)) pp.push(`${p.contract.symbol}: marketValue ${value}, want ${x.value}`);
    if (!near(avg, Number(p.avg_cost))) pp.push(`${p.contract.symbol}: averageCost ${avg}`);
    if (!near(unreal, x.unreal) || !near(real, x.real)) pp.push(`${p.contract.symbol}: PnL ${unreal}/${real}`);
  }
  check(pp.length === 0 && pf.length === want.positions.length,
    `updatePortfolio: ${want.positions.length} rows with market price, value and PnL`, `${pf.length} rows; ${pp.join("; ")}`);

  // Executions and their commission reports.
  const ex = rec.all(EventName.execDetails, m);
  const cr = rec.all(EventName.commissionReport, m);
  const ep = [];
  for (const e of want.executions) {
    const g = ex.find(([, , x]) => x.execId === e.exec_id);
    if (!g) {
      ep.push(`missing ${e.exec_id}`);
      continue;
    }
    const [reqId, c, x] = g;
    if (reqId !== 4001 || c.conId !== e.contract.con_id || x.orderId !== e.order_id || x.side !== e.side
      || x.acctNumber !== e.account || x.time !== e.time || !near(x.shares, Number(e.shares))
      || !near(x.price, Number(e.price))) {
      ep.push(`${e.exec_id}: got ${show([reqId, c.conId, x])}`);
    }
    const r = cr.find(([k]) => k.execId === e.exec_id);
    if (!r || !near(r[0].commission, Number(e.commission ?? 0)) || r[0].currency !== (e.commission_currency ?? "")) {
      ep.push(`${e.exec_id}: commission report ${show(r)}`);
    }
  }
  check(ep.length === 0 && ex.length === want.executions.length,
    `execDetails + commissionReport: ${want.executions.length} executions`, `${ex.length} events; ${ep.join("; ")}`);
  check(rec.all(EventName.openOrder, m).length === 0 && rec.all(EventName.completedOrder, m).length === 0,
    "open and completed orders: none (the fake holds no orders), each end marker received");

  // The multi-account and PnL requests.
  const a1 = accounts[0];
  const mm = rec.mark;
  api.reqPositionsMulti(4002, a1, "");
  api.reqAccountUpdatesMulti(4003, a1, "", true);
  api.reqPnL(4004, a1, null);
  const p0 = want.positions.find((p) => p.account === a1);
  api.reqPnLSingle(4005, a1, null, p0.contract.con_id);
  const multi = await waitCheck(rec, () => rec.all(EventName.positionMultiEnd, mm).length
    && rec.all(EventName.accountUpdateMultiEnd, mm).length && rec.all(EventName.pnl, mm).length
    && rec.all(EventName.pnlSingle, mm).length, "positionMultiEnd, accountUpdateMultiEnd, pnl and pnlSingle arrive");
  if (multi) {
    const pm = rec.all(EventName.positionMulti, mm);
    const mine = want.positions.filter((p) => p.account === a1);
    check(pm.length === mine.length && pm.every(([id, acct, , c, pos], i) => id === 4002 && acct === a1
      && c.conId === mine[i].contract.con_id && near(pos, Number(mine[i].quantity))),
    `reqPositionsMulti: ${mine.length} positions of ${a1}`, show(pm));
    const am = rec.all(EventName.accountUpdateMulti, mm);
    const vals = want.summary.find((a) => a.account === a1)?.values ?? {};
    check(am.length === Object.keys(vals).length && am.every(([id, acct, , key, value, cur]) => id === 4003
      && acct === a1 && vals[key]?.value === value && (vals[key]?.currency ?? "") === cur),
    `reqAccountUpdatesMulti: ${Object.keys(vals).length} values of ${a1}, exact text`, show(am));
    const sum = (f) => want.marks.filter((x) => x.account === a1).reduce((n, x) => n + Number(x[f] ?? 0), 0);
    const [pid, daily, unreal, real] = rec.all(EventName.pnl, mm)[0];
    check(pid === 4004 && near(daily, sum("daily_pnl")) && near(unreal, sum("unrealized_pnl"))
      && near(real, sum("realized_pnl")), `reqPnL: daily ${daily}, unrealized ${unreal}, realized ${real}`);
    const [sid, spos, sdaily, , , svalue] = rec.all(EventName.pnlSingle, mm)[0];
    check(sid === 4005 && near(spos, Number(p0.quantity)) && near(svalue, markOf(p0).value)
      && near(sdaily, Number(want.marks.find((x) => x.account === a1 && x.con_id === p0.contract.con_id)?.daily_pnl ?? 0)),
    `reqPnLSingle ${p0.contract.symbol}: position ${spos}, daily ${sdaily}, value ${svalue}`);
  }

  const frames = rec.all(EventName.received).map(([t]) => t).slice(1);
  const bad = frames.filter((t) => FIELD_COUNT[t[0]] === undefined || t.length !== FIELD_COUNT[t[0]]);
  check(bad.length === 0, `startup: all ${frames.length} frames have the field count stoqey reads`, show(bad));
  const errs = rec.all(EventName.error);
  check(errs.length === 0, "startup: no error events", show(errs.map(([e, code, id]) => [e?.message, code, id])));
  api.disconnect();
}

// fromPromise bounds a promise by TIMEOUT_MS (IBApiNext's getters wait forever).
const fromPromise = (p) => from(p).pipe(timeout(TIMEOUT_MS));

// ---- contract details and market data (issue 13)

// Field counts of the market data messages at V (stoqey's decoder.js, scmhub's
// decoder.go): CONTRACT_DATA gains and loses fields with the version.
const MD_FIELD_COUNT = {
  1: 7, 2: 5, 45: 5, 46: 5, 57: 3, 58: 4, 81: 5, 52: 3, 4: V >= 166 ? 6 : 5, 9: 3, 15: 3, 49: 3,
  10: 1 + (V < 164) + 1 + 2 + 1 + (V >= 182) + 9 + (V >= 110 && V < 164) + 3 + 2 + 2 + 7 + 2 + 1 + (V >= 121) +
    2 * (V >= 122) + (V >= 126) + (V >= 134) + (V >= 152) + (V >= 163 && V < 164) + 3 * (V >= 164) + (V >= 186),
};

async function marketSession(host, port) {
  const stocks = want.instruments.filter((i) => i.contract.sec_type === "STK" && !i.delayed_only && i.quote?.bid);
  const moving = stocks.find((i) => i.ticks_per_second > 0);
  if (stocks.length === 0 || !moving) {
    note("the script has no live stock instruments (and none moving): market data checks skipped");
    return;
  }
  console.log("-- IBApi, client id 4: contract details, a snapshot, a stream, bars");
  const api = new IBApi({ host, port, clientId: 4, maxReqPerSec: 40 });
  const rec = new Recorder(api, "IBApi#4");
  api.connect();
  if (!(await waitCheck(rec, () => rec.all(EventName.nextValidId).length, "market: nextValidId arrives"))) {
    api.disconnect();
    return;
  }
  const inst = stocks[0];
  const k = inst.contract;
  const contract = { symbol: k.symbol, secType: "STK", exchange: "SMART", currency: k.currency };
  let m = rec.mark;
  api.reqContractDetails(5001, contract);
  if (await waitCheck(rec, () => rec.all(EventName.contractDetailsEnd, m).length, "reqContractDetails: end arrives")) {
    const d = rec.all(EventName.contractDetails, m);
    const cd = d[0]?.[1];
    check(d.length === 1 && d[0][0] === 5001 && cd.contract.conId === k.con_id && cd.contract.symbol === k.symbol &&
      cd.longName === inst.long_name && cd.minTick === Number(inst.min_tick) &&
      cd.contract.primaryExch === inst.primary_exchange && cd.validExchanges === inst.valid_exchanges &&
      cd.tradingHours === inst.trading_hours && cd.timeZoneId === inst.time_zone,
    `reqContractDetails ${k.symbol}: one contract with the script's fields`, show(d));
  }

  m = rec.mark;
  api.reqMktData(5002, contract, "", true, false);
  if (await waitCheck(rec, () => rec.all(EventName.tickSnapshotEnd, m).length, "snapshot: tickSnapshotEnd arrives")) {
    const prices = new Map(rec.all(EventName.tickPrice, m).filter((a) => a[0] === 5002).map((a) => [a[1], a[2]]));
    const sizes = new Map(rec.all(EventName.tickSize, m).filter((a) => a[0] === 5002).map((a) => [a[1], a[2]]));
    const q = inst.quote;
    check(prices.get(1) === Number(q.bid) && prices.get(2) === Number(q.ask) && prices.get(4) === Number(q.last),
      `snapshot ${k.symbol}: bid ${q.bid}, ask ${q.ask}, last ${q.last}`, show([...prices]));
    check(sizes.get(0) === Number(q.bid_size) && sizes.get(3) === Number(q.ask_size) && sizes.get(8) === Number(q.volume),
      `snapshot ${k.symbol}: bid size ${q.bid_size}, ask size ${q.ask_size}, volume ${q.volume}`, show([...sizes]));
    const rawVol = rec.all(EventName.received, m).map(([t]) => t).find((t) => t[0] === "2" && t[2] === "5002" && t[3] === "8");
    check(rawVol && rawVol[4] === q.volume, `snapshot: the volume's exact text ${q.volume} on the wire`, show(rawVol));
    check(rec.all(EventName.marketDataType, m).some((a) => a[0] === 5002 && a[1] === 1), "snapshot: market data type 1 (live)");
  }

  const mk = moving.contract;
  m = rec.mark;
  api.reqMktData(5003, { symbol: mk.symbol, secType: "STK", exchange: "SMART", currency: mk.currency }, "", false, false);
  const ticks = () => rec.all(EventName.tickPrice, m).filter((a) => a[0] === 5003 && (a[1] === 1 || a[1] === 2)).length;
  if (await waitCheck(rec, () => ticks() >= 5, `stream ${mk.symbol}: the quote moves`)) {
    api.cancelMktData(5003);
    const m2 = rec.mark;
    api.reqCurrentTime();
    await waitCheck(rec, () => rec.all(EventName.currentTime, m2).length, "stream: currentTime after the cancel");
    const m3 = rec.mark;
    api.reqCurrentTime();
    await waitCheck(rec, () => rec.all(EventName.currentTime, m3).length, "stream: a second currentTime");
    const late = rec.events.slice(m3).filter((e) => e.ev === EventName.tickPrice || e.ev === EventName.tickSize);
    check(late.length === 0, "cancelMktData: no tick after the next answer", show(late.length));
  }

  m = rec.mark;
  api.reqHistoricalData(5004, contract, "20261201 21:00:00 UTC", "1 D", "1 hour", "TRADES", 1, 1, false);
  const done = () => rec.all(EventName.historicalData, m).find((a) => a[0] === 5004 && String(a[1]).startsWith("finished"));
  if (await waitCheck(rec, done, "reqHistoricalData: the end marker arrives")) {
    const bars = rec.all(EventName.historicalData, m).filter((a) => a[0] === 5004 && !String(a[1]).startsWith("finished"));
    check(bars.length === 6 && bars[0][1] === "20261201 15:00:00 UTC" &&
      bars.every((b) => b[3] >= b[2] && b[3] >= b[5] && b[4] <= b[2] && b[4] <= b[5]),
    "reqHistoricalData: 6 RTH hourly bars, high/low bounding open/close", show(bars.slice(0, 2)));
  }

  const frames = rec.all(EventName.received).map(([t]) => t).slice(1);
  const bad = frames.filter((t) => MD_FIELD_COUNT[t[0]] !== undefined && t.length !== MD_FIELD_COUNT[t[0]]);
  const bars = frames.filter((t) => t[0] === "17");
  check(bad.length === 0 && bars.every((t) => t.length === 5 + 8 * Number(t[4])),
    `market: every one of ${frames.length} frames has the field count stoqey reads`, show(bad.slice(0, 3)));
  const errs = rec.all(EventName.error);
  check(errs.length === 0, "market: no error events", show(errs.map(([e, code, id]) => [e?.message, code, id])));
  const md = rec.mark;
  api.disconnect();
  await waitCheck(rec, () => rec.all(EventName.disconnected, md).length, "market: disconnect completes");
}

// Field counts of the order messages at V (scmhub's order_decoder.go, stoqey's
// decoder.js): ORDER_STATUS trades its version field for mktCapPrice at 131;
// OPEN_ORDER and COMPLETED_ORDER gain fields with the version, for an order
// without combo legs, conditions, algo or delta-neutral parts.
const ORDER_FIELD_COUNT = {
  3: 12,
  5: 1 + (V < 145) + 1 + 11 + 13 + 5 + 3 + (V < 177) + (V >= 103) + 51 + 6 * (V >= 142) + 7 + 13 * (V >= 195) + 3 +
    9 * (V >= 102) + 3 * (V >= 106) + (V >= 111) + (V >= 141) + (V >= 145) + (V >= 148) + (V >= 151) + (V >= 158) +
    (V >= 160) + (V >= 162) + 5 * (V >= 170) + (V >= 183) + (V >= 184) + (V >= 185) + (V >= 189) + 2 * (V >= 193) +
    (V >= 198) + (V >= 199),
  101: 1 + 11 + 11 + 1 + 4 + 3 + (V < 177) + (V >= 103) + 43 + (V >= 102) + 2 + (V >= 111) + (V >= 141) + (V >= 145) +
    10 + 5 * (V >= 170) + (V >= 183) + (V >= 184) + (V >= 198),
  11: FIELD_COUNT[11], 59: FIELD_COUNT[59], 53: 2, 102: 1,
};

async function orderSession(host, port) {
  const inst = want.instruments.find((i) => i.contract.sec_type === "STK" && !i.halted && i.quote?.last);
  if (!inst) {
    note("the script has no stock instrument with a last price: order checks skipped");
    return;
  }
  if (V < 150) {
    // Below 145 stoqey reads OPEN_ORDER's modelCode by the message's version
    // field (34 < 103, so never) where scmhub reads it by the server version,
    // as the fake sends it; stoqey sends no REQ_COMPLETED_ORDERS below 150.
    note(`server version ${V} < 150: order checks skipped (see docs/adr/0013)`);
    return;
  }
  console.log("-- IBApi, client id 5: a market order filled, a limit order cancelled");
  const api = new IBApi({ host, port, clientId: 5, maxReqPerSec: 40 });
  const rec = new Recorder(api, "IBApi#5");
  api.connect();
  const ids = await waitCheck(rec, () => rec.all(EventName.nextValidId)[0], "orders: nextValidId arrives");
  if (!ids) {
    api.disconnect();
    return;
  }
  const id = ids[0];
  const k = inst.contract;
  const contract = { symbol: k.symbol, secType: "STK", exchange: "SMART", currency: k.currency };
  const last = Number(inst.quote.last);
  let m = rec.mark;
  api.placeOrder(id, contract, { action: "BUY", totalQuantity: 3, orderType: "MKT", orderRef: "smoke-mkt", transmit: true });
  const filled = () => rec.all(EventName.orderStatus, m).find((a) => a[0] === id && a[1] === "Filled");
  if (await waitCheck(rec, filled, `placeOrder ${k.symbol} MKT: orderStatus Filled arrives`)) {
    const opens = rec.all(EventName.openOrder, m).filter((a) => a[0] === id);
    check(opens.length === 2 && opens.every(([, c, o]) => c.symbol === k.symbol && o.orderRef === "smoke-mkt"
      && o.totalQuantity === 3 && o.clientId === 5) && opens[0][3].status === "Submitted" && opens[1][3].status === "Filled",
    "openOrder: Submitted then Filled, with the orderRef", show(opens.map((a) => [a[0], a[2].orderRef, a[3].status])));
    const [, , fq, rem, avg] = filled();
    check(fq === 3 && rem === 0 && avg === last, `orderStatus Filled: 3 at ${last}`, show(filled()));
    const ex = rec.all(EventName.execDetails, m);
    const cr = rec.all(EventName.commissionReport, m);
    check(ex.length === 1 && ex[0][2].orderId === id && ex[0][2].orderRef === "smoke-mkt" && ex[0][2].price === last
      && ex[0][2].shares === 3 && cr.length === 1 && cr[0][0].execId === ex[0][2].execId,
    "execDetails and commissionReport: one fill with the orderRef", show([ex, cr]));
  }
  m = rec.mark;
  api.placeOrder(id + 1, contract, { action: "SELL", totalQuantity: 1, orderType: "LMT", lmtPrice: last + 100,
    orderRef: "smoke-lmt", transmit: true });
  const working = () => rec.all(EventName.orderStatus, m).find((a) => a[0] === id + 1 && a[1] === "Submitted");
  if (await waitCheck(rec, working, "placeOrder LMT above the market: Submitted, not filled")) {
    api.cancelOrder(id + 1);
    await waitCheck(rec, () => rec.all(EventName.orderStatus, m).find((a) => a[0] === id + 1 && a[1] === "Cancelled"),
      "cancelOrder: orderStatus Cancelled");
  }
  m = rec.mark;
  api.reqCompletedOrders(false);
  if (await waitCheck(rec, () => rec.all(EventName.completedOrdersEnd, m).length, "reqCompletedOrders: end arrives")) {
    const done = rec.all(EventName.completedOrder, m).map(([, o, s]) => `${o.orderRef}:${s.status}`);
    check(done.includes("smoke-mkt:Filled") && done.includes("smoke-lmt:Cancelled"),
      "completed orders: the filled and the cancelled order, by orderRef", show(done));
  }
  const frames = rec.all(EventName.received).map(([t]) => t).slice(1);
  const bad = frames.filter((t) => ORDER_FIELD_COUNT[t[0]] !== undefined && t.length !== ORDER_FIELD_COUNT[t[0]]);
  check(bad.length === 0, `orders: every one of ${frames.length} frames has the field count stoqey reads`,
    show(bad.map((t) => [t[0], t.length, ORDER_FIELD_COUNT[t[0]]])));
  const errs = rec.all(EventName.error).filter(([, code, eid]) => !(code === 202 && eid === id + 1));
  check(errs.length === 0, "orders: no error events but 202 for the cancelled order",
    show(errs.map(([e, code, eid]) => [e?.message, code, eid])));
  const md = rec.mark;
  api.disconnect();
  await waitCheck(rec, () => rec.all(EventName.disconnected, md).length, "orders: disconnect completes");
}

// ---------------------------------------------------------------- main

async function main() {
  console.log(`-- gateway: ${opts.brokerkit} gateway --listen 127.0.0.1:0 --script ${opts.script}`);
  let addr;
  try {
    addr = await startGateway();
  } catch (e) {
    finish(`gateway: ${e.message}`);
    return;
  }
  check(true, `gateway printed ${show(addr.firstLine)}`);

  const first = await coreSession(addr.host, addr.port);
  await duplicateSession(addr.host, addr.port, first);
  await nextSession(addr.host, addr.port);
  await startupSession(addr.host, addr.port);
  await marketSession(addr.host, addr.port);
  await orderSession(addr.host, addr.port);

  // Field counts of everything the first session received.
  const frames = first.rec.all(EventName.received).map(([t]) => t);
  const bad = frames.slice(1).filter((t) => FIELD_COUNT[t[0]] !== undefined && t.length !== FIELD_COUNT[t[0]]);
  const unknown = [...new Set(frames.slice(1).map((t) => t[0]).filter((id) => FIELD_COUNT[id] === undefined))];
  check(frames.length > 0 && frames[0].length === 2, "handshake reply has 2 fields (version, time)", show(frames[0]));
  check(bad.length === 0 && unknown.length === 0,
    `every one of ${frames.length - 1} frames after the handshake has the field count stoqey reads`,
    `bad ${show(bad)}, unknown ids ${show(unknown)}`);
  const errs = first.rec.all(EventName.error);
  check(errs.length === 0, "IBApi: no error events (no decoder underrun, no unprocessed fields)",
    show(errs.map(([e, code, id]) => [e?.message, code, id])));

  // Clean disconnect, then a clean gateway shutdown.
  const m = first.rec.mark;
  first.api.disconnect();
  await waitCheck(first.rec, () => first.rec.all(EventName.disconnected, m).length, "IBApi: disconnect completes");
  const exit = await stopGateway();
  check(exit && exit.code === 0, "gateway exits 0 on SIGTERM", show(exit));
  finish();
}

main().catch((e) => finish(`unexpected: ${e?.stack ?? e}`));
