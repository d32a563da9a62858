// Hostile requests against a running daemon (SPEC §5, §6.5): every bad line gets the documented
// error code, the connection survives it (except E_TOO_LARGE, which closes), and nothing changes in
// the kernel or the state file. Needs root and a build (tests run dist/). Run:
//   node --import tsx --test test/e2e/hostile.test.ts
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createLab, type Lab } from "../lab/lab.js";
import { kernelTables, startDaemon, type DaemonHandle } from "../lab/daemon.js";
import { RawClient, exchange } from "../support/raw_client.js";

const MAX = 65_536;
const G1 = "239.1.1.1";

type Code = string;
interface Case { name: string; line: string | Buffer; codes: Code[] }

const deep = (n: number, open = "[", close = "]"): string => open.repeat(n) + close.repeat(n);
const deepObj = (n: number): string => '{"a":'.repeat(n) + "1" + "}".repeat(n);
const req = (action: string, payload?: unknown, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ action, ...(payload === undefined ? {} : { payload }), ...extra });
const bytes = (...parts: (string | number[])[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p))));

function cases(S: string): Case[] {
  // Each case gets its own group, so a case the daemon wrongly accepts cannot make the next fail too.
  let n = 0;
  const route = (over: Record<string, unknown>): Record<string, unknown> => ({ source: S, group: `239.2.2.${++n}`, iif: "up0", oifs: ["dn1"], ...over });
  const BAD = ["E_BAD_REQUEST"];
  const ARG = ["E_INVALID_ARGUMENT"];
  const ADDR = ["E_INVALID_ADDRESS"];
  const NOIF = ["E_IF_NOT_FOUND"];
  return [
    // -- not a JSON object -------------------------------------------------------------------------
    { name: "not JSON", line: "hello daemon", codes: BAD },
    { name: "truncated JSON", line: '{"action":"PING"', codes: BAD },
    { name: "trailing garbage after the object", line: '{"action":"PING"} x', codes: BAD },
    { name: "JSON array", line: '[{"action":"PING"}]', codes: BAD },
    { name: "JSON number", line: "42", codes: BAD },
    { name: "JSON string", line: '"PING"', codes: BAD },
    { name: "JSON null", line: "null", codes: BAD },
    { name: "JSON true", line: "true", codes: BAD },
    { name: "invalid UTF-8 (0xff 0xfe) in a string", line: bytes('{"action":"PING","id":"', [0xff, 0xfe], '"}'), codes: BAD },
    { name: "invalid UTF-8 (overlong '/')", line: bytes('{"action":"PING","id":"', [0xc0, 0xaf], '"}'), codes: BAD },
    { name: "invalid UTF-8 (encoded surrogate)", line: bytes('{"action":"PING","id":"', [0xed, 0xa0, 0x80], '"}'), codes: BAD },
    { name: "invalid UTF-8 (truncated sequence at end of line)", line: bytes('{"action":"PING"}', [0xe2, 0x82]), codes: BAD },
    { name: "raw NUL byte in the line", line: bytes('{"action":"PING"}', [0]), codes: BAD },
    // -- deep nesting: must answer, not overflow the stack -----------------------------------------
    { name: "10 000-deep nested arrays as payload.group", line: `{"action":"ADD_MFC","payload":{"group":${deep(10_000)},"iif":"up0","oifs":["dn1"]}}`, codes: ["E_INVALID_ARGUMENT", "E_BAD_REQUEST"] },
    { name: "10 000-deep nested arrays as payload.oifs", line: `{"action":"ADD_MFC","payload":{"group":"${G1}","iif":"up0","oifs":${deep(10_000)}}}`, codes: ["E_INVALID_ARGUMENT", "E_BAD_REQUEST"] },
    { name: "10 000-deep nested arrays in an unknown payload field", line: `{"action":"PING","payload":{"x":${deep(10_000)}}}`, codes: ["E_INVALID_ARGUMENT", "E_BAD_REQUEST"] },
    { name: "10 000-deep nested objects as payload", line: `{"action":"FLUSH","payload":${deepObj(10_000)}}`, codes: ["E_INVALID_ARGUMENT", "E_BAD_REQUEST"] },
    { name: "10 000-deep nested arrays as the id", line: `{"action":"PING","id":${deep(10_000)}}`, codes: ["E_INVALID_ARGUMENT", "E_BAD_REQUEST"] },
    { name: "10 000 unclosed brackets", line: "[".repeat(10_000), codes: BAD },
    // -- prototype keys ------------------------------------------------------------------------------
    { name: "__proto__ at top level", line: '{"action":"PING","__proto__":{"dry_run":true}}', codes: ARG },
    { name: "constructor at top level", line: '{"action":"PING","constructor":{}}', codes: ARG },
    { name: "__proto__ inside payload (else ADD_VIF dn1 would apply)", line: '{"action":"ADD_VIF","payload":{"ifname":"dn1","__proto__":{"x":1}}}', codes: ARG },
    { name: "constructor inside payload", line: '{"action":"ADD_VIF","payload":{"ifname":"dn1","constructor":1}}', codes: ARG },
    { name: "prototype inside payload", line: '{"action":"FLUSH","payload":{"prototype":1}}', codes: ARG },
    { name: "__proto__ carrying the fields", line: '{"action":"ADD_VIF","payload":{"__proto__":{"ifname":"dn1"}}}', codes: ARG },
    { name: "__proto__ inside a BATCH operation payload", line: '{"action":"BATCH","payload":{"operations":[{"action":"ADD_VIF","payload":{"ifname":"dn1","__proto__":{}}}]}}', codes: ARG },
    // -- envelope -----------------------------------------------------------------------------------
    { name: "unknown action", line: req("REBOOT"), codes: ["E_UNKNOWN_ACTION"] },
    { name: "unknown action in lower case", line: req("ping"), codes: ["E_UNKNOWN_ACTION"] },
    { name: "action named like an Object.prototype member", line: req("constructor"), codes: ["E_UNKNOWN_ACTION"] },
    { name: "action __proto__", line: req("__proto__"), codes: ["E_UNKNOWN_ACTION"] },
    { name: "unknown action inside BATCH", line: req("BATCH", { operations: [{ action: "REBOOT" }] }), codes: ["E_UNKNOWN_ACTION"] },
    { name: "BATCH inside BATCH", line: req("BATCH", { operations: [{ action: "BATCH", payload: { operations: [] } }] }), codes: ARG },
    { name: "missing action", line: "{}", codes: ARG },
    { name: "action is a number", line: '{"action":1}', codes: ARG },
    { name: "unknown top-level field", line: req("PING", undefined, { extra: 1 }), codes: ARG },
    { name: "dry_run as the string \"false\"", line: req("ADD_VIF", { ifname: "dn1" }, { dry_run: "false" }), codes: ARG },
    { name: "dry_run as 0", line: req("ADD_VIF", { ifname: "dn1" }, { dry_run: 0 }), codes: ARG },
    { name: "payload is a string", line: '{"action":"PING","payload":"x"}', codes: ARG },
    { name: "payload is an array", line: '{"action":"PING","payload":[]}', codes: ARG },
    { name: "payload is an array (FLUSH)", line: '{"action":"FLUSH","payload":[1,2]}', codes: ARG },
    { name: "id is an object", line: '{"action":"PING","id":{}}', codes: ARG },
    { name: "id is a 129-char string", line: req("PING", undefined, { id: "i".repeat(129) }), codes: ARG },
    // -- field types --------------------------------------------------------------------------------
    { name: "number as string (threshold \"3\")", line: req("ADD_VIF", { ifname: "dn1", threshold: "3" }), codes: ARG },
    { name: "number as string (ttl \"1\")", line: req("ADD_MFC", route({ oifs: [{ ifname: "dn1", ttl: "1" }] })), codes: ARG },
    { name: "missing group", line: req("ADD_MFC", { iif: "up0", oifs: ["dn1"] }), codes: ARG },
    { name: "unknown payload field", line: req("ADD_MFC", route({ prio: 1 })), codes: ARG },
    { name: "group is a number", line: req("ADD_MFC", route({ group: 4026597633 })), codes: ARG },
    { name: "oifs is a string", line: req("ADD_MFC", route({ oifs: "dn1" })), codes: ARG },
    { name: "oifs empty", line: req("ADD_MFC", route({ oifs: [] })), codes: ARG },
    { name: "33 oifs", line: req("ADD_MFC", route({ oifs: Array.from({ length: 33 }, (_, i) => `x${i}`) })), codes: ARG },
    // -- interface names ----------------------------------------------------------------------------
    { name: "empty interface name", line: req("ADD_VIF", { ifname: "" }), codes: ARG },
    { name: "100-char interface name", line: req("ADD_VIF", { ifname: "d".repeat(100) }), codes: ARG },
    { name: "interface name with '/'", line: req("ADD_VIF", { ifname: "dn1/x" }), codes: ARG },
    { name: "interface name with ':'", line: req("ADD_VIF", { ifname: "dn1:0" }), codes: ARG },
    { name: "interface name with a space", line: req("ADD_VIF", { ifname: "dn 1" }), codes: ARG },
    { name: "interface name '..'", line: req("ADD_VIF", { ifname: ".." }), codes: ARG },
    // The kernel stops a name at NUL: "dn1\0x" would resolve to dn1 and add a second VIF on it.
    { name: "interface name with NUL ('dn1\\u0000x')", line: req("ADD_VIF", { ifname: "dn1\u0000x" }), codes: ARG },
    { name: "iif with NUL ('up0\\u0000')", line: req("ADD_MFC", route({ iif: "up0\u0000" })), codes: ARG },
    // -- addresses ----------------------------------------------------------------------------------
    { name: "group 239.1.1.256", line: req("ADD_MFC", route({ group: "239.1.1.256" })), codes: ADDR },
    { name: "group 01.2.3.4 (leading zero)", line: req("ADD_MFC", route({ group: "01.2.3.4" })), codes: ADDR },
    { name: "group 0239.1.1.1 (leading zero, else multicast)", line: req("ADD_MFC", route({ group: "0239.1.1.1" })), codes: ADDR },
    { name: "group 1.2.3", line: req("ADD_MFC", route({ group: "1.2.3" })), codes: ADDR },
    { name: "group with a trailing space", line: req("ADD_MFC", route({ group: "239.1.1.1 " })), codes: ADDR },
    { name: "group in hex (0xef010101)", line: req("ADD_MFC", route({ group: "0xef010101" })), codes: ADDR },
    { name: "IPv6 group ff0e::1", line: req("ADD_MFC", route({ group: "ff0e::1" })), codes: ADDR },
    { name: "IPv6 source 2001:db8::1", line: req("ADD_MFC", route({ source: "2001:db8::1" })), codes: ADDR },
    { name: "IPv6 group, full form ff0e:0:0:0:0:0:0:1", line: req("ADD_MFC", route({ group: "ff0e:0:0:0:0:0:0:1" })), codes: ADDR },
    { name: "IPv6 in DEL_MFC", line: req("DEL_MFC", { group: "ff02::1" }), codes: ADDR },
    { name: "group 224.0.0.5 (link-local)", line: req("ADD_MFC", route({ group: "224.0.0.5" })), codes: ADDR },
    { name: "group 224.0.0.255 (link-local)", line: req("ADD_MFC", route({ group: "224.0.0.255" })), codes: ADDR },
    { name: "unicast group 10.1.2.3", line: req("ADD_MFC", route({ group: "10.1.2.3" })), codes: ADDR },
    { name: "class E group 240.0.0.1", line: req("ADD_MFC", route({ group: "240.0.0.1" })), codes: ADDR },
    { name: "multicast source", line: req("ADD_MFC", route({ source: "239.9.9.9" })), codes: ADDR },
    { name: "source 0.0.0.0", line: req("ADD_MFC", route({ source: "0.0.0.0" })), codes: ADDR },
    { name: "source 255.255.255.255", line: req("ADD_MFC", route({ source: "255.255.255.255" })), codes: ADDR },
    { name: "source 127.0.0.1", line: req("ADD_MFC", route({ source: "127.0.0.1" })), codes: ADDR },
    // -- route semantics ----------------------------------------------------------------------------
    { name: "iif among oifs", line: req("ADD_MFC", route({ oifs: ["dn1", "up0"] })), codes: ARG },
    { name: "oif listed twice", line: req("ADD_MFC", route({ oifs: ["dn1", { ifname: "dn1", ttl: 2 }] })), codes: ARG },
    { name: "ttl 0", line: req("ADD_MFC", route({ oifs: [{ ifname: "dn1", ttl: 0 }] })), codes: ARG },
    { name: "ttl 256", line: req("ADD_MFC", route({ oifs: [{ ifname: "dn1", ttl: 256 }] })), codes: ARG },
    { name: "ttl 1.5", line: req("ADD_MFC", route({ oifs: [{ ifname: "dn1", ttl: 1.5 }] })), codes: ARG },
    { name: "ttl 1e400 (Infinity)", line: `{"action":"ADD_MFC","payload":{"group":"239.2.2.2","iif":"up0","oifs":[{"ifname":"dn1","ttl":1e400}]}}`, codes: ARG },
    { name: "threshold 0", line: req("ADD_VIF", { ifname: "dn1", threshold: 0 }), codes: ARG },
    { name: "threshold 256", line: req("ADD_VIF", { ifname: "dn1", threshold: 256 }), codes: ARG },
    { name: "nonexistent iif", line: req("ADD_MFC", route({ iif: "eth99" })), codes: NOIF },
    { name: "nonexistent oif", line: req("ADD_MFC", route({ oifs: ["dn1", "eth99"] })), codes: NOIF },
    { name: "nonexistent interface in ADD_VIF", line: req("ADD_VIF", { ifname: "eth99" }), codes: NOIF },
    { name: "interface name > 15 bytes in UTF-8 (10 x 'é')", line: req("ADD_VIF", { ifname: "é".repeat(10) }), codes: ["E_IF_NOT_FOUND", "E_INVALID_ARGUMENT"] },
    // -- transactions: one bad operation rejects all of them -----------------------------------------
    {
      name: "BATCH whose last operation names a missing interface",
      line: req("BATCH", { operations: [{ action: "ADD_VIF", payload: { ifname: "dn1" } }, { action: "DEL_MFC", payload: { source: S, group: G1 } }, { action: "ADD_MFC", payload: route({ iif: "eth99" }) }] }),
      codes: NOIF,
    },
    {
      name: "BATCH whose last operation has a bad group",
      line: req("BATCH", { operations: [{ action: "FLUSH" }, { action: "ADD_MFC", payload: route({ group: "224.0.0.5" }) }] }),
      codes: ADDR,
    },
    {
      name: "APPLY with one bad route",
      line: req("APPLY", { state: { vifs: [], routes: [route({}), route({ group: "239.3.3.3", oifs: ["up0"] })] } }),
      codes: ARG,
    },
  ];
}

