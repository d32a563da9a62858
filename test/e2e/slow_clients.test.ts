// Slow, silent and greedy clients (SPEC §6.5 "no input can ... stall other clients"; config keys
// client_timeout_s and max_connections). Needs root and a build (tests run dist/). Run:
//   node --import tsx --test test/e2e/slow_clients.test.ts
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { createLab, type Lab } from "../lab/lab.js";
import { startDaemon, type DaemonHandle } from "../lab/daemon.js";
import { RawClient } from "../support/raw_client.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Connects, PINGs, returns the answer and how long it took (ms) from connect to answer. */
async function timedPing(sock: string, id: string): Promise<{ ms: number; res: Record<string, unknown> | undefined; closed: boolean }> {
  const t0 = performance.now();
  const c = await RawClient.connect(sock);
  try {
    await c.send(`{"action":"PING","id":"${id}"}\n`);
    const [res] = await c.waitResponses(1, 5_000);
    return { ms: performance.now() - t0, res, closed: c.closed };
  } finally {
    c.destroy();
  }
}

let lab: Lab;
before(async () => { lab = await createLab(); });
after(async () => { await lab?.destroy(); });

void describe("client_timeout_s = 1", () => {
  let d: DaemonHandle;
  const open: RawClient[] = [];
  before(async () => { d = await startDaemon(lab, { extraConfig: "client_timeout_s = 1" }); });
  after(async () => {
    for (const c of open) c.destroy();
    await d?.cleanup();
  });

  void it("a silent connection and one stuck mid-line do not delay another client", async () => {
    const silent = await RawClient.connect(d.socket);
    const half = await RawClient.connect(d.socket);
    open.push(silent, half);
    await half.send('{"action":"PING","id":"hal');
    await sleep(50);
    const { ms, res } = await timedPing(d.socket, "other");
    assert.equal(res?.id, "other", JSON.stringify(res));
    assert.equal(res?.status, "ok");
    // Not delayed: answered while both are still connected. A daemon waiting on either of them
    // would answer only once client_timeout_s had cut them off.
    assert.equal(silent.closed || half.closed, false, `answered (after ${ms.toFixed(0)} ms) only once the slow clients were cut off`);
    assert.equal(silent.lines.length + half.lines.length, 0, "the slow clients got answers to nothing");
  });

  void it("a client that pipelines requests but never reads the answers does not delay another client", async () => {
    // The greedy client's answers fill the socket buffers; only its own connection may stall.
    const greedy: Socket = await new Promise((resolve, reject) => {
      const s = createConnection(d.socket);
      s.once("connect", () => { s.pause(); resolve(s); });
      s.once("error", reject);
    });
    greedy.on("error", () => undefined);
    let greedyClosed = false;
    greedy.once("close", () => { greedyClosed = true; });
    try {
      greedy.write('{"action":"STATUS"}\n'.repeat(20_000));
      await sleep(200);
      for (let i = 0; i < 3; i++) {
        const { ms, res } = await timedPing(d.socket, `meanwhile-${i}`);
        assert.equal(res?.id, `meanwhile-${i}`);
        // Not delayed: the first is answered while the non-reader still holds its connection
        // (client_timeout_s cuts it off a second after it stops reading; a daemon stuck on it
        // would answer only then).
        if (i === 0) assert.equal(greedyClosed, false, `answered (after ${ms.toFixed(0)} ms) only once the non-reading client was cut off`);
      }
    } finally {
      greedy.destroy();
    }
  });

  void it("an idle client is disconnected after client_timeout_s", async () => {
    const t0 = Date.now();
    const c = await RawClient.connect(d.socket);
    open.push(c);
    assert.ok(await c.waitClosed(5_000), "idle connection not closed within 5 s");
    // Not before client_timeout_s (the contract); that it happens at all is waitClosed's.
    const ms = (c.closedAt ?? Date.now()) - t0;
    assert.ok(ms >= 900, `closed after ${ms} ms, before client_timeout_s (1 s)`);
    assert.equal(c.lines.length, 0);
  });

  void it("a client stuck mid-line is disconnected after client_timeout_s, unanswered", async () => {
    const c = await RawClient.connect(d.socket);
    open.push(c);
    const t0 = Date.now();
    await c.send('{"action":"FLUSH","payload":{');
    assert.ok(await c.waitClosed(5_000), "connection with a partial line not closed within 5 s");
    const ms = (c.closedAt ?? Date.now()) - t0;
    assert.ok(ms >= 900, `closed after ${ms} ms, before client_timeout_s (1 s)`);
    assert.equal(c.lines.length, 0);
  });

  void it("the timeout is for idleness: a client that keeps talking stays connected", async () => {
    const c = await RawClient.connect(d.socket);
    open.push(c);
    for (let i = 0; i < 6; i++) {
      await c.send(`{"action":"PING","id":${i}}\n`);
      const lines = await c.waitLines(i + 1, 2_000);
      assert.equal(lines.length, i + 1, `answer ${i} missing (closed: ${c.closed})`);
      await sleep(400);
    }
    assert.equal(c.closed, false, "an active client was disconnected");
    c.destroy();
  });

  // Last in this daemon's list: while the bug below exists, the flood leaves the daemon busy for seconds.
  void it("a client that sends without ever reading cannot make the daemon buffer without bound", async (t) => {
    // Each PING answer is queued in the daemon until the client reads it. Without backpressure
    // (stop reading a connection while many of its answers are unsent) the daemon keeps reading
    // and queueing: measured ~18 MB of daemon memory per MB of PINGs, i.e. one member of the
    // socket group can run the daemon out of memory - and the kernel drops every route with it.
    const rssMb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${d.proc.pid}/status`, "utf8"))?.[1] ?? NaN) / 1024;
    const before = rssMb();
    const s: Socket = await new Promise((resolve, reject) => {
      const c = createConnection(d.socket);
      c.once("connect", () => { c.pause(); resolve(c); });
      c.once("error", reject);
    });
    s.on("error", () => undefined);
    const chunk = Buffer.from('{"action":"PING"}\n'.repeat(58_255)); // ~1 MiB
    let sent = 0;
    const deadline = Date.now() + 10_000;
    try {
      while (sent < 32 * chunk.length && Date.now() < deadline && !s.destroyed) {
        sent += chunk.length;
        if (s.write(chunk)) continue;
        // The daemon stopped reading us (or hung up): that is the protection working.
        const drained = await Promise.race([
          new Promise<boolean>((r) => s.once("drain", () => r(true))),
          new Promise<boolean>((r) => s.once("close", () => r(false))),
          sleep(1_500).then(() => false),
        ]);
        if (!drained) break;
      }
      await sleep(200);
      const grown = rssMb() - before;
      t.diagnostic(`client pushed ${(sent / 2 ** 20).toFixed(0)} MiB (unsent ${(s.writableLength / 2 ** 20).toFixed(1)} MiB); daemon RSS ${before.toFixed(0)} -> ${(before + grown).toFixed(0)} MB`);
      assert.equal(d.proc.exitCode, null, `daemon died:\n${d.logs()}`);
      assert.ok(grown < 200, `daemon memory grew by ${grown.toFixed(0)} MB while one client sent ${(sent / 2 ** 20).toFixed(0)} MiB of requests without reading the answers`);
    } finally {
      s.destroy();
    }
    // Served again once the flooder is gone (waitResponses gives up after 5 s: a wedged daemon).
    const { ms, res } = await timedPing(d.socket, "after-flood");
    assert.equal(res?.id, "after-flood");
    t.diagnostic(`PING after the flood answered in ${ms.toFixed(0)} ms`);
  });

  void it("the daemon is still healthy", async () => {
    assert.equal(d.proc.exitCode, null, d.logs());
    const { res } = await timedPing(d.socket, "end");
    assert.equal(res?.status, "ok");
  });
});

void describe("max_connections = 4", () => {
  let d: DaemonHandle;
  const open: RawClient[] = [];
  before(async () => { d = await startDaemon(lab, { extraConfig: "max_connections = 4" }); });
  after(async () => {
    for (const c of open) c.destroy();
    await d?.cleanup();
  });

  void it("a 5th connection is refused while 4 are open; after one closes a new client is served", async (t) => {
    // Four clients, each served once so the daemon has certainly accepted it, then left idle.
    for (let i = 0; i < 4; i++) {
      const c = await RawClient.connect(d.socket);
      open.push(c);
      await c.send(`{"action":"PING","id":${i}}\n`);
      assert.equal((await c.waitResponses(1))[0]?.id, i, `client ${i} not served`);
    }

    // The 5th: connect() may succeed at the kernel level, but the daemon drops it unanswered.
    let refused: string;
    try {
      const fifth = await RawClient.connect(d.socket);
      open.push(fifth);
      await fifth.send('{"action":"PING","id":"fifth"}\n');
      assert.ok(await fifth.waitClosed(3_000), "5th connection neither refused nor closed");
      assert.deepEqual(fifth.lines, [], "5th connection was served");
      refused = `closed (${fifth.error?.code ?? "EOF"})`;
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      refused = `connect failed (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    }
    t.diagnostic(`5th connection: ${refused}`);

    // The four are unaffected.
    for (const [i, c] of open.slice(0, 4).entries()) {
      await c.send(`{"action":"PING","id":"again-${i}"}\n`);
      const lines = await c.waitLines(2, 2_000);
      assert.equal((JSON.parse(lines[1] ?? "{}") as { id?: string }).id, `again-${i}`, `client ${i} lost its connection`);
    }

    // Free a slot: a new client is served (allow the daemon a moment to see the close).
    open[0]?.destroy();
    const deadline = Date.now() + 2_000;
    let served = false;
    while (!served && Date.now() < deadline) {
      const c = await RawClient.connect(d.socket);
      open.push(c);
      await c.send('{"action":"PING","id":"new"}\n');
      const lines = await c.waitLines(1, 1_000);
      served = lines.length === 1 && (JSON.parse(lines[0] ?? "{}") as { id?: string }).id === "new";
      if (!served) await sleep(50);
    }
    assert.ok(served, "no new client served after a slot was freed");

    // Full again (3 old + the new one): a further client is refused once more.
    const extra = await RawClient.connect(d.socket).catch(() => undefined);
    if (extra) {
      open.push(extra);
      await extra.send('{"action":"PING","id":"extra"}\n');
      assert.ok(await extra.waitClosed(3_000), "connection over the limit not closed");
      assert.deepEqual(extra.lines, []);
    }
  });

  void it("the daemon is still healthy", async () => {
    for (const c of open) c.destroy();
    await sleep(100);
    assert.equal(d.proc.exitCode, null, d.logs());
    const { res } = await timedPing(d.socket, "end");
    assert.equal(res?.status, "ok");
  });
});
