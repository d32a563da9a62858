/**
 * Child of test/e2e/engine_real_vs_fake.test.ts, run inside the test's network namespace:
 *   ip netns exec NS node --import tsx test/support/engine_replay.ts --seed N --steps M
 * The namespace holds veth pairs v0/v1, v2/v3, ... v32/v33 (34 interfaces), all up.
 *
 * Applies one fixed, seeded sequence of requests (valid and invalid ones, link removals and
 * re-creations, a 33rd VIF) to two engines: one over the REAL kernel (KernelTables + SystemLinks)
 * and one over FakeKernel + FakeLinks.mirror (the same names and ifindexes as the real links). After
 * every step it prints one JSON line with, for each side, the outcome (ok / error code), the
 * config, the image, and the kernel table — for the real side parsed from /proc/net/ip_mr_vif
 * and /proc/net/ip_mr_cache, for the fake side FakeKernel's table rendered the way /proc shows it.
 * The parent compares the two sides.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Engine, type TxResult } from "../../src/engine/engine.js";
import type { Image } from "../../src/engine/image.js";
import { MfcError } from "../../src/errors/codes.js";
import { KernelError, errnoOf } from "../../src/kernel/errors.js";
import { FakeKernel, FakeLinks, type FakeFault } from "./fake_kernel.js";
import { SystemLinks } from "../../src/kernel/mroute.js";
import { KernelTables } from "../../src/kernel/tables.js";
import type { Family, KernelPort, LinkResolver, Membership, MfcEntry, SgCounters, VifCounters, VifSpec } from "../../src/kernel/port.js";
import { parseBatch, parseOp, type Op } from "../../src/protocol/schema.js";
import { prng } from "./prng.js";
import { MemoryStore, configText } from "./memory_store.js";


/**
 * The real kernel with FakeKernel's fault injection in front: mutating call k (1-based since
 * resetCalls) fails without reaching the kernel, exactly where FakeKernel.failAt would fail it,
 * so rollbacks and resyncs run against the real kernel too. flushAll is not counted (as in the fake).
 */
export class FaultyPort implements KernelPort {
  calls = 0;
  private fault: FakeFault | undefined;

  constructor(private readonly inner: KernelPort) {}

  failAt(fault: FakeFault): void {
    this.fault = fault;
  }

  clearFaults(): void {
    this.fault = undefined;
  }

  resetCalls(): void {
    this.calls = 0;
  }

  private gate(call: string): void {
    this.calls++;
    const f = this.fault;
    if (f && (this.calls === f.at || (f.persistent === true && this.calls > f.at))) throw new KernelError(call, errnoOf("EIO"));
  }

  addVif(vif: VifSpec): void {
    this.gate("MRT_ADD_VIF");
    this.inner.addVif(vif);
  }

  delVif(vif: VifSpec): void {
    this.gate("MRT_DEL_VIF");
    this.inner.delVif(vif);
  }

  addMfc(entry: MfcEntry): void {
    this.gate("MRT_ADD_MFC");
    this.inner.addMfc(entry);
  }

  join(m: Membership): void {
    this.gate(m.source === null ? "MCAST_JOIN_GROUP" : "MCAST_JOIN_SOURCE_GROUP");
    this.inner.join(m);
  }

  leave(m: Membership): void {
    this.gate(m.source === null ? "MCAST_LEAVE_GROUP" : "MCAST_LEAVE_SOURCE_GROUP");
    this.inner.leave(m);
  }

  delMfc(entry: Pick<MfcEntry, "origin" | "group" | "parent">): void {
    this.gate("MRT_DEL_MFC");
    this.inner.delMfc(entry);
  }

  flushAll(): void {
    this.inner.flushAll();
  }

  sgCounters(origin: string, group: string): SgCounters | undefined {
    return this.inner.sgCounters(origin, group);
  }

  vifCounters(family: Family, vifi: number): VifCounters | undefined {
    return this.inner.vifCounters(family, vifi);
  }

  close(): void {
    this.inner.close();
  }
}

/** One VIF as /proc/net/ip_mr_vif shows it: vifi, device name, flags (hex), ifindex (Local). */
export type ProcVif = [number, string, string, number];
/** One MFC entry: "origin,group", iif (parent VIF), oifs as "vifi:ttl" sorted by vifi. */
export type ProcMfc = [string, number, string[]];
export interface Table { vifs: ProcVif[]; mfcs: ProcMfc[] }
/**
 * outcome, config, image: the engine's; table: the kernel's; imageTable: the table the engine's
 * image implies (what the engine believes the kernel holds), rendered like `table`.
 */
