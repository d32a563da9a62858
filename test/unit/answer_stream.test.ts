/**
 * The answer of a transaction with many kernel steps, written in pieces (issue 13 target 1): the
 * pieces join to exactly the line the daemon wrote before - checked against a copy of that
 * handler code run on a twin engine - for APPLY (also a dry run), BATCH and ADD answers, with and
 * without an id; no piece holds more than a few hundred steps; small answers are still one
 * object; and the audit record counts the steps either way.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { RequestHandler, type AuditRecord } from "../../src/daemon/handlers.js";
import { checkRoute, type Facts } from "../../src/diagnostics/checks.js";
import { Engine } from "../../src/engine/engine.js";
import { summarizeApply } from "../../src/engine/operations.js";
import { emptyConfig, routeKey, type Route } from "../../src/model/types.js";
import type { OkResponse } from "../../src/protocol/messages.js";
import { parseBatch, parseOp, type Op } from "../../src/protocol/schema.js";
import { CHANGES_PER_PIECE, StreamedOk, jsonArrayPieces, type Answer } from "../../src/protocol/streamed.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore } from "../support/memory_store.js";

const IFS = ["e0", "e1", "e2", "e3", "e4"];
const FACTS: Facts = { interfaces: new Map(), vifsInUse: { 4: 0, 6: 0 }, unrouted: [] };
const noCounters = { sgCounters: () => undefined, vifCounters: () => undefined };

const group = (i: number): string => `239.1.${i >> 8}.${i & 255}`;
const wire = (i: number, oifs: string[], ttl = 1): Record<string, unknown> =>
  ({ source: `10.0.${i % 3}.1`, group: group(i), iif: "e0", oifs: oifs.map((ifname) => ({ ifname, ttl })) });

/** 300 routes over e0..e2, e3 pinned: the state every request below starts from. */
async function world(audit: (r: AuditRecord) => void = () => undefined): Promise<{ engine: Engine; handler: RequestHandler }> {
  const links = new FakeLinks(IFS);
  const config = emptyConfig();
  for (let i = 0; i < 300; i++) {
    const r = wire(i, i % 2 ? ["e1"] : ["e1", "e2"]) as unknown as Route;
    config.routes.set(routeKey(r.source, r.group), r);
  }
  config.vifs.set("e3", { ifname: "e3", threshold: 1 });
  const engine = new Engine(new FakeKernel(links), links, new MemoryStore(undefined, config));
  await engine.restore();
  return { engine, handler: new RequestHandler(engine, noCounters, { status: () => ({}) }, () => FACTS, audit) };
}

type Legacy = OkResponse & { changes: Record<string, unknown>[] };

/** The handler's transaction answer as it was before it was streamed (commit 2edbc31): the oracle. */
async function legacyAnswer(engine: Engine, ops: Op[], dryRun: boolean, id?: number | string): Promise<Legacy> {
  const applied = ops.length === 1 && ops[0]?.action === "APPLY" ? ops[0] : undefined;
  const summary = applied ? summarizeApply(engine.snapshot().config, applied.routes) : undefined;
  const { changes } = await engine.transact(ops, dryRun);
  const result: Record<string, unknown> = { operations: ops.length, kernel_steps: changes.length };
  if (summary) result.routes = summary;
  const added = ops.length === 1 && (ops[0]?.action === "ADD_MFC" || ops[0]?.action === "REPLACE_MFC") ? ops[0].route : undefined;
  if (added) {
    const warnings = checkRoute(added, FACTS).filter((f) => f.severity !== "info");
    if (warnings.length > 0) result.warnings = warnings;
  }
  const res: Legacy = { status: "ok", dry_run: dryRun, changes, result };
  return id === undefined ? res : { ...res, id };
}

function drain(answer: StreamedOk): string[] {
  const pieces: string[] = [];
  while (!answer.done) pieces.push(answer.next());
  return pieces;
}

/** The bytes the connection writes for an answer. */
const text = (a: Answer): string => (a instanceof StreamedOk ? drain(a).join("") : JSON.stringify(a) + "\n");

