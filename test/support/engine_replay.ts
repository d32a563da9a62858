/**
 * Child of test/e2e/engine_real_vs_fake.test.ts, run inside the test's network namespace:
 *   ip netns exec NS node --import tsx test/support/engine_replay.ts --seed N --steps M
 * The namespace holds veth pairs v0/v1, v2/v3, ... v32/v33 (34 interfaces), all up.
 *
 * Applies one fixed, seeded sequence of requests (valid and invalid ones of both families, link
 * removals and re-creations, a 33rd VIF and a 33rd MIF) to two engines: one over the REAL kernel
 * (KernelTables + SystemLinks) and one over FakeKernel + FakeLinks.mirror (the same names and
 * ifindexes as the real links). After every step it prints one JSON line with, for each side, the
 * outcome (ok / error code), the config, the image, and the kernel's two tables — for the real
 * side parsed from /proc/net/ip_mr_vif, ip_mr_cache, ip6_mr_vif and ip6_mr_cache, for the fake side
 * FakeKernel's tables rendered the way /proc shows them. A "probe" step also fills every free VIF
 * and MIF number with one device for a moment, so that the member bits MFC entries keep for
 * vanished VIFs/MIFs (STACK.md, stale indices), which /proc never prints, show on both sides.
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
import { MAXVIFS, anySource, familyOf, type Family, type KernelPort, type LinkResolver, type Membership, type MfcEntry, type SgCounters, type VifCounters, type VifSpec } from "../../src/kernel/port.js";
import { canonicalIpv6 } from "../../src/model/ipv6.js";
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

  /** Each entry is one gated call; those not failed here reach the real kernel as one batch. */
  addMfcs(entries: readonly (MfcEntry & { iifIndex: number })[]): (KernelError | undefined)[] {
    const results: (KernelError | undefined)[] = [];
    const passed: number[] = [];
    entries.forEach((e, i) => {
      try {
        this.gate("MRT_ADD_MFC"); // as addMfc gates it
        results.push(undefined);
        passed.push(i);
      } catch (err) {
        results.push(err as KernelError);
      }
    });
    const inner = this.inner.addMfcs(passed.map((i) => entries[i] as MfcEntry & { iifIndex: number }));
    passed.forEach((i, k) => { results[i] = inner[k]; });
    return results;
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
/** One MIF as /proc/net/ip6_mr_vif shows it: mifi, device name, flags (hex); it prints no ifindex. */
export type ProcMif = [number, string, string];
/** One MFC entry: "origin,group" (IPv6: canonical text, (*,G) origin "::"), iif (parent), oifs as "vifi:ttl" sorted by vifi. */
export type ProcMfc = [string, number, string[]];
/** Both tables: IPv4 (vifs, mfcs) and IPv6 (mifs, mfcs6). */
export interface Table { vifs: ProcVif[]; mfcs: ProcMfc[]; mifs: ProcMif[]; mfcs6: ProcMfc[] }
/**
 * outcome, config, image: the engine's; table: the kernel's; imageTable: the table the engine's
 * image implies (what the engine believes the kernel holds), rendered like `table`; probe (probe
 * steps only): the kernel's table while every free VIF and MIF number is held by the probe device.
 */
export interface Side { outcome: string; config: string; image: string; table: Table; imageTable: Table; probe?: Table }
export interface StepReport { i: number; step: string; real: Side; fake: Side }

const VIFF_USE_IFINDEX = "00008";
/** ip6mr prints mif->flags; ours are plain MIFs (no MIFF_REGISTER). */
const MIF_FLAGS = "00000";

/** /proc prints a __be32 with %08X: the host-order (little-endian) value of the network-order bytes. */
function procAddr(hex: string): string {
  const n = Number.parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join(".");
}

/** ip6mr prints addresses with %pI6, all 8 groups in full (ff3e:0000:...:0001): canonical text. */
function procAddr6(text: string): string {
  const c = canonicalIpv6(text);
  if (c === undefined) throw new Error(`ip6_mr_cache: not an IPv6 address: ${text}`);
  return c;
}

const byNumber = <T extends [number, ...unknown[]]>(a: T, b: T): number => a[0] - b[0];
const byKey = (a: ProcMfc, b: ProcMfc): number => a[0].localeCompare(b[0]);
const sortOifs = (oifs: string[]): string[] => oifs.sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));

