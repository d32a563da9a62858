/**
 * A transaction answer with many kernel steps on a real Unix socket, served by the daemon's own
 * RequestHandler, Connection and RunQueue: its pieces are made only as the client takes them, so
 * a client that hangs up stops it and a client that does not read holds a piece or two; other
 * clients are served meanwhile.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startConnectionServer, type ConnectionServer } from "../support/connection_server.js";
import { connect, hangUpAfter, readLine, settledCount } from "../support/socket_lines.js";
import { RequestHandler } from "../../src/daemon/handlers.js";
import { Engine } from "../../src/engine/engine.js";
import { emptyConfig } from "../../src/model/types.js";
import { CHANGES_PER_PIECE, StreamedOk, type Answer } from "../../src/protocol/streamed.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore } from "../support/memory_store.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ROUTES = 20_000; // ~2 MB of changes: far more than the socket buffers hold

/** Pieces of streamed answers taken so far, and how many the last one has in all. */
const made = { pieces: 0, streamed: 0 };

let path: string;
let srv: ConnectionServer;
let handler: RequestHandler;

async function serve(line: Buffer): Promise<Answer> {
  const answer = await handler.handleLine(line);
  if (answer instanceof StreamedOk) {
    made.streamed++;
    // Counts each piece asked for: a piece is made only then.
    const next = answer.next.bind(answer);
    answer.next = (): string => {
      made.pieces++;
      return next();
    };
  }
  return answer;
}

const apply = (dryRun: boolean): string => JSON.stringify({
  action: "APPLY", dry_run: dryRun,
  payload: { state: { routes: Array.from({ length: ROUTES }, (_, i) => ({ source: "10.0.0.1", group: `239.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, iif: "e0", oifs: ["e1"] })) } },
}) + "\n";
/** Pieces of the answer to apply(): envelope with the first changes, the rest of the changes, result and end. */
const TOTAL = Math.ceil((ROUTES + 2) / CHANGES_PER_PIECE) + 2;

before(async () => {
  const links = new FakeLinks(["e0", "e1"]);
  const engine = new Engine(new FakeKernel(links), links, new MemoryStore(undefined, emptyConfig()));
  await engine.restore();
  handler = new RequestHandler(engine, { sgCounters: () => undefined, vifCounters: () => undefined }, { status: () => ({}) }, () => ({ interfaces: new Map(), vifsInUse: { 4: 0, 6: 0 }, unrouted: [] }));
  srv = await startConnectionServer(serve, 64 << 20);
  path = srv.path;
});
after(() => srv.close());



const settled = (): Promise<number> => settledCount(() => made.pieces);

void describe("a transaction answer on a connection", () => {
  void test("a client that hangs up mid-answer stops it: no piece is made after the hang-up", async () => {
    made.pieces = made.streamed = 0;
    const s = await connect(path);
    const gone = hangUpAfter(s, 100_000);
    s.write(apply(true));
    const got = await gone;
    await srv.accepted.at(-1)?.conn.closed;
    const atClose = made.pieces;
    const final = await settled();
    assert.equal(made.streamed, 1, "the answer was not streamed");
    assert.ok(final <= atClose + 1, `${final - atClose} pieces made after the connection closed`);
    assert.ok(final < TOTAL / 2, `${final} of ${TOTAL} pieces made for a client that hung up after ${got} bytes`);
  });

  void test("a client that does not read holds a few pieces; another is served meanwhile; then it gets the whole answer", async () => {
    made.pieces = made.streamed = 0;
    const slow = await connect(path);
    slow.pause();
    slow.write(apply(false));
    await sleep(50);
    const stalled = await settled();
    assert.equal(made.streamed, 1, "the answer was not streamed");
    assert.ok(stalled < TOTAL / 2, `${stalled} of ${TOTAL} pieces made for a client that reads nothing`);

    const other = await connect(path);
    const pong = readLine(other);
    other.write('{"action":"PING","id":1}\n');
    assert.equal(await pong, '{"status":"ok","dry_run":false,"changes":[],"result":{"pong":true},"id":1}\n');
    other.destroy();
    assert.ok(made.pieces < TOTAL, "the PING waited for the whole answer");

    const line = readLine(slow);
    slow.resume();
    const answer = JSON.parse(await line) as { status: string; changes: { action: string }[]; result: Record<string, unknown> };
    assert.equal(answer.status, "ok");
    assert.equal(answer.changes.length, ROUTES + 2);
    assert.deepEqual(answer.result, { operations: 1, kernel_steps: ROUTES + 2, routes: { added: ROUTES, replaced: 0, removed: 0, unchanged: 0 } });
    assert.equal(made.pieces, TOTAL);
    slow.destroy();
  });
});
