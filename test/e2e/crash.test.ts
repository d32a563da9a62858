// SPEC §6.2 (durable, atomic state file) and §6.4 (SIGKILL recovery) under load: the daemon is
// killed with SIGKILL at seeded random moments while a client changes routes as fast as it can.
// Needs root and a built dist/ (npm run build). Run: node --import tsx --test test/e2e/crash.test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab, type Lab } from "../lab/lab.js";
import { NdjsonClient } from "../support/ndjson_client.js";
import { prng } from "../support/prng.js";
import { DAEMON_JS, kernelTables, startDaemon, type DaemonHandle } from "../lab/daemon.js";

// ---- helpers (kept local: each e2e file is self-contained) ------------------------------------

type Json = Record<string, unknown>;



interface Route { source: string | null; group: string; iif: string; oifs: { ifname: string; ttl: number }[] }

const keyOf = (r: { source: string | null; group: string }): string => `${r.source ?? "*"},${r.group}`;

/** A route list in a canonical, order-independent form. */
function canon(routes: readonly Route[]): string[] {
  return routes.map((r) => JSON.stringify([r.source, r.group, r.iif, r.oifs.map((o) => [o.ifname, o.ttl])])).sort();
}

/**
 * The durable state as the product reads it at start (`mfc_daemon --dump-state`: the snapshot
 * `state.json` plus its journal), after checking the snapshot itself is whole JSON.
 */
function durableRoutes(d: DaemonHandle): Route[] {
  const text = readFileSync(d.stateFile, "utf8");
  try {
    JSON.parse(text);
  } catch (err) {
    throw new Error(`state file is torn (${(err as Error).message}): ${JSON.stringify(text.slice(-200))}`, { cause: err });
  }
  const r = spawnSync(process.execPath, [DAEMON_JS, "--config", d.configPath, "--dump-state"], { encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, `mfc_daemon --dump-state failed: ${r.stderr}`);
  const dump = JSON.parse(r.stdout) as { vifs: unknown[]; routes: Route[] };
  assert.deepEqual(dump.vifs, []);
  return dump.routes;
}

/** The kernel tables once empty (the kernel empties them when the owner's socket closes), or as they are after 3 s. */
async function emptyKernel(lab: Lab): Promise<{ vif: string[]; cache: string[] }> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const k = await kernelTables(lab);
    if ((k.vif.length === 0 && k.cache.length === 0) || Date.now() > deadline) return k;
    await new Promise((r) => setTimeout(r, 25));
  }
}

// ---- test -----------------------------------------------------------------------------------------

const ROUNDS = 5;
const SEED = 0x6d66_6301;