export interface Side { outcome: string; config: string; image: string; table: Table; imageTable: Table }
export interface StepReport { i: number; step: string; real: Side; fake: Side }

const VIFF_USE_IFINDEX = "00008";

/** /proc prints a __be32 with %08X: the host-order (little-endian) value of the network-order bytes. */
function procAddr(hex: string): string {
  const n = Number.parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join(".");
}

export function parseProc(vifText: string, mfcText: string): Table {
  const vifs: ProcVif[] = [];
  for (const line of vifText.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 9) continue;
    // vifi name bytesIn pktsIn bytesOut pktsOut flags local remote
    vifs.push([Number(f[0]), f[1] as string, f[6] as string, Number.parseInt(f[7] as string, 16)]);
  }
  const mfcs: ProcMfc[] = [];
  for (const line of mfcText.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    // group origin iif pkts bytes wrong oif:ttl...
    const oifs = f.slice(6).sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
    mfcs.push([`${procAddr(f[1] as string)},${procAddr(f[0] as string)}`, Number(f[2]), oifs]);
  }
  return { vifs: vifs.sort((a, b) => a[0] - b[0]), mfcs: mfcs.sort((a, b) => a[0].localeCompare(b[0])) };
}

/**
 * FakeKernel's table as /proc would print it: OIFs only for VIFs that exist now, and only TTLs
 * 1-254 (the kernel stores 0 and 255 alike as "not an output interface").
 */
export function fakeTable(kernel: FakeKernel, links: LinkResolver): Table {
  return {
    vifs: [...kernel.vifs.values()].map((v): ProcVif => [v.vifi, links.nameOf(v.ifindex) ?? "?", VIFF_USE_IFINDEX, v.ifindex]).sort((a, b) => a[0] - b[0]),
    mfcs: [...kernel.mfcs.values()].map((m): ProcMfc => [
      `${m.origin},${m.group}`, m.parent,
      m.ttls.flatMap((t, v) => (kernel.vifs.has(v) && t > 0 && t < 255 ? [`${v}:${t}`] : [])),
    ]).sort((a, b) => a[0].localeCompare(b[0])),
  };
}

/** What the engine believes the kernel holds, as /proc would print it (VIFs of vanished devices are gone). */
export function imageTable(image: Image, links: LinkResolver): Table {
  const live = [...image.vifs.values()].filter((v) => links.nameOf(v.ifindex) !== undefined);
  const exists = new Set(live.map((v) => v.vifi));
  return {
    vifs: live.map((v): ProcVif => [v.vifi, v.ifname, VIFF_USE_IFINDEX, v.ifindex]).sort((a, b) => a[0] - b[0]),
    mfcs: [...image.mfcs.values()].map((m): ProcMfc => [
      `${m.source ?? "0.0.0.0"},${m.group}`, m.parent,
      m.ttls.flatMap((t, v) => (exists.has(v) && t > 0 && t < 255 ? [`${v}:${t}`] : [])),
    ]).sort((a, b) => a[0].localeCompare(b[0])),
  };
}

function realTable(): Table {
  return parseProc(readFileSync("/proc/net/ip_mr_vif", "utf8"), readFileSync("/proc/net/ip_mr_cache", "utf8"));
}

function imageText(image: Image): string {
  const vifs = [...image.vifs.values()].map((v) => `${v.vifi}:${v.ifname}#${v.ifindex}/${v.threshold}`).sort();
  const mfcs = [...image.mfcs.values()].map((e) => `${e.key} ${e.parent} [${e.ttls.join(",")}]`).sort();
  return JSON.stringify({ vifs, mfcs });
}

// ---------------------------------------------------------------------------------------------
// The sequence


type Request = { action: string; payload: Record<string, unknown> };
export type Step =
  | { k: "tx"; requests: Request[]; batch: boolean; note?: string; fault?: FakeFault }
  | { k: "linkDel"; pair: number; reconcile: boolean }
  | { k: "linkAdd"; pair: number; reconcile: boolean }
  | { k: "reconcile" };