/** Rows of a /proc table after its header line, split on blanks. */
const rows = (text: string): string[][] => text.split("\n").slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f.length > 1);

export function parseProc(vifText: string, mfcText: string, mifText: string, mfc6Text: string): Table {
  // vifi name bytesIn pktsIn bytesOut pktsOut flags local remote
  const vifs = rows(vifText).filter((f) => f.length >= 9)
    .map((f): ProcVif => [Number(f[0]), f[1] as string, f[6] as string, Number.parseInt(f[7] as string, 16)]);
  // group origin iif pkts bytes wrong oif:ttl...
  const mfcs = rows(mfcText).filter((f) => f.length >= 6)
    .map((f): ProcMfc => [`${procAddr(f[1] as string)},${procAddr(f[0] as string)}`, Number(f[2]), sortOifs(f.slice(6))]);
  // mifi name bytesIn pktsIn bytesOut pktsOut flags (no Local column: a MIF's device is its name)
  const mifs = rows(mifText).filter((f) => f.length >= 7).map((f): ProcMif => [Number(f[0]), f[1] as string, f[6] as string]);
  // group origin iif pkts bytes wrong oif:ttl... (unresolved entries print no oifs)
  const mfcs6 = rows(mfc6Text).filter((f) => f.length >= 6)
    .map((f): ProcMfc => [`${procAddr6(f[1] as string)},${procAddr6(f[0] as string)}`, Number(f[2]), sortOifs(f.slice(6))]);
  return { vifs: vifs.sort(byNumber), mfcs: mfcs.sort(byKey), mifs: mifs.sort(byNumber), mfcs6: mfcs6.sort(byKey) };
}

/**
 * FakeKernel's tables as /proc would print them: OIFs only for VIFs/MIFs that exist now, and only
 * TTLs 1-254 (the kernel stores 0 and 255 alike as "not an output interface"). Addresses as the fake
 * holds them: a spelling the kernel would not print (not canonical) shows up as a difference.
 */
export function fakeTable(kernel: FakeKernel, links: LinkResolver): Table {
  const entries = (family: Family): ProcMfc[] => {
    const table = family === 6 ? kernel.mifs : kernel.vifs;
    return [...kernel.mfcs.values()].filter((m) => familyOf(m.group) === family).map((m): ProcMfc => [
      `${m.origin},${m.group}`, m.parent,
      m.ttls.flatMap((t, v) => (table.has(v) && t > 0 && t < 255 ? [`${v}:${t}`] : [])),
    ]).sort(byKey);
  };
  return {
    vifs: [...kernel.vifs.values()].map((v): ProcVif => [v.vifi, links.nameOf(v.ifindex) ?? "?", VIFF_USE_IFINDEX, v.ifindex]).sort(byNumber),
    mfcs: entries(4),
    mifs: [...kernel.mifs.values()].map((v): ProcMif => [v.vifi, links.nameOf(v.ifindex) ?? "?", MIF_FLAGS]).sort(byNumber),
    mfcs6: entries(6),
  };
}

/** What the engine believes the kernel holds, as /proc would print it (VIFs/MIFs of vanished devices are gone). */
export function imageTable(image: Image, links: LinkResolver): Table {
  const live = [...image.vifs.values()].filter((v) => links.nameOf(v.ifindex) !== undefined);
  const exists = (family: Family): Set<number> => new Set(live.filter((v) => v.family === family).map((v) => v.vifi));
  const entries = (family: Family): ProcMfc[] => {
    const present = exists(family);
    return [...image.mfcs.values()].filter((m) => familyOf(m.group) === family).map((m): ProcMfc => [
      `${m.source ?? anySource(family)},${m.group}`, m.parent,
      m.ttls.flatMap((t, v) => (present.has(v) && t > 0 && t < 255 ? [`${v}:${t}`] : [])),
    ]).sort(byKey);
  };
  return {
    vifs: live.filter((v) => v.family === 4).map((v): ProcVif => [v.vifi, v.ifname, VIFF_USE_IFINDEX, v.ifindex]).sort(byNumber),
    mfcs: entries(4),
    mifs: live.filter((v) => v.family === 6).map((v): ProcMif => [v.vifi, v.ifname, MIF_FLAGS]).sort(byNumber),
    mfcs6: entries(6),
  };
}