void test("SIGKILL at random moments during a client's add/del/replace loop loses nothing acknowledged and never tears the state file", async (t) => {
  const lab = await createLab();
  t.after(() => lab.destroy());
  const dir = mkdtempSync(join(tmpdir(), "mfct-crash-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rnd = prng(SEED); // operations
  const rndKill = prng(SEED ^ 0x5eed); // kill delays: the same per round whatever the machine's speed
  const S = lab.addr.sender;
  const oifChoices = [["dn1"], ["dn2"], ["dn1", "dn2"], ["dn2", "dn1"]];

  let acked = new Map<string, Route>(); // what the daemon has acknowledged, as the client models it
  let nextGroup = 0;
  let totalAcks = 0;
  let inFlightKills = 0;

  for (let round = 1; round <= ROUNDS; round++) {
    const d: DaemonHandle = await startDaemon(lab, { dir });
    t.after(() => d.cleanup());

    // The restarted daemon serves exactly the state that survived the previous kill.
    const shown = JSON.parse((await d.mfc(["-j", "show", "routes"])).stdout) as { routes: (Route & { state: string })[] };
    assert.deepEqual(canon(shown.routes.map(({ source, group, iif, oifs }) => ({ source, group, iif, oifs }))), canon([...acked.values()]),
      `round ${round}: show -j after restart equals the surviving state`);
    assert.ok(shown.routes.every((r) => r.state === "installed"), `round ${round}: every restored route is installed`);
    const k = await kernelTables(lab);
    assert.equal(k.cache.length, acked.size, `round ${round}: kernel MFC entries after restart`);

    const client = await NdjsonClient.connect(d.socket);
    let inFlight: Map<string, Route> | undefined;
    let acksThisRound = 0;
    const refusals: string[] = [];
    // The kill comes at a seeded random delay after the round's first acknowledgement.
    const killAfterMs = Math.floor(rndKill() * 300);
    let killer: NodeJS.Timeout | undefined;
    try {
      for (let i = 0; i < 100_000; i++) {
        // Choose the next operation from the acknowledged state (seeded).
        const keys = [...acked.keys()];
        const p = rnd();
        const next = new Map(acked);
        let req: Json;
        if (keys.length === 0 || p < 0.5) {
          const n = nextGroup++;
          const route: Route = {
            source: n % 4 === 0 ? null : S, group: `239.${60 + Math.floor(n / 250)}.0.${(n % 250) + 1}`, iif: "up0",
            oifs: (oifChoices[n % oifChoices.length] ?? ["dn1"]).map((ifname, j) => ({ ifname, ttl: 1 + ((n + j) % 3) })),
          };
          next.set(keyOf(route), route);
          req = { action: "ADD_MFC", payload: route, id: i };
        } else {
          const victim = acked.get(keys[Math.floor(rnd() * keys.length)] as string) as Route;
          if (p < 0.8) {
            next.delete(keyOf(victim));
            req = { action: "DEL_MFC", payload: { source: victim.source, group: victim.group }, id: i };
          } else {
            const route: Route = { ...victim, oifs: victim.oifs.length === 1 ? [{ ifname: "dn1", ttl: 2 }, { ifname: "dn2", ttl: 1 }] : [{ ifname: "dn2", ttl: 3 }] };
            next.set(keyOf(route), route);
            req = { action: "REPLACE_MFC", payload: route, id: i };
          }
        }
        inFlight = next;
        let res: Json;
        try {
          res = await client.request(req);
        } catch {
          break; // the daemon died with this request in flight
        }
        if (res.status === "ok") {
          acked = next;
          totalAcks++;
          if (acksThisRound++ === 0) killer = setTimeout(() => d.proc.kill("SIGKILL"), killAfterMs);
        } else {
          refusals.push(JSON.stringify(res));
        }
        inFlight = undefined;
      }
    } finally {
      clearTimeout(killer);
      client.close();
    }
    assert.equal(await d.exited(), null, `round ${round}: the daemon was killed by the signal`);
    assert.equal(d.proc.signalCode, "SIGKILL");
    assert.deepEqual(refusals, [], `round ${round}: the daemon refused valid requests`);

    // After SIGKILL the kernel holds nothing of ours.
    assert.deepEqual(await emptyKernel(lab), { vif: [], cache: [] }, `round ${round}: kernel table empty after SIGKILL`);

    // The state on disk is whole, and it is the last acknowledged state or the one in flight.
    assert.ok(existsSync(d.stateFile), `round ${round}: state file exists`);
    const onDisk = canon(durableRoutes(d));
    const isAcked = JSON.stringify(onDisk) === JSON.stringify(canon([...acked.values()]));
    const isInFlight = inFlight !== undefined && JSON.stringify(onDisk) === JSON.stringify(canon([...inFlight.values()]));
    assert.ok(isAcked || isInFlight,
      `round ${round}: durable state (${onDisk.length} routes) is neither the last acknowledged state (${acked.size}) nor the in-flight one (${inFlight?.size ?? "none"})`);
    if (isInFlight && !isAcked && inFlight) {
      acked = inFlight; // committed but unanswered when the daemon died: it survives, which is allowed
      inFlightKills++;
    }
    t.diagnostic(`round ${round}: killed after ${killAfterMs} ms, ${acksThisRound} acks, ${acked.size} routes on disk${isInFlight && !isAcked ? " (in-flight one committed)" : ""}`);
  }

  // Final restart: everything acknowledged is back, in the daemon and in the kernel.
  const d = await startDaemon(lab, { dir });
  t.after(() => d.cleanup());
  const shown = JSON.parse((await d.mfc(["-j", "show", "routes"])).stdout) as { routes: Route[] };
  assert.deepEqual(canon(shown.routes.map(({ source, group, iif, oifs }) => ({ source, group, iif, oifs }))), canon([...acked.values()]));
  assert.equal((await kernelTables(lab)).cache.length, acked.size);
  assert.equal(await d.stop("SIGTERM"), 0);
  const leftovers = readdirSync(dir).filter((f) => f.endsWith(".tmp"));
  t.diagnostic(`${totalAcks} acknowledged changes over ${ROUNDS} kills (${inFlightKills} with the in-flight change committed); temp files left: ${leftovers.length}`);
});