export const PAIRS = 17; // v0/v1 .. v32/v33
export const ifname = (i: number): string => `v${i}`;
const ALL = Array.from({ length: PAIRS * 2 }, (_, i) => ifname(i));
const POOL = ALL.slice(0, 12); // the random phase works on 12 interfaces (6 pairs)
const GROUPS = ["239.1.0.1", "239.1.0.2", "239.1.0.3", "239.1.0.4", "239.1.0.5", "232.9.9.9"];
const SOURCES = [null, "10.1.1.1", "10.1.1.2", "192.0.2.77"];

export function sequence(seed: number, randomSteps: number): Step[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const chance = (p: number): boolean => rnd() < p;
  const down = new Set<number>(); // pairs deleted in the random phase
  const alive = (): string[] => POOL.filter((n) => !down.has(Math.floor(Number(n.slice(1)) / 2)));
  const ttl = (): number => pick([1, 1, 1, 2, 3, 64, 255]);
  const key = (): { source: string | null; group: string } => ({ source: pick(SOURCES), group: pick(GROUPS) });
  const route = (): Record<string, unknown> => {
    const names = chance(0.85) ? alive() : POOL; // sometimes a deleted interface: E_IF_NOT_FOUND
    const iif = pick(names);
    const oifs = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(names)))].filter((n) => n !== iif);
    if (oifs.length === 0) oifs.push(pick(POOL.filter((n) => n !== iif)));
    if (chance(0.04)) oifs.push("nope0"); // never exists
    return { ...key(), iif, oifs: oifs.map((n) => (chance(0.5) ? n : { ifname: n, ttl: ttl() })) };
  };
  const single = (): Request => {
    const r = rnd();
    if (r < 0.45) return { action: "ADD_MFC", payload: route() };
    if (r < 0.6) return { action: "REPLACE_MFC", payload: route() };
    if (r < 0.78) return { action: "DEL_MFC", payload: key() };
    if (r < 0.9) return { action: "ADD_VIF", payload: { ifname: pick(POOL), threshold: pick([1, 2, 5, 255]) } };
    return { action: "DEL_VIF", payload: { ifname: pick(POOL) } };
  };
  const steps: Step[] = [];
  const tx = (requests: Request[], note?: string, batch = requests.length > 1, fault?: FakeFault): void => {
    steps.push({ k: "tx", requests, batch, ...(note ? { note } : {}), ...(fault ? { fault } : {}) });
    if (fault?.persistent) steps.push({ k: "reconcile" });
  };
  // In the random phase one request in six runs with kernel call k failing (once, or for good).
  const randomFault = (): FakeFault | undefined => (chance(1 / 6) ? { at: 1 + Math.floor(rnd() * 4), persistent: chance(0.3) } : undefined);

  for (let i = 0; i < randomSteps; i++) {
    const r = rnd();
    if (r < 0.55) tx([single()], undefined, false, randomFault());
    else if (r < 0.68) tx(Array.from({ length: 2 + Math.floor(rnd() * 3) }, single), undefined, true, randomFault());
    else if (r < 0.72) {
      const state = { vifs: chance(0.5) ? [{ ifname: pick(POOL), threshold: pick([1, 3]) }] : [], routes: Array.from({ length: 2 + Math.floor(rnd() * 4) }, route) };
      tx([{ action: "APPLY", payload: { state } }], undefined, false, randomFault());
    } else if (r < 0.74) tx([{ action: "FLUSH", payload: {} }], undefined, false, randomFault());
    else if (r < 0.8) {
      // The same request twice: the second must get E_MFC_EXISTS on both sides.
      const p = route();
      tx([{ action: "ADD_MFC", payload: p }]);
      tx([{ action: "ADD_MFC", payload: p }], "again");
    } else if (r < 0.86) {
      const up = [0, 1, 2, 3, 4, 5].filter((p) => !down.has(p));
      if (up.length > 2) {
        const pair = pick(up);
        down.add(pair);
        steps.push({ k: "linkDel", pair, reconcile: chance(0.6) });
      }
    } else if (r < 0.92) {
      if (down.size > 0) {
        const pair = pick([...down]);
        down.delete(pair);
        steps.push({ k: "linkAdd", pair, reconcile: chance(0.6) });
      }
    } else if (r < 0.95) steps.push({ k: "reconcile" });
    else tx([{ action: "ADD_MFC", payload: { ...key(), iif: pick(alive()), oifs: ["nope0"] } }], "missing interface");
  }
  for (const pair of down) steps.push({ k: "linkAdd", pair, reconcile: true });

  // Scripted: rollbacks on the real kernel. A failed replace while a link is gone: the undo re-adds
  // an entry that names the vanished VIF, and the kernel drops that OIF (so must the fake).
  tx([{ action: "FLUSH", payload: {} }], "reset");
  tx([{ action: "ADD_MFC", payload: { group: "239.4.4.4", iif: ifname(0), oifs: [ifname(2), ifname(4)] } }], "route over v4");
  steps.push({ k: "linkDel", pair: 2, reconcile: false });
  tx([{ action: "REPLACE_MFC", payload: { group: "239.4.4.4", iif: ifname(0), oifs: [ifname(2), ifname(6)] } }], "fails while v4 is gone", false, { at: 3 });
  steps.push({ k: "linkAdd", pair: 2, reconcile: true });
  tx([{ action: "ADD_VIF", payload: { ifname: ifname(7), threshold: 3 } }], "pin");
  // A batch whose kernel calls fail for good from the 2nd on: undo fails, resync, then reconcile.
  tx([
    { action: "ADD_MFC", payload: { source: "10.4.4.4", group: "239.4.4.5", iif: ifname(8), oifs: [ifname(9), ifname(7)] } },
    { action: "DEL_MFC", payload: { group: "239.4.4.4" } },
    { action: "ADD_MFC", payload: { group: "239.4.4.6", iif: ifname(10), oifs: [{ ifname: ifname(11), ttl: 8 }] } },
  ], "resync", true, { at: 2, persistent: true });

  // Scripted: the kernel's 32-VIF limit, and a few well-known refusals.
  tx([{ action: "FLUSH", payload: {} }], "reset");
  tx(ALL.slice(0, 32).map((n, i) => ({ action: "ADD_VIF", payload: { ifname: n, threshold: 1 + (i % 3) } })), "32 VIFs", true);
  tx([{ action: "ADD_VIF", payload: { ifname: ifname(32) } }], "33rd VIF");
  tx([{ action: "ADD_MFC", payload: { group: "239.3.3.3", iif: ifname(33), oifs: [ifname(0)] } }], "route needing a 33rd VIF");
  tx([{ action: "ADD_MFC", payload: { source: "10.3.3.3", group: "239.3.3.3", iif: ifname(0), oifs: [ifname(5), { ifname: ifname(31), ttl: 4 }] } }]);
  tx([{ action: "ADD_MFC", payload: { source: "10.3.3.3", group: "239.3.3.3", iif: ifname(0), oifs: [ifname(6)] } }], "exists");
  tx([{ action: "DEL_VIF", payload: { ifname: ifname(30) } }]);
  tx([{ action: "REPLACE_MFC", payload: { group: "239.3.3.4", iif: ifname(32), oifs: [ifname(1), ifname(33)] } }], "33rd interface again (only one VIF free)");
  tx([{ action: "REPLACE_MFC", payload: { group: "239.3.3.4", iif: ifname(32), oifs: [ifname(1), ifname(2)] } }], "takes the free VIF");
  tx([{ action: "DEL_VIF", payload: { ifname: ifname(5) } }], "in use");
  tx([{ action: "ADD_MFC", payload: { group: "239.3.3.5", iif: "nope0", oifs: [ifname(1)] } }], "missing iif");
  steps.push({ k: "linkDel", pair: 16, reconcile: false }); // v32/v33: the (*,239.3.3.4) iif goes
  tx([{ action: "ADD_MFC", payload: { group: "239.3.3.6", iif: ifname(3), oifs: [ifname(4)] } }], "while a link is gone");
  steps.push({ k: "reconcile" });
  steps.push({ k: "linkAdd", pair: 16, reconcile: true });
  tx([{ action: "FLUSH", payload: {} }], "end");
  return steps;
}