const proc = (name: string): string => readFileSync(`/proc/net/${name}`, "utf8");

function realTable(): Table {
  return parseProc(proc("ip_mr_vif"), proc("ip_mr_cache"), proc("ip6_mr_vif"), proc("ip6_mr_cache"));
}

/**
 * A side's tables while `ifindex` holds every VIF and MIF number free now (the kernel takes one
 * device for several VIFs), straight through the port, then removed again: an MFC entry's member
 * bit for a number whose VIF/MIF vanished (a stale index) shows as an OIF of the probe device.
 * Not a step of either engine; no fault is armed then.
 */
function probeTable(port: KernelPort, read: () => Table, ifindex: number, label: string): Table {
  try {
    return probeWith(port, read, ifindex);
  } catch (err) {
    throw new Error(`probe on the ${label} side: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function probeWith(port: KernelPort, read: () => Table, ifindex: number): Table {
  const before = read();
  const held = { 4: new Set(before.vifs.map((v) => v[0])), 6: new Set(before.mifs.map((v) => v[0])) };
  const added: VifSpec[] = [];
  try {
    for (const family of [4, 6] as const) {
      for (let vifi = 0; vifi < MAXVIFS; vifi++) {
        if (held[family].has(vifi)) continue;
        const vif: VifSpec = { family, vifi, ifindex, threshold: 1 };
        port.addVif(vif);
        added.push(vif);
      }
    }
    return read();
  } finally {
    for (const vif of added) port.delVif(vif);
  }
}

function imageText(image: Image): string {
  const vifs = [...image.vifs.values()].map((v) => `${v.family === 6 ? "mif" : "vif"} ${v.vifi}:${v.ifname}#${v.ifindex}/${v.threshold}`).sort();
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
  | { k: "reconcile" }
  | { k: "probe" };

export const PAIRS = 17; // v0/v1 .. v32/v33
export const ifname = (i: number): string => `v${i}`;
const ALL = Array.from({ length: PAIRS * 2 }, (_, i) => ifname(i));
const POOL = ALL.slice(0, 12); // the random phase works on 12 interfaces (6 pairs)
/** The probe's device: outside POOL, and its pair (6) is never deleted. */
export const PROBE = ifname(12);
const GROUPS = ["239.1.0.1", "239.1.0.2", "239.1.0.3", "239.1.0.4", "239.1.0.5", "232.9.9.9"];
const SOURCES = [null, "10.1.1.1", "10.1.1.2", "192.0.2.77"];
// The last group is the first one spelled in full, upper case: the engine must take it as the same route.
const GROUPS6 = ["ff3e::1:1", "ff3e::1:2", "ff3e::1:3", "ff05::1:4", "ff0e::db8:5", "FF3E:0:0:0:0:0:1:1"];
const SOURCES6 = [null, "fd00:1::2", "fd00:1::3", "2001:db8::77"];

export function sequence(seed: number, randomSteps: number): Step[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const chance = (p: number): boolean => rnd() < p;
  const down = new Set<number>(); // pairs deleted in the random phase
  const alive = (): string[] => POOL.filter((n) => !down.has(Math.floor(Number(n.slice(1)) / 2)));
  const family = (): Family => (chance(0.45) ? 6 : 4);
  const ttl = (): number => pick([1, 1, 1, 2, 3, 64, 255]);
  const key = (f: Family = family()): { source: string | null; group: string } =>
    f === 6 ? { source: pick(SOURCES6), group: pick(GROUPS6) } : { source: pick(SOURCES), group: pick(GROUPS) };
  const route = (f: Family = family()): Record<string, unknown> & { iif: string } => {
    const names = chance(0.85) ? alive() : POOL; // sometimes a deleted interface: E_IF_NOT_FOUND
    const iif = pick(names);
    const oifs = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(names)))].filter((n) => n !== iif);
    if (oifs.length === 0) oifs.push(pick(POOL.filter((n) => n !== iif)));
    if (chance(0.04)) oifs.push("nope0"); // never exists
    // IPv6 oifs take only ttl 1 (the kernel's MRT6 entries keep no per-interface threshold).
    return { ...key(f), iif, oifs: oifs.map((n) => (chance(0.5) ? n : { ifname: n, ttl: f === 6 ? 1 : ttl() })) };
  };
  const pinVif = (): Record<string, unknown> => chance(0.4)
    ? { ifname: pick(POOL), family: 6, ...(chance(0.5) ? { threshold: 1 } : {}) }
    : { ifname: pick(POOL), threshold: pick([1, 2, 5, 255]), ...(chance(0.2) ? { family: 4 } : {}) };
  // Requests the schema refuses before either kernel sees them (in a batch: the whole batch).
  const invalid = (): Request => {
    const r = route(6);
    const otherThan = (n: string): string => pick(POOL.filter((x) => x !== n));
    switch (Math.floor(rnd() * 6)) {
      case 0: return { action: pick(["ADD_MFC", "REPLACE_MFC"]), payload: { ...r, oifs: [{ ifname: otherThan(r.iif), ttl: pick([2, 64, 255]) }] } }; // E_INVALID_ARGUMENT
      case 1: return { action: "ADD_MFC", payload: { ...r, group: pick(["ff02::1", "ff01::1:3", "ff02::1:ff00:1"]) } }; // scope <= 2: E_INVALID_ADDRESS
      case 2: return { action: "ADD_MFC", payload: { ...route(4), source: pick(["fd00:1::2", "2001:db8::77"]) } }; // families differ: E_INVALID_ADDRESS
      case 3: return { action: pick(["ADD_MFC", "REPLACE_MFC"]), payload: { ...r, source: "10.1.1.1" } };
      case 4: return { action: "DEL_MFC", payload: pick([{ source: "fd00:1::2", group: "239.1.0.1" }, { source: "10.1.1.2", group: "ff3e::1:2" }, { group: "ff02::2" }]) };
      default: return { action: "ADD_VIF", payload: { ifname: pick(POOL), family: 6, threshold: pick([2, 5]) } }; // a MIF has no threshold: E_INVALID_ARGUMENT
    }
  };
  const single = (): Request => {
    const r = rnd();
    if (r < 0.42) return { action: "ADD_MFC", payload: route() };
    if (r < 0.56) return { action: "REPLACE_MFC", payload: route() };
    if (r < 0.72) return { action: "DEL_MFC", payload: key() };
    if (r < 0.84) return { action: "ADD_VIF", payload: pinVif() };
    if (r < 0.94) return { action: "DEL_VIF", payload: { ifname: pick(POOL), ...pick([{}, {}, { family: 4 }, { family: 6 }, { family: 6 }]) } };
    return invalid();
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
      const state = { vifs: chance(0.5) ? [pinVif()] : [], routes: Array.from({ length: 2 + Math.floor(rnd() * 4) }, () => route()) };
      tx([{ action: "APPLY", payload: { state } }], undefined, false, randomFault());
    } else if (r < 0.74) tx([{ action: "FLUSH", payload: pick([{}, {}, { family: 4 }, { family: 6 }]) }], undefined, false, randomFault());
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
        const reconcile = chance(0.6);
        steps.push({ k: "linkDel", pair, reconcile });
        // Not reconciled: entries naming the pair's VIFs/MIFs keep their member bits for now.
        if (!reconcile) steps.push({ k: "probe" });
      }
    } else if (r < 0.92) {
      if (down.size > 0) {
        const pair = pick([...down]);
        down.delete(pair);
        steps.push({ k: "linkAdd", pair, reconcile: chance(0.6) });
      }
    } else if (r < 0.94) steps.push({ k: "reconcile" });
    else if (r < 0.95) steps.push({ k: "probe" });
    else tx([{ action: "ADD_MFC", payload: { ...key(), iif: pick(alive()), oifs: ["nope0"] } }], "missing interface");
  }
  for (const pair of down) steps.push({ k: "linkAdd", pair, reconcile: true });
  steps.push({ k: "probe" });

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

  // Scripted, IPv6: a link removal and re-creation under IPv6 routes. The device's MIF goes, the
  // entries keep its member bit (and the (*,G) its parent bit) until the engine rewrites them.
  tx([{ action: "FLUSH", payload: {} }], "reset");
  tx([
    { action: "ADD_MFC", payload: { source: "fd00:1::2", group: "ff3e::4:4", iif: ifname(0), oifs: [ifname(2), ifname(4)] } },
    { action: "ADD_MFC", payload: { group: "ff3e::4:5", iif: ifname(4), oifs: [ifname(2), { ifname: ifname(6), ttl: 1 }] } },
    { action: "ADD_MFC", payload: { source: "fd00:1::2", group: "ff3e::4:6", iif: ifname(2), oifs: [ifname(4), ifname(8)] } },
    { action: "ADD_MFC", payload: { group: "239.4.4.4", iif: ifname(0), oifs: [ifname(4)] } },
  ], "IPv6 routes over v4, and an IPv4 one");
  steps.push({ k: "linkDel", pair: 2, reconcile: false });
  steps.push({ k: "probe" });
  tx([{ action: "REPLACE_MFC", payload: { source: "fd00:1::2", group: "ff3e::4:4", iif: ifname(0), oifs: [ifname(2), ifname(6)] } }],
    "IPv6: fails while v4 is gone", false, { at: 3 });
  steps.push({ k: "probe" });
  tx([{ action: "ADD_MFC", payload: { source: "fd00:1::3", group: "ff3e::4:7", iif: ifname(2), oifs: [ifname(6)] } }], "rewrites the stale entries");
  steps.push({ k: "probe" });
  steps.push({ k: "linkAdd", pair: 2, reconcile: true });
  steps.push({ k: "linkDel", pair: 2, reconcile: true });
  steps.push({ k: "probe" });
  steps.push({ k: "linkAdd", pair: 2, reconcile: false });
  tx([{ action: "ADD_MFC", payload: { group: "ff3e::4:8", iif: ifname(4), oifs: [ifname(5)] } }], "v4 is back, not reconciled yet");
  steps.push({ k: "reconcile" });
  // MIFs pinned and deleted beside VIFs of the same devices.
  tx([{ action: "ADD_VIF", payload: { ifname: ifname(7), family: 6 } }], "pin a MIF");
  tx([{ action: "ADD_VIF", payload: { ifname: ifname(7), threshold: 3 } }], "and a VIF on the same device");
  tx([{ action: "ADD_VIF", payload: { ifname: ifname(7), family: 6, threshold: 1 } }], "MIF exists");
  tx([{ action: "DEL_VIF", payload: { ifname: ifname(6), family: 6 } }], "MIF in use");
  tx([{ action: "DEL_VIF", payload: { ifname: ifname(7), family: 4 } }], "the VIF only");
  tx([{ action: "DEL_VIF", payload: { ifname: ifname(7) } }], "no VIF left");
  // Kernel faults on IPv6 steps: the first call (MRT6_ADD_MIF), a family flush, a resync of both tables.
  tx([{ action: "ADD_MFC", payload: { source: "2001:db8::9", group: "ff0e::9:9", iif: ifname(9), oifs: [ifname(10), ifname(11)] } }], "IPv6: first call fails", false, { at: 1 });
  tx([{ action: "ADD_MFC", payload: { source: "2001:db8::9", group: "ff0e::9:9", iif: ifname(9), oifs: [ifname(10), ifname(11)] } }], "IPv6: again, no fault");
  tx([{ action: "FLUSH", payload: { family: 6 } }], "IPv6 flush fails midway", false, { at: 4 });
  tx([
    { action: "DEL_VIF", payload: { ifname: ifname(7), family: 6 } }, // the pin goes, the route below keeps the MIF
    { action: "ADD_MFC", payload: { source: "fd00:1::4", group: "ff3e::4:9", iif: ifname(8), oifs: [ifname(9), ifname(7)] } },
    { action: "DEL_MFC", payload: { group: "ff3e::4:5" } },
    { action: "ADD_MFC", payload: { group: "239.4.4.6", iif: ifname(10), oifs: [{ ifname: ifname(11), ttl: 8 }] } },
  ], "IPv6 + IPv4 resync", true, { at: 2, persistent: true });

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

  // Scripted, IPv6: 32 MIFs beside the 32 VIFs; a 33rd MIF is refused, IPv4 goes on regardless.
  tx([{ action: "DEL_VIF", payload: { ifname: ifname(29) } }], "one VIF free");
  tx(ALL.slice(0, 32).map((n) => ({ action: "ADD_VIF", payload: { ifname: n, family: 6 } })), "32 MIFs", true);
  tx([{ action: "ADD_VIF", payload: { ifname: ifname(32), family: 6 } }], "33rd MIF");
  tx([{ action: "ADD_MFC", payload: { group: "ff3e::3:3", iif: ifname(33), oifs: [ifname(0)] } }], "IPv6 route needing a 33rd MIF");
  tx([{ action: "ADD_VIF", payload: { ifname: ifname(33), threshold: 2 } }], "IPv4 VIF while the MIFs are full");
  tx([{ action: "REPLACE_MFC", payload: { group: "239.3.3.4", iif: ifname(32), oifs: [ifname(1), ifname(3)] } }], "IPv4 route while the MIFs are full");
  tx([
    { action: "ADD_MFC", payload: { source: "fd00:3::3", group: "ff3e::3:3", iif: ifname(0), oifs: [ifname(5), ifname(31)] } },
    { action: "ADD_MFC", payload: { group: "ff3e::3:4", iif: ifname(1), oifs: [ifname(2), ifname(3)] } },
  ], "IPv6 routes over the 32 MIFs");
  tx([{ action: "DEL_VIF", payload: { ifname: ifname(30), family: 6 } }], "one MIF free");
  tx([{ action: "REPLACE_MFC", payload: { group: "ff3e::3:4", iif: ifname(32), oifs: [ifname(1), ifname(33)] } }], "two new MIFs (only one free)");
  tx([{ action: "REPLACE_MFC", payload: { group: "ff3e::3:4", iif: ifname(32), oifs: [ifname(1), ifname(2)] } }], "takes the free MIF");
  tx([{ action: "DEL_VIF", payload: { ifname: ifname(5), family: 6 } }], "MIF in use");
  steps.push({ k: "linkDel", pair: 16, reconcile: false }); // the iif of (*,239.3.3.4) and (*,ff3e::3:4): a VIF and a MIF go
  steps.push({ k: "probe" });
  tx([{ action: "ADD_MFC", payload: { source: "fd00:3::4", group: "ff3e::3:6", iif: ifname(3), oifs: [ifname(4)] } }], "IPv6, while a link is gone", false, { at: 2 });
  tx([{ action: "ADD_MFC", payload: { source: "fd00:3::4", group: "ff3e::3:6", iif: ifname(3), oifs: [ifname(4)] } }], "IPv6, while a link is gone");
  steps.push({ k: "probe" });
  steps.push({ k: "reconcile" });
  steps.push({ k: "linkAdd", pair: 16, reconcile: true });
  tx([{ action: "FLUSH", payload: { family: 6 } }], "IPv6 only");
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
    case "probe": return `probe: ${PROBE} holds every free VIF and MIF number for a moment`;
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

  const side = (engine: Engine, links: LinkResolver, out: string, table: Table, probe: Table | undefined): Side => {
    const snap = engine.snapshot();
    return {
      outcome: out, config: configText(snap.config), image: imageText(snap.image), table, imageTable: imageTable(snap.image, links),
      ...(probe ? { probe } : {}),
    };
  };
  say({ start: true, steps: steps.length, table: realTable() });

  for (const [i, s] of steps.entries()) {
    let realOut = "ok";
    let fakeOut = "ok";
    let realProbe: Table | undefined;
    let fakeProbe: Table | undefined;
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
        // One process for the three commands: spawning `ip` is most of a link step's time.
        execFileSync("ip", ["-batch", "-"], { input: `link add ${a} type veth peer name ${b}\nlink set ${a} up\nlink set ${b} up\n`, stdio: ["pipe", "pipe", "pipe"] });
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
      case "probe":
        realProbe = probeTable(sock, realTable, sysLinks.indexOf(PROBE) as number, "real");
        fakeProbe = probeTable(fake, () => fakeTable(fake, mirror), mirror.indexOf(PROBE) as number, "fake");
        break;
    }
    const report: StepReport = {
      i, step: describe(s),
      real: side(real.engine, sysLinks, realOut, realTable(), realProbe),
      fake: side(fk.engine, mirror, fakeOut, fakeTable(fake, mirror), fakeProbe),
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