const applyState = (): Record<string, unknown> => ({
  // 100 removed, 100 replaced (new oif e4: a new VIF), 100 unchanged, 500 added; e3 unpinned.
  state: { vifs: [], routes: [...Array.from({ length: 700 }, (_, k) => k + 100).map((i) => wire(i, i < 200 ? ["e4"] : i % 2 ? ["e1"] : ["e1", "e2"]))] },
});
const adds = (n: number, from = 1000): Record<string, unknown> =>
  ({ operations: Array.from({ length: n }, (_, k) => ({ action: "ADD_MFC", payload: wire(from + k, ["e2"]) })) });

const CASES: { name: string; action: string; payload: Record<string, unknown>; dryRun: boolean; id?: number | string; streamed: boolean }[] = [
  { name: "APPLY", action: "APPLY", payload: applyState(), dryRun: false, streamed: true },
  { name: "APPLY with an id", action: "APPLY", payload: applyState(), dryRun: false, id: 'q"\\é', streamed: true },
  { name: "APPLY dry run", action: "APPLY", payload: applyState(), dryRun: true, id: 7, streamed: true },
  { name: "BATCH of 600 adds", action: "BATCH", payload: adds(600), dryRun: false, id: 1, streamed: true },
  { name: "BATCH dry run", action: "BATCH", payload: adds(600), dryRun: true, streamed: true },
  { name: `BATCH of ${CHANGES_PER_PIECE} steps (the largest answer sent whole)`, action: "BATCH", payload: adds(CHANGES_PER_PIECE), dryRun: false, streamed: false },
  { name: `BATCH of ${CHANGES_PER_PIECE + 1} steps`, action: "BATCH", payload: adds(CHANGES_PER_PIECE + 1), dryRun: false, streamed: true },
  { name: "ADD (a warning: interfaces unknown to the facts)", action: "ADD_MFC", payload: wire(5000, ["e1", "e3"]), dryRun: false, id: 3, streamed: false },
  { name: "ADD dry run", action: "ADD_MFC", payload: wire(5000, ["e4"]), dryRun: true, streamed: false },
  { name: "APPLY of the state as it is (no steps)", action: "APPLY", payload: { state: { vifs: [{ ifname: "e3" }], routes: Array.from({ length: 300 }, (_, i) => wire(i, i % 2 ? ["e1"] : ["e1", "e2"])) } }, dryRun: false, streamed: false },
];