export function describe(s: Step): string {
  switch (s.k) {
    case "tx": {
      const fault = s.fault ? `[kernel call ${s.fault.at}${s.fault.persistent ? "+" : ""} fails] ` : "";
      return `${fault}${s.note ? `[${s.note}] ` : ""}${s.batch ? "BATCH " : ""}${JSON.stringify(s.requests)}`;
    }
    case "linkDel": return `ip link del ${ifname(2 * s.pair)} (and peer ${ifname(2 * s.pair + 1)})${s.reconcile ? " + reconcile" : ""}`;
    case "linkAdd": return `ip link add ${ifname(2 * s.pair)} type veth peer ${ifname(2 * s.pair + 1)}${s.reconcile ? " + reconcile" : ""}`;
    case "reconcile": return "reconcile";
  }
}

function toOps(s: Extract<Step, { k: "tx" }>): Op[] {
  if (s.batch) return parseBatch({ operations: s.requests });
  const r = s.requests[0] as Request;
  return [parseOp(r.action, r.payload)];
}

async function outcome(run: () => Promise<TxResult>): Promise<string> {
  try {
    const r = await run();
    return `ok (${r.changes.length} changes)`;
  } catch (err) {
    if (err instanceof MfcError) return err.code;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seed: { type: "string", default: "1" }, steps: { type: "string", default: "80" } } });
  const steps = sequence(Number(values.seed), Number(values.steps));
  const say = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

  const sysLinks = new SystemLinks();
  const mirror = FakeLinks.mirror(ALL, sysLinks);
  if (ALL.some((n) => mirror.indexOf(n) === undefined)) throw new Error(`missing interfaces: ${ALL.filter((n) => mirror.indexOf(n) === undefined).join(" ")}`);
  const sock = new FaultyPort(new KernelTables());
  const fake = new FakeKernel(mirror);
  const real = { engine: new Engine(sock, sysLinks, new MemoryStore()) };
  const fk = { engine: new Engine(fake, mirror, new MemoryStore()) };
  const ip = (...args: string[]): void => void execFileSync("ip", args, { stdio: "pipe" });

  const side = (engine: Engine, links: LinkResolver, out: string, table: Table): Side => {
    const snap = engine.snapshot();
    return { outcome: out, config: configText(snap.config), image: imageText(snap.image), table, imageTable: imageTable(snap.image, links) };
  };
  say({ start: true, steps: steps.length, table: realTable() });

  for (const [i, s] of steps.entries()) {
    let realOut = "ok";
    let fakeOut = "ok";
    switch (s.k) {
      case "tx":
        sock.resetCalls();
        fake.resetCalls();
        if (s.fault) {
          sock.failAt(s.fault);
          fake.failAt(s.fault);
        }
        try {
          realOut = await outcome(() => real.engine.transact(toOps(s), false));
          fakeOut = await outcome(() => fk.engine.transact(toOps(s), false));
        } finally {
          sock.clearFaults();
          fake.clearFaults();
        }
        break;
      case "linkDel": {
        const names = [ifname(2 * s.pair), ifname(2 * s.pair + 1)];
        ip("link", "del", names[0] as string); // takes the peer with it
        for (const n of names) {
          const idx = mirror.indexOf(n);
          mirror.remove(n);
          if (idx !== undefined) fake.dropVifOfIfindex(idx);
        }
        if (s.reconcile) {
          realOut = await outcome(() => real.engine.reconcile());
          fakeOut = await outcome(() => fk.engine.reconcile());
        }
        break;
      }
      case "linkAdd": {
        const [a, b] = [ifname(2 * s.pair), ifname(2 * s.pair + 1)];
        ip("link", "add", a, "type", "veth", "peer", "name", b);
        ip("link", "set", a, "up");
        ip("link", "set", b, "up");
        for (const n of [a, b]) mirror.set(n, sysLinks.indexOf(n) as number);
        if (s.reconcile) {
          realOut = await outcome(() => real.engine.reconcile());
          fakeOut = await outcome(() => fk.engine.reconcile());
        }
        break;
      }
      case "reconcile":
        realOut = await outcome(() => real.engine.reconcile());
        fakeOut = await outcome(() => fk.engine.reconcile());
        break;
    }
    const report: StepReport = {
      i, step: describe(s),
      real: side(real.engine, sysLinks, realOut, realTable()),
      fake: side(fk.engine, mirror, fakeOut, fakeTable(fake, mirror)),
    };
    say(report);
  }
  sock.close();
  say({ done: true, afterClose: realTable() });
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ fatal: err instanceof Error ? (err.stack ?? err.message) : String(err) })}\n`);
  process.exitCode = 1;
});
