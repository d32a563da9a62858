/**
 * A streamed answer on a real Unix socket (connection.ts, SPEC §6.5): its pieces are made only as
 * the client takes them, so a client that does not read holds a piece or two, not the answer; a
 * hang-up stops it; and other clients are served between its pieces. Served in-process by the
 * daemon's own Connection and RunQueue; the answer is a counted stand-in for a large SHOW.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { startConnectionServer, type ConnectionServer } from "../support/connection_server.js";
import { connect, hangUpAfter, readLine, settledCount } from "../support/socket_lines.js";
import { StreamedOk, type Answer } from "../../src/protocol/streamed.js";


/** What the stand-in answers have done so far. */
const made = { pieces: 0, atPing: -1 };

/** `{"blob":["xx..","xx..",...]}` in `count` pieces of about `size` bytes, counted as they are made. */
function* blob(count: number, size: number): Generator<string, void, undefined> {
  yield '{"blob":[';
  for (let i = 0; i < count; i++) {
    made.pieces++;
    yield `${i === 0 ? "" : ","}"${"x".repeat(size)}"`;
  }
  yield "]}";
}

function serve(line: Buffer): Promise<Answer> {
  const req = JSON.parse(line.toString("utf8")) as { action: string; count?: number; size?: number };
  if (req.action === "PING") {
    made.atPing = made.pieces;
    return Promise.resolve({ status: "ok", dry_run: false, changes: [], result: { pong: true } });
  }
  return Promise.resolve(new StreamedOk(blob(req.count ?? 0, req.size ?? 0), false));
}

let path: string;
let srv: ConnectionServer;

before(async () => {
  srv = await startConnectionServer(serve, 1 << 20);
  path = srv.path;
});
after(() => srv.close());



const settled = (): Promise<number> => settledCount(() => made.pieces);

void describe("a streamed answer", () => {
  void test("a client that does not read holds a piece or two, not the answer; it is served whole once it reads", async (t) => {
    made.pieces = 0;
    const count = 400;
    const size = 40_000; // 16 MB in all
    const slow = await connect(path);
    slow.pause();
    slow.write(JSON.stringify({ action: "SHOW", count, size }) + "\n");
    const stalled = await settled();
    const daemonSide = srv.accepted.at(-1)?.socket;
    const buffered = daemonSide?.writableLength ?? NaN;
    t.diagnostic(`client not reading: ${stalled} of ${count} pieces made; ${buffered} bytes buffered in the connection`);
    assert.ok(stalled < count / 8, `${stalled} of ${count} pieces (${(stalled * size / 2 ** 20).toFixed(1)} MiB) made for a client that reads nothing`);
    assert.ok(buffered <= 2 * size, `${buffered} bytes buffered in the connection`);

    // Another client is answered meanwhile.
    const other = await connect(path);
    const pong = readLine(other);
    other.write('{"action":"PING"}\n');
    assert.match(await pong, /"pong":true/);
    other.destroy();
    assert.ok(made.pieces < count, "the PING waited for the whole answer");

    const line = readLine(slow);
    slow.resume();
    const answer = JSON.parse(await line) as { status: string; result: { blob: string[] } };
    assert.equal(answer.status, "ok");
    assert.equal(answer.result.blob.length, count);
    assert.equal(made.pieces, count);
    slow.destroy();
  });

  void test("a client that hangs up mid-answer stops it: no piece is made after the hang-up", async () => {
    made.pieces = 0;
    const count = 400;
    const s = await connect(path);
    const gone = hangUpAfter(s, 100_000);
    s.write(JSON.stringify({ action: "SHOW", count, size: 40_000 }) + "\n");
    const got = await gone;
    const conn = srv.accepted.at(-1)?.conn;
    await conn?.closed;
    const atClose = made.pieces;
    const final = await settled();
    assert.ok(final <= atClose + 1, `${final - atClose} pieces made after the connection closed`);
    assert.ok(final < count, `all ${count} pieces were made for a client that hung up after ${got} bytes`);
  });

  void test("other clients are served between its pieces, also when the client keeps up", async () => {
    made.pieces = 0;
    made.atPing = -1;
    const count = 300; // ~3 KB in all: never held up by the socket buffers
    const reader = await connect(path);
    let pongFirst: boolean | undefined;
    let other: Socket | undefined;
    const pinged = new Promise<string>((resolve, reject) => {
      const whole = readLine(reader, () => {
        // At its first bytes, another client asks.
        connect(path).then((o) => {
          other = o;
          const pong = readLine(o);
          o.write('{"action":"PING"}\n');
          return pong;
        }).then((p) => {
          pongFirst ??= true;
          resolve(p);
        }, reject);
      });
      whole.then(() => { pongFirst ??= false; }, reject);
    });
    reader.write(JSON.stringify({ action: "SHOW", count, size: 8 }) + "\n");
    assert.match(await pinged, /"pong":true/);
    assert.equal(pongFirst, true, "the PING was answered only after the whole streamed answer");
    assert.ok(made.atPing >= 0 && made.atPing < count, `the PING was served after ${made.atPing} of ${count} pieces`);
    reader.destroy();
    other?.destroy();
  });
});