void describe("streamed transaction answer", () => {
  for (const c of CASES) {
    void test(`${c.name}: the bytes written = the whole line of before`, async () => {
      const audits: AuditRecord[] = [];
      const { engine, handler } = await world((r) => audits.push(r));
      const twin = await world();
      const request = { action: c.action, dry_run: c.dryRun, payload: c.payload, ...(c.id === undefined ? {} : { id: c.id }) };
      const ops = c.action === "BATCH" ? parseBatch(c.payload) : [parseOp(c.action, c.payload)];
      const expected = JSON.stringify(await legacyAnswer(twin.engine, ops, c.dryRun, c.id)) + "\n";
      const answer = await handler.handleLine(Buffer.from(JSON.stringify(request)));
      assert.equal(answer instanceof StreamedOk, c.streamed, `streamed: ${String(answer instanceof StreamedOk)}`);
      const steps = (JSON.parse(expected) as { changes: unknown[] }).changes.length;
      if (answer instanceof StreamedOk) {
        const pieces = drain(answer);
        assert.equal(pieces.join(""), expected);
        assert.equal(answer.next(), "", "nothing after the last piece");
        const longest = Math.max(...pieces.map((p) => p.length));
        assert.ok(longest < 200 * CHANGES_PER_PIECE, `a piece of ${longest} characters (${steps} steps in all)`);
        assert.ok(pieces.length >= Math.ceil(steps / CHANGES_PER_PIECE), `${steps} steps in ${pieces.length} pieces`);
      } else {
        assert.equal(text(answer), expected);
      }
      assert.deepEqual(audits.map((a) => [a.action, a.dryRun, a.outcome, a.kernelSteps]), [[c.action, c.dryRun, "ok", steps]]);
      // Both engines took the same transaction (or, dry, none).
      assert.deepEqual([...engine.snapshot().config.routes.keys()], [...twin.engine.snapshot().config.routes.keys()]);
    });
  }

  for (const c of CASES) {
    void test(`${c.name}, the client reading no steps (changes: false): the line of before without its changes`, async () => {
      const audits: AuditRecord[] = [];
      const { engine, handler } = await world((r) => audits.push(r));
      const twin = await world();
      const request = { action: c.action, dry_run: c.dryRun, changes: false, payload: c.payload, ...(c.id === undefined ? {} : { id: c.id }) };
      const ops = c.action === "BATCH" ? parseBatch(c.payload) : [parseOp(c.action, c.payload)];
      const { changes, ...rest } = await legacyAnswer(twin.engine, ops, c.dryRun, c.id);
      const answer = await handler.handleLine(Buffer.from(JSON.stringify(request)));
      assert.ok(!(answer instanceof StreamedOk), "streamed, although there is nothing to stream");
      assert.equal(text(answer), JSON.stringify(rest) + "\n");
      assert.equal(rest.result.kernel_steps, changes.length, "result.kernel_steps still counts the steps");
      // The audit still counts the kernel steps the transaction took.
      assert.deepEqual(audits.map((a) => [a.action, a.dryRun, a.outcome, a.kernelSteps]), [[c.action, c.dryRun, "ok", changes.length]]);
      assert.deepEqual([...engine.snapshot().config.routes.keys()], [...twin.engine.snapshot().config.routes.keys()]);
    });
  }

  void test("changes: false must be a boolean", async () => {
    const { handler } = await world();
    const answer = await handler.handleLine(Buffer.from(JSON.stringify({ action: "PING", changes: "no" })));
    assert.ok(!(answer instanceof StreamedOk) && answer.status === "error" && answer.error_code === "E_INVALID_ARGUMENT", text(answer));
  });

  void test("the pieces are made as they are asked for, and a later transaction does not change them", async () => {
    const { engine, handler } = await world();
    const twin = await world();
    const expected = JSON.stringify(await legacyAnswer(twin.engine, parseBatch(adds(600)), false)) + "\n";
    const answer = await handler.handleLine(Buffer.from(JSON.stringify({ action: "BATCH", payload: adds(600) })));
    assert.ok(answer instanceof StreamedOk);
    const first = [answer.next(), answer.next()];
    await engine.transact([{ action: "FLUSH" }], false);
    assert.equal([...first, ...drain(answer)].join(""), expected);
  });

  void test("jsonArrayPieces: any piece size joins to JSON.stringify of the array", () => {
    const items: unknown[] = [{ a: 'x"}],\\' }, null, undefined, "é😀\u2028", [1, [2, {}]], 1e21, -0, { b: undefined, c: [] }];
    for (let n = 0; n <= items.length; n++) {
      const some = items.slice(0, n);
      for (let per = 1; per <= n + 1; per++) {
        const pieces = [...jsonArrayPieces(some, (x) => x, per)];
        assert.equal(pieces.join(""), JSON.stringify(some), `${n} items, ${per} a piece`);
        assert.equal(pieces.length, Math.max(1, Math.ceil(n / per)), `${n} items, ${per} a piece`);
      }
    }
  });

  void test("StreamedOk: changes and result pieces, with and without an id, = JSON.stringify of the object", () => {
    const changes = [{ action: "add_mfc", group: "239.1.1.1" }, { action: "del_vif", vifi: 2 }, { action: "x" }];
    const result = { operations: 1, kernel_steps: 3, routes: { added: 1 } };
    for (const id of [undefined, 0, "i\"d"]) {
      for (const dryRun of [false, true]) {
        for (let per = 1; per <= 4; per++) {
          const base = new StreamedOk([JSON.stringify(result)], dryRun, { changes: jsonArrayPieces(changes, (x) => x, per), changeCount: 3 });
          const answer = id === undefined ? base : base.withId(id);
          const obj = { status: "ok", dry_run: dryRun, changes, result, ...(id === undefined ? {} : { id }) };
          assert.equal(drain(answer).join(""), JSON.stringify(obj) + "\n");
          assert.equal(answer.changeCount, 3);
        }
      }
    }
    const none = new StreamedOk(['{"a":', "1}"], false);
    assert.equal(drain(none).join(""), '{"status":"ok","dry_run":false,"changes":[],"result":{"a":1}}\n');
  });
});