async function snapshot(lab: Lab, d: DaemonHandle): Promise<{ vif: string[]; cache: string[]; state: string | null }> {
  const t = await kernelTables(lab);
  return { ...t, state: existsSync(d.stateFile) ? readFileSync(d.stateFile, "latin1") : null };
}

void describe("hostile requests", () => {
  let lab: Lab;
  let d: DaemonHandle;
  let before_: Awaited<ReturnType<typeof snapshot>>;

  before(async () => {
    lab = await createLab();
    d = await startDaemon(lab, { extraConfig: `max_request_bytes = ${MAX}` });
    // Some real state, so that a request that wrongly applied (or flushed) shows up in the diff.
    for (const args of [["vif", "add", "dev", "dn2"], ["add", "from", lab.addr.sender, "to", G1, "iif", "up0", "oif", "dn1"]]) {
      const r = await d.mfc(args);
      assert.equal(r.code, 0, `mfc ${args.join(" ")}: ${r.stderr}`);
    }
    before_ = await snapshot(lab, d);
    assert.equal(before_.vif.length, 3, `expected VIFs up0 dn1 dn2: ${JSON.stringify(before_.vif)}`);
    assert.equal(before_.cache.length, 1, `expected one MFC entry: ${JSON.stringify(before_.cache)}`);
    assert.notEqual(before_.state, null, "state file missing after mfc add");
  });
  after(async () => {
    await d?.cleanup();
    await lab?.destroy();
  });

  void describe("each hostile line gets its error code and the connection stays usable", () => {
    // The case table needs the lab's addresses; node:test collects tests synchronously, so each
    // case is looked up by index once before() has run.
    const names = cases("10.0.1.2").map((c) => c.name);
    names.forEach((name, i) => {
      void it(name, async () => {
        const c = cases(lab.addr.sender)[i];
        assert.ok(c && c.name === name);
        const line = typeof c.line === "string" ? Buffer.from(c.line + "\n") : Buffer.concat([c.line, Buffer.from("\n")]);
        assert.ok(line.length <= MAX, `case line is ${line.length} bytes, over the test's own limit`);
        // The PING after the hostile line proves the framing resynchronised and the connection lives.
        const [r, pong] = await exchange(d.socket, Buffer.concat([line, Buffer.from('{"action":"PING","id":"after"}\n')]), 2);
        assert.equal(r?.status, "error", `accepted: ${JSON.stringify(r)}`);
        assert.ok(c.codes.includes(String(r.error_code)), `got ${String(r.error_code)} (${String(r.message)}), want ${c.codes.join(" or ")}`);
        assert.equal(typeof r.message, "string");
        assert.ok(String(r.message).length > 0 && String(r.message).length < 2_000, `message length ${String(r.message).length}`);
        assert.deepEqual(pong, { status: "ok", dry_run: false, changes: [], result: { pong: true }, id: "after" });
      });
    });
  });

  void it("several requests on one connection are answered in order, ids echoed", async () => {
    const S = lab.addr.sender;
    // A slow request (dry-run BATCH through the engine) first: a fast PING behind it must not overtake it.
    const ops = Array.from({ length: 400 }, (_, i) => ({
      action: "ADD_MFC", payload: { source: S, group: `239.50.${i >> 8}.${i & 255}`, iif: "up0", oifs: ["dn1", "dn2"] },
    }));
    const lines = [
      JSON.stringify({ action: "BATCH", dry_run: true, payload: { operations: ops }, id: 1 }),
      JSON.stringify({ action: "PING", id: 2 }),
      "not json at all",
      JSON.stringify({ action: "STATUS", id: "three" }),
      JSON.stringify({ action: "ADD_VIF", payload: { ifname: "eth99" }, id: 4 }),
      JSON.stringify({ action: "NOPE", id: 5 }),
      JSON.stringify({ action: "PING", extra: true, id: 6 }),
      JSON.stringify({ action: "SHOW", payload: { what: "routes" }, id: -7.5 }),
      JSON.stringify({ action: "DEL_MFC", dry_run: true, payload: { source: S, group: G1 }, id: 8 }),
      JSON.stringify({ action: "PING", id: 9 }),
    ];
    const want: [unknown, string, string?][] = [
      [1, "ok"], [2, "ok"], [undefined, "error", "E_BAD_REQUEST"], ["three", "ok"], [4, "error", "E_IF_NOT_FOUND"],
      [5, "error", "E_UNKNOWN_ACTION"], [6, "error", "E_INVALID_ARGUMENT"], [-7.5, "ok"], [8, "ok"], [9, "ok"],
    ];
    const check = (res: Record<string, unknown>[], how: string): void => {
      assert.equal(res.length, want.length, `${how}: ${res.length} responses`);
      res.forEach((r, i) => {
        const [id, status, code] = want[i] ?? [];
        assert.equal(r.id, id, `${how}: response ${i} has id ${JSON.stringify(r.id)}, want ${JSON.stringify(id)}: ${JSON.stringify(r).slice(0, 200)}`);
        assert.equal(r.status, status, `${how}: response ${i}: ${JSON.stringify(r).slice(0, 200)}`);
        if (code) assert.equal(r.error_code, code, `${how}: response ${i}`);
      });
      assert.equal((res[0]?.result as { operations?: number } | undefined)?.operations, ops.length);
      assert.equal(res[0]?.dry_run, true);
      assert.equal((res[3]?.result as { pid?: unknown } | undefined)?.pid, d.proc.pid);
    };
    // All lines in one write.
    check(await exchange(d.socket, lines.join("\n") + "\n", lines.length, 10_000), "one write");
    // The same bytes in small pieces that split lines (and UTF-8-free JSON) at arbitrary points.
    const c = await RawClient.connect(d.socket);
    try {
      const all = Buffer.from(lines.join("\r\n") + "\r\n"); // CRLF line ends are accepted too
      for (let off = 0, step = 1; off < all.length; off += step, step = (step * 7 + 3) % 4_093 || 1) {
        await c.send(all.subarray(off, off + step));
      }
      check(await c.waitResponses(lines.length, 10_000), "split writes, CRLF");
    } finally {
      c.destroy();
    }
  });

  void it("a line of exactly max_request_bytes is read; one byte more is E_TOO_LARGE and the connection is closed", async () => {
    const head = '{"action":"PING","payload":{"pad":"';
    const tail = '"}}';
    const exact = head + "p".repeat(MAX - head.length - tail.length) + tail;
    assert.equal(Buffer.byteLength(exact), MAX);
    const [r1, r2] = await exchange(d.socket, `${exact}\n{"action":"PING","id":1}\n`, 2);
    assert.equal(r1?.error_code, "E_INVALID_ARGUMENT", JSON.stringify(r1).slice(0, 300)); // pad is an extra field
    assert.equal(r2?.id, 1);

    const c = await RawClient.connect(d.socket);
    try {
      await c.send('{"action":"PING","id":"first"}\n');
      assert.equal((await c.waitResponses(1))[0]?.id, "first");
      const over = head + "p".repeat(MAX + 1 - head.length - tail.length) + tail;
      assert.equal(Buffer.byteLength(over), MAX + 1);
      await c.send(over + '\n{"action":"PING","id":"never"}\n');
      assert.ok(await c.waitClosed(5_000), "daemon did not close the connection after an over-long line");
      const res = c.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(res.length, 2, `responses: ${c.lines.join(" | ").slice(0, 500)}`);
      assert.equal(res[1]?.status, "error");
      assert.equal(res[1]?.error_code, "E_TOO_LARGE");
    } finally {
      c.destroy();
    }
  });

  void it("an endless line without a newline is cut off at max_request_bytes (E_TOO_LARGE, closed)", async () => {
    const c = await RawClient.connect(d.socket);
    try {
      const chunk = Buffer.alloc(16 * 1024, 0x61);
      // Keep writing (up to 16x the limit) until the daemon answers and hangs up: it must not wait
      // for a newline that never comes, nor keep buffering.
      for (let sent = 0; sent < 16 * MAX && !c.closed && c.lines.length === 0; sent += chunk.length) await c.send(chunk);
      assert.ok(await c.waitClosed(5_000), "daemon did not close the connection");
      assert.equal(c.lines.length, 1, `responses: ${c.lines.join(" | ")}`);
      assert.equal((JSON.parse(c.lines[0] ?? "{}") as { error_code?: string }).error_code, "E_TOO_LARGE");
    } finally {
      c.destroy();
    }
  });

  void it("afterwards the daemon is alive and the kernel tables and state file are unchanged", async () => {
    assert.equal(d.proc.exitCode, null, `daemon exited:\n${d.logs()}`);
    const [pong] = await exchange(d.socket, '{"action":"PING","id":"alive"}\n', 1);
    assert.deepEqual(pong, { status: "ok", dry_run: false, changes: [], result: { pong: true }, id: "alive" });
    assert.deepEqual(await snapshot(lab, d), before_);
    const show = await d.mfc(["-j", "show"]);
    assert.equal(show.code, 0, show.stderr);
    const view = JSON.parse(show.stdout) as { routes: { group: string }[]; vifs: { ifname: string }[] };
    assert.deepEqual(view.routes.map((r) => r.group), [G1]);
    assert.deepEqual(view.vifs.map((v) => v.ifname).sort(), ["dn1", "dn2", "up0"]);
    assert.doesNotMatch(d.logs(), /E_INTERNAL|Internal error|uncaught|unhandled/i);
  });
});
