// Daemon lifecycle against the real kernel (SPEC §6.3, §6.4): a clean stop releases the table and
// the socket but keeps the state file; a second daemon cannot take a table that is owned. Needs
// root (network namespaces) and a build. Run:
//   npm run build && node --import tsx --test test/e2e/lifecycle.test.ts
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab } from "../lab/lab.js";
import { kernelTables, startDaemon, type DaemonHandle } from "../lab/daemon.js";

interface StateJson { routes: { source: string | null; group: string; iif: string; oifs: { ifname: string; ttl: number }[] }[] }

const lab = await createLab();
after(() => lab.destroy());

/** One directory per test, so a restart can reuse it (startDaemon does not delete a dir it was given). */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "mfct-life-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function start(dir: string): Promise<DaemonHandle> {
  const d = await startDaemon(lab, { dir });
  after(() => d.cleanup());
  return d;
}

async function ok(d: DaemonHandle, args: string[]): Promise<string> {
  const r = await d.mfc(args);
  assert.equal(r.code, 0, `mfc ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function populate(d: DaemonHandle): Promise<void> {
  await ok(d, ["add", "from", lab.addr.sender, "to", "239.30.0.1", "iif", "up0", "oif", "dn1"]);
  await ok(d, ["add", "to", "239.30.0.2", "iif", "up0", "oif", "dn1", "dn2"]);
  await ok(d, ["vif", "add", "dev", "dn2", "threshold", "4"]);
  const k = await kernelTables(lab);
  assert.equal(k.vif.length, 3, "VIFs installed before the stop");
  assert.equal(k.cache.length, 2, "routes installed before the stop");
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  void describe(`${signal}`, () => {
    void it("exits 0, empties the kernel table, removes the socket, keeps the state file; the next start restores it", async () => {
      const dir = tempDir();
      const d = await start(dir);
      assert.match(d.logs(), /no state yet: \S+state\.json does not exist/, "a first start says there is no state yet");
      assert.doesNotMatch(d.logs(), /restored \d+ route/);
      assert.doesNotMatch(d.logs(), /^<\d>/m, "no priority prefixes on a pipe");
      await populate(d);
      const saved = readFileSync(d.stateFile, "utf8");

      const code = await d.stop(signal);
      assert.equal(code, 0, `exit status after ${signal}; logs:\n${d.logs()}`);
      assert.deepEqual(await kernelTables(lab), { vif: [], cache: [] }, "/proc/net/ip_mr_vif and ip_mr_cache are empty");
      assert.equal(existsSync(d.socket), false, "socket file removed");
      assert.equal(existsSync(d.stateFile), true, "state file kept");
      assert.equal(readFileSync(d.stateFile, "utf8"), saved, "state file unchanged by the stop");
      const state = JSON.parse(saved) as StateJson;
      assert.deepEqual(state.routes.map((r) => r.group).sort(), ["239.30.0.1", "239.30.0.2"]);

      // The table is free again, and the state file comes back into the kernel (SPEC §6.3).
      const d2 = await start(dir);
      assert.match(d2.logs(), /restored 2 route\(s\) from \S+state\.json, 2 installed/);
      const view = JSON.parse(await ok(d2, ["show", "-j"])) as { routes: { group: string; state: string }[]; vifs: { ifname: string; threshold: number }[] };
      assert.deepEqual(view.routes.map((r) => [r.group, r.state]), [["239.30.0.1", "installed"], ["239.30.0.2", "installed"]]);
      assert.equal(view.vifs.find((v) => v.ifname === "dn2")?.threshold, 4);
      const k = await kernelTables(lab);
      assert.equal(k.vif.length, 3);
      assert.equal(k.cache.length, 2);
      assert.equal(await d2.stop("SIGTERM"), 0);
    });
  });
}

void describe("a second daemon on the same table", () => {
  void it("exits non-zero naming the owner problem; the first keeps serving", async () => {
    const first = await start(tempDir());
    await ok(first, ["add", "from", lab.addr.sender, "to", "239.30.0.3", "iif", "up0", "oif", "dn1"]);
    const kBefore = await kernelTables(lab);

    const second = await startDaemon(lab, { dir: tempDir(), expectExit: true });
    after(() => second.cleanup());
    const code = await second.exited();
    // 'exit' can come before the last stderr chunk: wait until the pipe is drained.
    const err = second.proc.stderr;
    if (err && !err.closed) await once(err, "close");
    assert.notEqual(code, 0, "the second daemon must fail");
    assert.notEqual(code, null, "the second daemon exits by itself, it is not killed");
    assert.match(second.logs(), /already owned by another process/, second.logs());
    assert.equal(existsSync(second.socket), false, "the second daemon never listened");

    // The first daemon is untouched: it answers, and its table is still in the kernel.
    assert.deepEqual(await kernelTables(lab), kBefore);
    const status = JSON.parse(await ok(first, ["status", "-j"])) as { result: { routes: number; pid: number } };
    assert.equal(status.result.routes, 1);
    assert.equal(status.result.pid, first.proc.pid);
    await ok(first, ["add", "to", "239.30.0.4", "iif", "up0", "oif", "dn2"]);
    assert.equal((await kernelTables(lab)).cache.length, 2, "the first daemon still programs the kernel");

    // Forwarding still works through the first daemon's table.
    const rx = await lab.listen("recv1", "239.30.0.3", 43003);
    after(() => rx.stop());
    await lab.send("239.30.0.3", 43003, 3);
    assert.ok(await rx.waitFor(3), `got ${rx.count()}`);
    assert.equal(await first.stop("SIGTERM"), 0);
  });
});
