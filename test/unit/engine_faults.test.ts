/**
 * SPEC §6.1 (all or nothing) and §6.2 (durable), proved by fault injection.
 *
 * For every kind of mutating request, of either address family and mixing both (SPEC §7 IPv6:
 * MIFs in a table of their own), starting from a non-trivial state (pinned VIFs and MIFs, VIF
 * thresholds, any-source routes of both families, holes in the VIF and MIF numbering, routes whose
 * iif is missing, routes with a missing oif, joins of both families), the request is first run
 * without faults to count its n kernel calls (and, where it matters, which table it changed).
 * Then, from a fresh copy of the same state, call k (k = 1..n) fails once, and separately every
 * call from k on fails for good. The answer must be E_KERNEL naming the call (MRT_* or MRT6_*),
 * errno and step, and the kernel (FakeKernel.dump(): VIFs, MIFs, MFC entries of both families,
 * memberships), the engine's memory (snapshot: config + image) and the store (last saved file)
 * must equal the state before. Then the same for a failing save (E_STATE_WRITE), a kernel fault
 * during the undo that follows it, and dry runs; the same from a state where a device vanished and
 * no reconcile ran yet (MFC entries still name its VIF and MIF); and the two tables' limits of 32.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Engine, type Snapshot, type TxResult } from "../../src/engine/engine.js";
import type { Image } from "../../src/engine/image.js";
import { MfcError } from "../../src/errors/codes.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import type { Config, Route } from "../../src/model/types.js";
import { parseBatch, parseOp, type Op } from "../../src/protocol/schema.js";
import { MemoryStore, configText } from "../support/memory_store.js";

/** The fake kernel's tables (VIFs, MIFs, MFC entries) plus its memberships ("ifindex/group/source"). */
type Dump = ReturnType<FakeKernel["dump"]> & { joins: string[] };

function dumpOf(kernel: FakeKernel): Dump {
  return { ...kernel.dump(), joins: [...kernel.memberships].sort() };
}
type Outcome = { ok: true; result: TxResult } | { ok: false; err: MfcError };

const ERRNO = "ENOBUFS"; // not the fake's default, so the test sees the errno really travels

const CALL_OF: Record<string, string> = {
  add_vif: "MRT_ADD_VIF", del_vif: "MRT_DEL_VIF", add_mfc: "MRT_ADD_MFC", replace_mfc: "MRT_ADD_MFC", del_mfc: "MRT_DEL_MFC",
  join: "MCAST_JOIN_GROUP", leave: "MCAST_LEAVE_GROUP",
};
/** The IPv6 table's calls (MIFs and MRT6 entries); memberships use the same option names in both families. */
const CALL_OF6: Record<string, string> = {
  add_vif: "MRT6_ADD_MIF", del_vif: "MRT6_DEL_MIF", add_mfc: "MRT6_ADD_MFC", replace_mfc: "MRT6_ADD_MFC", del_mfc: "MRT6_DEL_MFC",
  join: "MCAST_JOIN_GROUP", leave: "MCAST_LEAVE_GROUP",
};

const isV6 = (address: string): boolean => address.includes(":");

/** The family of a planned change: a VIF step says it, an MFC or membership step has a group. */
function familyOfChange(change: Record<string, unknown>): 4 | 6 {
  if (change.action === "add_vif" || change.action === "del_vif") return change.family === 6 ? 6 : 4;
  return isV6(change.group as string) ? 6 : 4;
}

/** The kernel call a planned change makes (a source-specific join has calls of its own). */
function callOf(change: Record<string, unknown>): string {
  const call = (familyOfChange(change) === 6 ? CALL_OF6 : CALL_OF)[change.action as string] as string;
  return typeof change.source === "string" && (change.action === "join" || change.action === "leave") ? call.replace("_GROUP", "_SOURCE_GROUP") : call;
}

async function attempt(p: Promise<TxResult>): Promise<Outcome> {
  try {
    return { ok: true, result: await p };
  } catch (err) {
    if (!(err instanceof MfcError)) throw err;
    return { ok: false, err };
  }
}

/** The image in FakeKernel.dump() form: what the kernel must hold if memory tells the truth. */
function imageDump(image: Image): Dump {
  return {
    vifs: [...image.vifs.values()].filter((v) => v.family === 4).map((v) => [v.vifi, v.ifindex, v.threshold] as [number, number, number]).sort((a, b) => a[0] - b[0]),
    mifs: [...image.vifs.values()].filter((v) => v.family === 6).map((v) => [v.vifi, v.ifindex, v.threshold] as [number, number, number]).sort((a, b) => a[0] - b[0]),
    mfcs: [...image.mfcs.values()].map((m) => {
      const t = [...m.ttls];
      while (t.length && t[t.length - 1] === 0) t.pop();
      // The kernel's any-source origin is its family's: 0.0.0.0 or ::.
      return [`${m.source ?? (isV6(m.group) ? "::" : "0.0.0.0")},${m.group}`, m.parent, t] as [string, number, number[]];
    }).sort((a, b) => a[0].localeCompare(b[0])),
    joins: [...(image.joins?.values() ?? [])].map((j) => `${j.ifindex}/${j.group}/${j.source ?? "*"}`).sort(),
  };
}

/**
 * The kernel table in interface names instead of VIF (MIF) numbers: equal when it forwards the
 * same way, even if VIFs were renumbered (a resync after a failed undo reinstalls from scratch).
 * An IPv6 entry's numbers are MIFs: they name interfaces through the MIF table.
 */
function semanticDump(d: Dump, links: FakeLinks): { vifs: string[]; mifs: string[]; mfcs: string[]; joins: string[] } {
  const ifname = (ifindex: number): string => links.nameOf(ifindex) ?? `?ifindex${ifindex}`;
  const tables = { 4: new Map(d.vifs.map(([vifi, ifindex]) => [vifi, ifname(ifindex)])), 6: new Map(d.mifs.map(([vifi, ifindex]) => [vifi, ifname(ifindex)])) };
  return {
    vifs: d.vifs.map(([, ifindex, thr]) => `${ifname(ifindex)}/${thr}`).sort(),
    mifs: d.mifs.map(([, ifindex, thr]) => `${ifname(ifindex)}/${thr}`).sort(),
    mfcs: d.mfcs.map(([key, parent, ttls]) => {
      const family = isV6(key) ? 6 : 4;
      const name = (vifi: number): string => tables[family].get(vifi) ?? `?${family === 6 ? "mif" : "vif"}${vifi}`;
      const oifs = ttls.flatMap((t, v) => (t > 0 ? [`${name(v)}:${t}`] : [])).sort();
      return `${key} iif ${name(parent)} oifs ${oifs.join(" ")}`;
    }).sort(),
    joins: d.joins.map((j) => {
      const [ifindex, ...rest] = j.split("/");
      return `${links.nameOf(Number(ifindex)) ?? `?ifindex${ifindex}`}/${rest.join("/")}`;
    }).sort(),
  };
}

/** The VIF and MIF tables as "ifname#vifi/threshold", in number order. */
function semanticNumbers(kernel: FakeKernel, links: FakeLinks): { vifs: string[]; mifs: string[] } {
  const rows = (t: [number, number, number][]): string[] => t.map(([vifi, ifindex, thr]) => `${links.nameOf(ifindex) ?? `?${ifindex}`}#${vifi}/${thr}`);
  const d = kernel.dump();
  return { vifs: rows(d.vifs), mifs: rows(d.mifs) };
}

const configJson = (c: Config | undefined): string => configText(c);

interface World {
  links: FakeLinks;
  kernel: FakeKernel;
  store: MemoryStore;
  engine: Engine;
}

const add = (source: string | null, group: string, iif: string, oifs: unknown[]): Op => parseOp("ADD_MFC", { source, group, iif, oifs });
const replace = (source: string | null, group: string, iif: string, oifs: unknown[]): Op => parseOp("REPLACE_MFC", { source, group, iif, oifs });
const del = (source: string | null, group: string): Op => parseOp("DEL_MFC", { source, group });
const vifAdd = (ifname: string, threshold?: number): Op => parseOp("ADD_VIF", threshold === undefined ? { ifname } : { ifname, threshold });
const vifDel = (ifname: string): Op => parseOp("DEL_VIF", { ifname });
/** A MIF (the IPv6 table's VIF): no threshold of its own. */
const mifAdd = (ifname: string): Op => parseOp("ADD_VIF", { ifname, family: 6 });
const mifDel = (ifname: string): Op => parseOp("DEL_VIF", { ifname, family: 6 });
const join = (ifname: string, group: string, source: string | null = null): Op => parseOp("JOIN", { ifname, group, source });
const leave = (ifname: string, group: string, source: string | null = null): Op => parseOp("LEAVE", { ifname, group, source });

/**
 * The state every request starts from, built by transactions that mostly mix both families.
 * VIFs: e0 0, e1 1, e11 2, e2 3, e7 4 (reused hole), e9 5 (pinned, used by IPv6 routes only), e5 6
 * (pinned, threshold 3), e3 7, e6 8. MIFs, numbered apart: e0 0, e1 1, e11 2 (only (2001:db8::1,
 * ff3e::1) uses it), e2 3, e13 4 (pinned, unused; reused hole), e6 5 (reused hole), e5 6 (pinned,
 * threshold 1 beside VIF e5's 3), e3 7, e7 8, e9 9. e4 was removed after routes named it, so
 * (10.0.0.5, 239.1.1.6) and (2001:db8::4, ff3e::4) are pending (iif missing) and
 * (10.0.0.4, 239.1.1.5) and (2001:db8::5, ff3e::5) lack one oif. (*, 239.1.1.2) and (*, ff3e::2)
 * are any-source. Joins of both families, any-source and source-specific; those on e4 wait.
 */
async function priorWorld(): Promise<World> {
  const links = new FakeLinks(Array.from({ length: 14 }, (_, i) => `e${i}`));
  const kernel = new FakeKernel(links);
  const store = new MemoryStore();
  const engine = new Engine(kernel, links, store);
  const prior: Op[][] = [
    [add("10.0.0.1", "239.1.1.1", "e0", ["e1", { ifname: "e2", ttl: 4 }, "e11"]), add("2001:db8::1", "ff3e::1", "e0", ["e1", "e2", "e11"])],
    [add("10.0.0.9", "239.9.9.9", "e8", ["e9"]), add("2001:db8::9", "ff3e::9", "e12", ["e8"])],
    [vifAdd("e5", 3), mifAdd("e5")],
    [add(null, "239.1.1.2", "e1", ["e0", "e3", "e5"]), add(null, "ff3e::2", "e1", ["e0", "e3"])],
    [add("10.0.0.2", "239.1.1.3", "e2", ["e3", { ifname: "e6", ttl: 2 }])],
    [del("10.0.0.9", "239.9.9.9"), del("2001:db8::9", "ff3e::9")],
    [add("10.0.0.3", "239.1.1.4", "e3", ["e7"]), vifAdd("e9"), mifAdd("e13"), add("2001:db8::3", "ff05::3", "e3", ["e7", "e6", "e9"])],
    [
      add("10.0.0.4", "239.1.1.5", "e6", ["e4", "e0"]), add("10.0.0.5", "239.1.1.6", "e4", ["e1"]),
      add("2001:db8::4", "ff3e::4", "e4", ["e2"]), add("2001:db8::5", "ff3e::5", "e6", ["e4", "e5"]),
    ],
    [
      join("e0", "239.5.5.5"), join("e3", "232.1.1.1", "10.0.0.8"), join("e4", "239.5.5.6"),
      join("e1", "ff3e::5:5"), join("e2", "ff3e::6:6", "2001:db8::8"), join("e4", "ff05::7"),
    ],
  ];
  for (const ops of prior) await engine.transact(ops, false);
  const e4 = links.indexOf("e4") as number;
  links.remove("e4");
  kernel.dropVifOfIfindex(e4);
  await engine.reconcile();
  // The prior state itself must be coherent, or the comparisons below prove nothing.
  // VIFs and MIFs are numbered in two tables: the MIFs got their own numbers from 0, holes reused.
  assert.deepEqual(semanticNumbers(kernel, links), {
    vifs: ["e0#0/1", "e1#1/1", "e11#2/1", "e2#3/1", "e7#4/1", "e9#5/1", "e5#6/3", "e3#7/1", "e6#8/1"],
    mifs: ["e0#0/1", "e1#1/1", "e11#2/1", "e2#3/1", "e13#4/1", "e6#5/1", "e5#6/1", "e3#7/1", "e7#8/1", "e9#9/1"],
  }, "prior state: VIF and MIF numbers");
  assert.deepEqual([...kernel.mfcs.keys()].sort(), [
    "0.0.0.0,239.1.1.2", "10.0.0.1,239.1.1.1", "10.0.0.2,239.1.1.3", "10.0.0.3,239.1.1.4", "10.0.0.4,239.1.1.5",
    "2001:db8::1,ff3e::1", "2001:db8::3,ff05::3", "2001:db8::5,ff3e::5", "::,ff3e::2",
  ], "prior state: MFC entries");
  assert.deepEqual([...(engine.snapshot().image.joinsWaiting?.keys() ?? [])].sort(), ["e4|*,239.5.5.6", "e4|*,ff05::7"], "prior state: joins waiting");
  assert.deepEqual(dumpOf(kernel), imageDump(engine.snapshot().image), "prior state: kernel != image");
  assert.equal(configJson(store.last), configJson(engine.snapshot().config), "prior state: store != memory");
  assertNoStaleEntries({ links, kernel, store, engine }, "prior state");
  kernel.resetCalls();
  return { links, kernel, store, engine };
}

/**
 * What the clean run must leave, where it matters which table changed: VIFs and MIFs as
 * "ifname/threshold" (sorted), MFC entries by kernel key, memberships as "ifname/group/source".
 * The other family's table stays as it was.
 */
interface Tables { vifs?: string[]; mifs?: string[]; mfcs?: string[]; joins?: string[] }

const PRIOR_VIFS = ["e0/1", "e1/1", "e11/1", "e2/1", "e3/1", "e5/3", "e6/1", "e7/1", "e9/1"];
const PRIOR_MIFS = ["e0/1", "e1/1", "e11/1", "e13/1", "e2/1", "e3/1", "e5/1", "e6/1", "e7/1", "e9/1"];
const PRIOR_MFCS4 = ["0.0.0.0,239.1.1.2", "10.0.0.1,239.1.1.1", "10.0.0.2,239.1.1.3", "10.0.0.3,239.1.1.4", "10.0.0.4,239.1.1.5"];
const PRIOR_MFCS6 = ["2001:db8::1,ff3e::1", "2001:db8::3,ff05::3", "2001:db8::5,ff3e::5", "::,ff3e::2"];
const PRIOR_JOINS4 = ["e0/239.5.5.5/*", "e3/232.1.1.1/10.0.0.8"];
const PRIOR_JOINS6 = ["e1/ff3e::5:5/*", "e2/ff3e::6:6/2001:db8::8"];
const without = (list: string[], ...gone: string[]): string[] => list.filter((x) => !gone.includes(x));
const ifnames = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `e${from + i}`);

interface Request { name: string; ops: () => Op[]; after?: Tables }

/** Every kind of mutating request, each as the daemon would parse it. */
const REQUESTS: Request[] = [
  { name: "ADD_VIF (new interface)", ops: () => [vifAdd("e8", 2)] },
  { name: "ADD_VIF (pins an in-use interface with a new threshold)", ops: () => [vifAdd("e3", 5)] },
  // e9's MIF stays: IPv6 routes use it, and the IPv4 VIF's pin is no reference of theirs.
  { name: "DEL_VIF", ops: () => [vifDel("e9")], after: { vifs: without(PRIOR_VIFS, "e9/1"), mifs: PRIOR_MIFS } },
  { name: "ADD_MFC (needs new VIFs)", ops: () => [add("10.0.0.6", "239.2.2.2", "e8", ["e10", "e1", { ifname: "e5", ttl: 7 }])] },
  { name: "ADD_MFC (*,G) on existing VIFs", ops: () => [add(null, "239.2.2.3", "e2", ["e0", "e1"])] },
  { name: "REPLACE_MFC (new key)", ops: () => [replace("10.0.0.7", "239.2.2.4", "e12", ["e13"])] },
  { name: "REPLACE_MFC (existing route, stable VIFs)", ops: () => [replace(null, "239.1.1.2", "e1", ["e0", { ifname: "e3", ttl: 9 }])] },
  { name: "REPLACE_MFC (existing route, drops one VIF and adds another)", ops: () => [replace("10.0.0.1", "239.1.1.1", "e0", ["e10", { ifname: "e2", ttl: 6 }])] },
  { name: "REPLACE_MFC (existing route, new iif)", ops: () => [replace("10.0.0.2", "239.1.1.3", "e12", ["e3", "e6"])] },
  { name: "DEL_MFC (frees a VIF)", ops: () => [del("10.0.0.2", "239.1.1.3")] },
  { name: "FLUSH", ops: () => [parseOp("FLUSH", {})] },
  { name: "ADD_MFC of a template (a group range) needing new VIFs", ops: () => [add(null, "239.8.0.0/16", "e12", ["e13"])] },
  { name: "JOIN (any-source)", ops: () => [join("e2", "239.6.6.6")] },
  { name: "JOIN (source-specific)", ops: () => [join("e1", "232.2.2.2", "10.0.0.9")] },
  { name: "LEAVE (source-specific)", ops: () => [leave("e3", "232.1.1.1", "10.0.0.8")] },
  { name: "BATCH (a route, two joins, a leave)", ops: () => [add("10.0.0.6", "239.2.2.5", "e8", ["e10"]), join("e8", "239.2.2.5"), join("e10", "239.6.6.7"), leave("e0", "239.5.5.5")] },
  {
    name: "BATCH (several ops)",
    ops: () => parseBatch({
      operations: [
        { action: "REPLACE_MFC", payload: { source: "10.0.0.1", group: "239.1.1.1", iif: "e0", oifs: ["e10", "e2"] } },
        { action: "ADD_MFC", payload: { source: "10.0.0.8", group: "239.3.3.1", iif: "e8", oifs: ["e12", "e1"] } },
        { action: "DEL_MFC", payload: { source: "10.0.0.3", group: "239.1.1.4" } },
        { action: "ADD_VIF", payload: { ifname: "e13", threshold: 4 } },
        { action: "DEL_VIF", payload: { ifname: "e9" } },
        { action: "REPLACE_MFC", payload: { group: "239.1.1.2", iif: "e1", oifs: ["e0", "e5", "e13"] } },
      ],
    }),
  },
  {
    name: "APPLY (adds, replaces, removals, a pending route kept)",
    ops: () => [parseOp("APPLY", {
      state: {
        vifs: [{ ifname: "e5", threshold: 3 }, { ifname: "e12", threshold: 2 }],
        routes: [
          { source: "10.0.0.1", group: "239.1.1.1", iif: "e0", oifs: ["e1", { ifname: "e2", ttl: 4 }, "e11"] }, // unchanged
          { source: null, group: "239.1.1.2", iif: "e1", oifs: ["e0", "e5", "e8"] }, // replaced, new VIF
          { source: "10.0.0.2", group: "239.1.1.3", iif: "e2", oifs: ["e3"] }, // replaced, drops e6
          { source: "10.0.0.5", group: "239.1.1.6", iif: "e4", oifs: ["e1"] }, // pending, kept
          { source: "10.0.0.10", group: "239.4.4.4", iif: "e10", oifs: ["e13", "e12"] }, // added
        ],
      },
    })],
  },
  {
    name: "BATCH that removes VIFs and adds others",
    ops: () => [del("10.0.0.3", "239.1.1.4"), vifDel("e9"), add("10.0.0.7", "239.3.3.3", "e8", ["e10", "e0"]), vifAdd("e13", 2)],
  },
  // IPv6 (SPEC §7): MIFs, MRT6 entries, MLD joins; and transactions mixing both families.
  { name: "ADD_VIF of a MIF (new interface)", ops: () => [mifAdd("e8")], after: { vifs: PRIOR_VIFS, mifs: [...PRIOR_MIFS, "e8/1"].sort() } },
  {
    name: "ADD_VIF of a VIF on an interface that has a pinned MIF only",
    ops: () => [vifAdd("e13", 2)], after: { vifs: [...PRIOR_VIFS, "e13/2"].sort(), mifs: PRIOR_MIFS },
  },
  { name: "DEL_VIF of a MIF (pinned, unused)", ops: () => [mifDel("e13")], after: { vifs: PRIOR_VIFS, mifs: without(PRIOR_MIFS, "e13/1") } },
  { name: "ADD_MFC IPv6 (needs new MIFs)", ops: () => [add("2001:db8::6", "ff3e::2:2", "e8", ["e10", "e1", "e5"])] },
  { name: "ADD_MFC IPv6 (*,G) on existing MIFs", ops: () => [add(null, "ff3e::2:3", "e2", ["e0", "e1"])] },
  { name: "ADD_MFC IPv6 (*,G) needing new MIFs", ops: () => [add(null, "ff05::2:4", "e12", ["e10", "e0"])] },
  { name: "REPLACE_MFC IPv6 (drops one MIF and adds another)", ops: () => [replace("2001:db8::1", "ff3e::1", "e0", ["e10", "e2"])] },
  { name: "REPLACE_MFC IPv6 (*,G) (new iif)", ops: () => [replace(null, "ff3e::2", "e12", ["e0", "e3"])] },
  { name: "REPLACE_MFC IPv6 (stable MIFs)", ops: () => [replace("2001:db8::3", "ff05::3", "e3", ["e9", "e7"])] },
  // e11's VIF stays: (10.0.0.1, 239.1.1.1) still uses it.
  {
    name: "DEL_MFC IPv6 (frees a MIF)", ops: () => [del("2001:db8::1", "ff3e::1")],
    after: { vifs: PRIOR_VIFS, mifs: without(PRIOR_MIFS, "e11/1"), mfcs: [...PRIOR_MFCS4, ...without(PRIOR_MFCS6, "2001:db8::1,ff3e::1")].sort() },
  },
  { name: "DEL_MFC IPv6 (*,G)", ops: () => [del(null, "ff3e::2")] },
  { name: "ADD_MFC of an IPv6 template needing new MIFs", ops: () => [add(null, "ff3e::8000:0/112", "e12", ["e13", "e10"])] },
  { name: "JOIN IPv6 (any-source)", ops: () => [join("e2", "ff3e::6:7")] },
  { name: "JOIN IPv6 (source-specific)", ops: () => [join("e1", "ff3e::6:8", "2001:db8::9")] },
  { name: "LEAVE IPv6 (source-specific)", ops: () => [leave("e2", "ff3e::6:6", "2001:db8::8")] },
  { name: "FLUSH of IPv6 only", ops: () => [parseOp("FLUSH", { family: 6 })], after: { vifs: PRIOR_VIFS, mifs: [], mfcs: PRIOR_MFCS4, joins: PRIOR_JOINS4 } },
  { name: "FLUSH of IPv4 only", ops: () => [parseOp("FLUSH", { family: 4 })], after: { vifs: [], mifs: PRIOR_MIFS, mfcs: PRIOR_MFCS6, joins: PRIOR_JOINS6 } },
  {
    name: "BATCH mixing IPv4 and IPv6",
    ops: () => parseBatch({
      operations: [
        { action: "REPLACE_MFC", payload: { source: "10.0.0.1", group: "239.1.1.1", iif: "e0", oifs: ["e10", "e2"] } },
        { action: "ADD_MFC", payload: { source: "2001:db8::6", group: "ff3e::3:1", iif: "e8", oifs: ["e12", "e1"] } },
        { action: "DEL_MFC", payload: { source: "2001:db8::3", group: "ff05::3" } },
        { action: "ADD_VIF", payload: { ifname: "e10", family: 6 } },
        { action: "DEL_VIF", payload: { ifname: "e13", family: 6 } },
        { action: "DEL_VIF", payload: { ifname: "e9" } },
        { action: "REPLACE_MFC", payload: { group: "ff3e::2", iif: "e1", oifs: ["e0", "e5", "e11"] } },
        { action: "ADD_MFC", payload: { group: "239.3.3.2", iif: "e12", oifs: ["e8"] } },
        { action: "JOIN", payload: { ifname: "e8", group: "ff3e::3:1" } },
        { action: "LEAVE", payload: { ifname: "e0", group: "239.5.5.5" } },
      ],
    }),
  },
  {
    name: "BATCH mixing both families, each needing new VIFs or MIFs on the same interfaces",
    ops: () => [add("10.0.0.6", "239.2.2.6", "e12", ["e10", "e13"]), add("2001:db8::6", "ff3e::2:6", "e12", ["e10", "e8"]), mifAdd("e8")],
    after: { vifs: [...PRIOR_VIFS, "e10/1", "e12/1", "e13/1"].sort(), mifs: [...PRIOR_MIFS, "e10/1", "e12/1", "e8/1"].sort() },
  },
  {
    // `mfc -6 apply`: the IPv6 state only; the IPv4 one stays as it is.
    name: "APPLY of IPv6 only",
    ops: () => [parseOp("APPLY", {
      family: 6,
      state: {
        vifs: [{ ifname: "e12", family: 6 }],
        routes: [
          { source: "2001:db8::1", group: "ff3e::1", iif: "e0", oifs: ["e1", "e2", "e11"] }, // unchanged
          { source: null, group: "ff3e::2", iif: "e1", oifs: ["e0", "e10"] }, // replaced, new MIF
          { source: "2001:db8::4", group: "ff3e::4", iif: "e4", oifs: ["e2"] }, // pending, kept
        ],
        joins: [{ ifname: "e1", group: "ff3e::5:5", source: null }],
      },
    })],
    after: {
      vifs: PRIOR_VIFS, mifs: ["e0/1", "e1/1", "e10/1", "e11/1", "e12/1", "e2/1"],
      mfcs: [...PRIOR_MFCS4, "2001:db8::1,ff3e::1", "::,ff3e::2"].sort(), joins: [...PRIOR_JOINS4, "e1/ff3e::5:5/*"].sort(),
    },
  },
  {
    name: "APPLY mixing both families (adds, replaces, removals, pending routes kept)",
    ops: () => [parseOp("APPLY", {
      state: {
        vifs: [{ ifname: "e5", threshold: 3 }, { ifname: "e5", family: 6 }, { ifname: "e12", family: 6 }, { ifname: "e9" }],
        routes: [
          { source: "10.0.0.1", group: "239.1.1.1", iif: "e0", oifs: ["e1", { ifname: "e2", ttl: 4 }, "e11"] }, // unchanged
          { source: "2001:db8::1", group: "ff3e::1", iif: "e0", oifs: ["e1", "e2", "e11"] }, // unchanged
          { source: null, group: "239.1.1.2", iif: "e1", oifs: ["e0", "e5", "e8"] }, // replaced, new VIF
          { source: null, group: "ff3e::2", iif: "e1", oifs: ["e0", { ifname: "e10", ttl: 1 }] }, // replaced, new MIF
          { source: "2001:db8::4", group: "ff3e::4", iif: "e4", oifs: ["e2"] }, // pending, kept
          { source: "10.0.0.5", group: "239.1.1.6", iif: "e4", oifs: ["e1"] }, // pending, kept
          { source: "2001:db8::10", group: "ff05::10", iif: "e10", oifs: ["e13", "e12"] }, // added
        ],
        joins: [
          { ifname: "e1", group: "ff3e::5:5", source: null }, // kept
          { ifname: "e0", group: "239.5.5.5", source: null }, // kept
          { ifname: "e4", group: "ff05::7", source: null }, // waiting, kept
          { ifname: "e3", group: "ff3e::7:7", source: "2001:db8::7" }, // added
        ],
      },
    })],
  },
];

function assertUnchanged(w: World, before: { dump: Dump; snap: Snapshot; stored: string; files: number }, what: string): void {
  assert.deepEqual(dumpOf(w.kernel), before.dump, `${what}: kernel differs from the state before`);
  const snap = w.engine.snapshot();
  assert.equal(configJson(snap.config), configJson(before.snap.config), `${what}: memory config differs`);
  assert.deepEqual(snap.image, before.snap.image, `${what}: memory image differs`);
  assert.equal(configJson(w.store.last), before.stored, `${what}: store differs`);
  assert.equal(w.store.saved.length, before.files, `${what}: something was saved`);
  assert.deepEqual(w.store.deltaViolations, [], `${what}: a save's delta missed a change`);
}

/** A deep copy: the engine edits its committed maps in place at the next commit. */
function capture(w: World): { dump: Dump; snap: Snapshot; stored: string; files: number } {
  const snap = w.engine.snapshot();
  return { dump: dumpOf(w.kernel), snap: structuredClone(snap), stored: configJson(w.store.last), files: w.store.saved.length };
}

/** Runs the request once without faults: its kernel calls, plan, and the state it leads to. */
async function cleanRun(req: Request): Promise<{ n: number; changes: Record<string, unknown>[] }> {
  const w = await priorWorld();
  const before = capture(w);
  const r = await attempt(w.engine.transact(req.ops(), false));
  assert.ok(r.ok, `clean run failed: ${r.ok ? "" : `${r.err.code} ${r.err.message}`}`);
  const n = w.kernel.calls;
  assert.equal(n, r.result.changes.length, "one kernel call per planned change");
  assert.ok(n > 0, "the request must change the kernel");
  assert.notDeepEqual(dumpOf(w.kernel), before.dump);
  assert.deepEqual(dumpOf(w.kernel), imageDump(w.engine.snapshot().image), "after the clean run: kernel != image");
  assert.equal(w.store.saved.length, before.files + 1, "the clean run saved once");
  assert.equal(configJson(w.store.last), configJson(w.engine.snapshot().config), "after the clean run: store != memory");
  assert.deepEqual(w.store.deltaViolations, [], "after the clean run: the save's delta missed a change");
  assertNoStaleEntries(w, "after the clean run");
  if (req.after) {
    const d = semanticDump(dumpOf(w.kernel), w.links);
    const got: Tables = { vifs: d.vifs, mifs: d.mifs, mfcs: [...w.kernel.mfcs.keys()].sort(), joins: d.joins };
    for (const table of ["vifs", "mifs", "mfcs", "joins"] as const) {
      if (req.after[table]) assert.deepEqual(got[table], req.after[table], `after the clean run: ${table}`);
    }
  }
  return { n, changes: r.result.changes };
}

function expectKernelError(r: Outcome, what: string): MfcError {
  assert.ok(!r.ok, `${what}: the request succeeded although a kernel call failed`);
  assert.equal(r.err.code, "E_KERNEL", `${what}: ${r.err.message}`);
  return r.err;
}

void describe("engine: all or nothing under kernel faults (SPEC §6.1)", () => {
  for (const req of REQUESTS) {
    void test(req.name, async (t) => {
      const { n, changes } = await cleanRun(req);
      for (let k = 1; k <= n; k++) {
        const expected = changes[k - 1] as Record<string, unknown>;
        const expectedCall = callOf(expected);

        // --- call k fails once: the undo works, everything must be exactly as before.
        await t.test(`call ${k}/${n} (${expectedCall}) fails once`, async () => {
          const what = `${req.name}: call ${k}/${n} fails once`;
          const w = await priorWorld();
          const before = capture(w);
          w.kernel.failAt({ at: k, errno: ERRNO });
          const err = expectKernelError(await attempt(w.engine.transact(req.ops(), false)), what);
          assert.deepEqual(
            { call: err.details?.call, errno: err.details?.errno, step: err.details?.step, steps: err.details?.steps, failed_step: err.details?.failed_step },
            { call: expectedCall, errno: ERRNO, step: k, steps: n, failed_step: expected },
            `${what}: error details`,
          );
          assert.ok(!("undo_failures" in (err.details ?? {})), `${what}: an undo failed: ${JSON.stringify(err.details)}`);
          assert.match(err.message, new RegExp(`${expectedCall}.*${ERRNO}.*step ${k} of ${n}`), what);
          // k calls (more when step k was one of a batch of adds, whose later entries run too:
          // apply.ts), then one undo call for each that took effect.
          const forward = (w.kernel.calls + 1) / 2;
          assert.ok(Number.isInteger(forward) && forward >= k && forward <= n, `${what}: ${w.kernel.calls} calls are not f forward calls (k <= f <= n) and f-1 undo calls`);
          assertUnchanged(w, before, what);
          assert.equal(w.engine.degraded, undefined, what);
        });

        // --- every call from k on fails: the undo fails too, the engine must resync.
        await t.test(`calls ${k}..${n} fail for good`, async () => {
          const what = `${req.name}: calls ${k}.. fail for good`;
          const w = await priorWorld();
          const before = capture(w);
          w.kernel.failAt({ at: k, persistent: true, errno: ERRNO });
          const err = expectKernelError(await attempt(w.engine.transact(req.ops(), false)), what);
          assert.deepEqual(
            { call: err.details?.call, errno: err.details?.errno, step: err.details?.step, steps: err.details?.steps, failed_step: err.details?.failed_step },
            { call: expectedCall, errno: ERRNO, step: k, steps: n, failed_step: expected },
            `${what}: error details`,
          );
          // Nothing changed in memory or in the store, whatever the kernel did.
          const snap = w.engine.snapshot();
          assert.equal(configJson(snap.config), configJson(before.snap.config), `${what}: memory config differs`);
          assert.equal(configJson(w.store.last), before.stored, `${what}: store differs`);
          assert.equal(w.store.saved.length, before.files, `${what}: something was saved`);
          if (k === 1) {
            // Nothing to undo: exactly as before.
            assertUnchanged(w, before, what);
          } else {
            const undo = err.details?.undo_failures as { call: string; errno: string }[] | undefined;
            assert.ok(Array.isArray(undo), `${what}: undo_failures missing: ${JSON.stringify(err.details)}`);
            assert.equal(undo.length, k - 1, `${what}: each of the k-1 undo calls failed`);
            assert.ok(undo.every((u) => u.errno === ERRNO), what);
            assert.equal(typeof err.details?.degraded, "string", `${what}: the failed resync must be reported`);
            assert.equal(typeof w.engine.degraded, "string", `${what}: engine.degraded must say the table is incomplete`);
            // Memory must describe what the kernel really holds (here: the flushed, empty table).
            assert.deepEqual(imageDump(w.engine.snapshot().image), dumpOf(w.kernel), `${what}: memory image != kernel`);
          }
          // Once the kernel works again, a reconcile brings back the state before.
          w.kernel.clearFaults();
          await w.engine.reconcile();
          assert.deepEqual(semanticDump(dumpOf(w.kernel), w.links), semanticDump(before.dump, w.links), `${what}: kernel after reconcile`);
          assert.deepEqual(imageDump(w.engine.snapshot().image), dumpOf(w.kernel), `${what}: memory image != kernel after reconcile`);
          assert.equal(configJson(w.engine.snapshot().config), configJson(before.snap.config), what);
          assert.equal(w.store.saved.length, before.files, `${what}: reconcile saved`);
          assert.equal(w.engine.degraded, undefined, `${what}: a clean reconcile must clear engine.degraded`);
        });
      }
    });
  }
});

void describe("engine: durable, rolled back when the save fails (SPEC §6.2)", () => {
  for (const req of REQUESTS) {
    void test(req.name, async (t) => {
      const { n } = await cleanRun(req);

      await t.test("save fails", async () => {
        const what = `${req.name}: save fails`;
        const w = await priorWorld();
        const before = capture(w);
        w.store.failSaves(1);
        const r = await attempt(w.engine.transact(req.ops(), false));
        assert.ok(!r.ok, `${what}: succeeded`);
        assert.equal(r.err.code, "E_STATE_WRITE", `${what}: ${r.err.message}`);
        assert.equal(r.err.details?.path, w.store.path, what);
        assert.ok(!("undo_failures" in (r.err.details ?? {})), what);
        assert.equal(w.kernel.calls, 2 * n, `${what}: n calls and n undo calls`);
        assert.equal(w.store.attempts, 10, `${what}: the save was attempted`); // 9 prior + 1
        assertUnchanged(w, before, what);
        // The engine is still usable: the same request now succeeds and is saved.
        const again = await attempt(w.engine.transact(req.ops(), false));
        assert.ok(again.ok, `${what}: retry failed`);
        assert.equal(w.store.saved.length, before.files + 1, what);
        assert.equal(configJson(w.store.last), configJson(w.engine.snapshot().config), what);
      });

      // A kernel call of the undo fails once: the engine must resync to the state before.
      for (let j = 1; j <= n; j++) await t.test(`save fails, then undo call ${j}/${n} fails once`, async () => {
        const what = `${req.name}: save fails, then undo call ${j}/${n} fails once`;
        const w = await priorWorld();
        const before = capture(w);
        w.store.failSaves(1);
        w.kernel.failAt({ at: n + j, errno: ERRNO });
        const r = await attempt(w.engine.transact(req.ops(), false));
        assert.ok(!r.ok, `${what}: succeeded`);
        assert.equal(r.err.code, "E_STATE_WRITE", `${what}: ${r.err.message}`);
        const undo = r.err.details?.undo_failures as { call: string; errno: string }[] | undefined;
        // The failed undo call is reported first; undo steps that depended on it may fail after it.
        assert.ok(Array.isArray(undo) && undo.length >= 1 && undo[0]?.errno === ERRNO, `${what}: undo_failures: ${JSON.stringify(r.err.details)}`);
        assertUnchanged(w, before, what);
        assert.equal(w.engine.degraded, undefined, what);
      });

      // Every undo call fails for good: the kernel cannot be restored now, but memory must say so,
      // and once the kernel works again a reconcile must bring the state before back.
      await t.test("save fails, then the kernel fails for good during the undo", async () => {
        const what = `${req.name}: save fails, then the kernel fails for good during the undo`;
        const w = await priorWorld();
        const before = capture(w);
        w.store.failSaves(1);
        w.kernel.failAt({ at: n + 1, persistent: true, errno: ERRNO });
        const r = await attempt(w.engine.transact(req.ops(), false));
        assert.ok(!r.ok, `${what}: succeeded`);
        assert.equal(r.err.code, "E_STATE_WRITE", `${what}: ${r.err.message}`);
        const undo = r.err.details?.undo_failures as unknown[] | undefined;
        assert.ok(Array.isArray(undo) && undo.length === n, `${what}: undo_failures: ${JSON.stringify(r.err.details)}`);
        assert.equal(configJson(w.engine.snapshot().config), configJson(before.snap.config), `${what}: memory config`);
        assert.equal(configJson(w.store.last), before.stored, `${what}: store`);
        assert.equal(typeof w.engine.degraded, "string", `${what}: engine.degraded must report the incomplete table`);
        assert.deepEqual(imageDump(w.engine.snapshot().image), dumpOf(w.kernel), `${what}: memory image != kernel`);
        w.kernel.clearFaults();
        await w.engine.reconcile();
        assert.deepEqual(semanticDump(dumpOf(w.kernel), w.links), semanticDump(before.dump, w.links), `${what}: kernel after reconcile`);
        assert.deepEqual(imageDump(w.engine.snapshot().image), dumpOf(w.kernel), `${what}: memory image != kernel after reconcile`);
        assert.equal(w.engine.degraded, undefined, `${what}: a clean reconcile must clear engine.degraded`);
      });
    });
  }
});

/**
 * The prior state plus one more fact the engine has not processed yet: device e6 was deleted (the
 * kernel dropped its VIF and its MIF; MFC entries (10.0.0.2, 239.1.1.3) and (10.0.0.4, 239.1.1.5)
 * still name its VIF number, (2001:db8::3, ff05::3) and (2001:db8::5, ff3e::5) its MIF number)
 * and no reconcile ran. Every transaction plans from the live image, so it must
 * leave no entry naming a vanished VIF, and a failed one must leave the kernel exactly as it was.
 */
async function dirtyWorld(): Promise<World> {
  const w = await priorWorld();
  const e6 = w.links.indexOf("e6") as number;
  w.links.remove("e6");
  w.kernel.dropVifOfIfindex(e6);
  w.kernel.resetCalls();
  return w;
}

/**
 * Every MFC entry names only VIFs (MIFs, for an IPv6 entry) that exist and belong to its route's
 * interfaces: an entry naming a vanished VIF forwards into whatever interface gets that number next
 * (STACK.md). And a (*,G) entry of either family has its parent in its set, an (S,G) entry not.
 */
function assertNoStaleEntries(w: World, what: string): void {
  const routes = w.engine.snapshot().config.routes;
  for (const [key, e] of w.kernel.mfcs) {
    const route = routes.get(`${e.origin === "0.0.0.0" || e.origin === "::" ? "*" : e.origin},${e.group}`);
    assert.ok(route, `${what}: kernel entry ${key} has no route`);
    const table = e.group.includes(":") ? w.kernel.mifs : w.kernel.vifs;
    const parent = table.get(e.parent);
    assert.ok(parent, `${what}: ${key} has parent VIF ${e.parent}, which does not exist`);
    assert.equal(w.links.nameOf(parent.ifindex), route.iif, `${what}: ${key}: parent VIF ${e.parent} is not the route's iif ${route.iif}`);
    assert.equal(e.ttls[e.parent] ?? 0, route.source === null ? 1 : 0, `${what}: ${key}: ttls[parent] (a (*,G) entry matches only with it)`);
    e.ttls.forEach((t, v) => {
      if (t === 0 || v === e.parent) return;
      const vif = table.get(v);
      assert.ok(vif, `${what}: ${key} has ttls[${v}]=${t} for a VIF that does not exist`);
      const name = w.links.nameOf(vif.ifindex) ?? "?";
      assert.ok(route.oifs.some((o) => o.ifname === name), `${what}: ${key} forwards on VIF ${v} (${name}), not an oif of the route`);
    });
  }
}

/** A dump without TTLs on VIF numbers that do not exist: those OIFs forward nothing. */
function forwardingDump(d: Dump): Dump {
  const exists = { 4: new Set(d.vifs.map((v) => v[0])), 6: new Set(d.mifs.map((v) => v[0])) };
  return {
    vifs: d.vifs,
    mifs: d.mifs,
    joins: d.joins,
    mfcs: d.mfcs.map(([key, parent, ttls]) => {
      const t = ttls.map((x, v) => (exists[key.includes(":") ? 6 : 4].has(v) ? x : 0));
      while (t.length && t[t.length - 1] === 0) t.pop();
      return [key, parent, t] as [string, number, number[]];
    }),
  };
}

/** The image minus VIFs whose device is gone: what the kernel holds if memory tells the truth. */
function liveImageDump(w: World): Dump {
  const image = w.engine.snapshot().image;
  return imageDump({ vifs: new Map([...image.vifs].filter(([, v]) => w.links.nameOf(v.ifindex) !== undefined)), mfcs: image.mfcs, joins: image.joins });
}

const DIRTY_REQUESTS: { name: string; ops: () => Op[] }[] = [
  { name: "ADD_MFC on existing VIFs", ops: () => [add(null, "239.2.2.3", "e2", ["e0", "e1"])] },
  { name: "ADD_MFC needing a new VIF", ops: () => [add("10.0.0.6", "239.2.2.2", "e8", ["e10"])] },
  { name: "REPLACE_MFC of a route that used e6", ops: () => [replace("10.0.0.2", "239.1.1.3", "e2", ["e3", "e7"])] },
  { name: "DEL_MFC", ops: () => [del("10.0.0.3", "239.1.1.4")] },
  { name: "ADD_VIF", ops: () => [vifAdd("e8", 2)] },
  { name: "ADD_MFC IPv6 on existing MIFs", ops: () => [add(null, "ff3e::2:3", "e2", ["e0", "e1"])] },
  { name: "ADD_MFC IPv6 needing a new MIF", ops: () => [add("2001:db8::6", "ff3e::2:2", "e8", ["e10"])] },
  { name: "REPLACE_MFC IPv6 of a route that used e6", ops: () => [replace("2001:db8::3", "ff05::3", "e3", ["e7", "e9"])] },
  { name: "DEL_MFC IPv6", ops: () => [del("2001:db8::1", "ff3e::1")] },
  { name: "ADD_VIF of a MIF", ops: () => [mifAdd("e8")] },
  { name: "BATCH of both families, each replacing a route that used e6", ops: () => [replace("10.0.0.2", "239.1.1.3", "e2", ["e3", "e7"]), replace("2001:db8::5", "ff3e::5", "e5", ["e0"])] },
];

void describe("engine: a link vanished and no reconcile ran yet", () => {
  for (const req of DIRTY_REQUESTS) {
    void test(req.name, async (t) => {
      let n = 0;
      await t.test("the transaction cleans up entries naming the vanished VIF", async () => {
        const w = await dirtyWorld();
        const r = await attempt(w.engine.transact(req.ops(), false));
        assert.ok(r.ok, `failed: ${r.ok ? "" : r.err.message}`);
        n = w.kernel.calls;
        assertNoStaleEntries(w, req.name);
        assert.deepEqual(dumpOf(w.kernel), liveImageDump(w), `${req.name}: kernel != image`);
        // And the reconcile that follows the link event has nothing left to do to the MFC table.
        const rec = await w.engine.reconcile();
        assert.deepEqual(rec.changes.filter((c) => c.action !== "del_vif" && c.action !== "add_vif"), [], `${req.name}: MFC work was left for the reconcile`);
      });
      for (let k = 1; k <= n; k++) {
        await t.test(`call ${k}/${n} fails once: the kernel is exactly as before`, async () => {
          const w = await dirtyWorld();
          const before = forwardingDump(dumpOf(w.kernel));
          const config = configJson(w.engine.snapshot().config);
          w.kernel.failAt({ at: k, errno: ERRNO });
          expectKernelError(await attempt(w.engine.transact(req.ops(), false)), `${req.name}: call ${k}`);
          // An OIF on the vanished VIF cannot be re-added by an undo (the kernel drops OIFs naming
          // missing VIFs), so "as before" is judged on what forwards: dead OIFs are left out.
          assert.deepEqual(forwardingDump(dumpOf(w.kernel)), before, `${req.name}: call ${k}: kernel differs from the state before`);
          assert.equal(configJson(w.engine.snapshot().config), config, `${req.name}: call ${k}: memory config`);
          assert.deepEqual(forwardingDump(dumpOf(w.kernel)), forwardingDump(liveImageDump(w)), `${req.name}: call ${k}: kernel != image`);
          // The entries that lost their dead OIF are marked stale, so the next plan rewrites them.
          await w.engine.reconcile();
          assertNoStaleEntries(w, `${req.name}: call ${k}, after reconcile`);
        });
      }
    });
  }
});

/**
 * Found by the IPv6 model test (MFC_MODEL_SEED=45, =89): resync() must keep the stale VIF/MIF slots
 * (Image.staleVifis) of the image it reinstalls, whose stale entries still name them; else the next
 * routes-only transaction hands such a number to a new interface, and the stale entry takes its
 * packets. IPv4 and IPv6 alike.
 */
void test("a resync after a failed undo keeps the numbers of vanished VIFs and MIFs away from new interfaces", async () => {
  const w = await dirtyWorld();
  const ops = (): Op[] => [del("10.0.0.3", "239.1.1.4"), del("2001:db8::1", "ff3e::1")];
  const n = (await w.engine.transact(ops(), true)).changes.length;
  w.store.failSaves(1);
  w.kernel.failAt({ at: n + 1, errno: ERRNO }); // the first undo call: the engine resyncs
  const r = await attempt(w.engine.transact(ops(), false));
  assert.ok(!r.ok && r.err.code === "E_STATE_WRITE" && Array.isArray(r.err.details?.undo_failures), `the save and an undo call failed: ${JSON.stringify(r.ok ? r.result : r.err.details)}`);
  // Routes over interfaces that have neither a VIF nor a MIF yet.
  const next = await attempt(w.engine.transact([add("10.0.0.20", "239.4.4.20", "e8", ["e10", "e12"]), add("2001:db8::20", "ff3e::4:20", "e8", ["e10", "e12"])], false));
  assert.ok(next.ok, next.ok ? "" : next.err.message);
  assertNoStaleEntries(w, "after the resync and a transaction adding VIFs and MIFs");
});

void describe("engine: dry run touches nothing", () => {
  for (const req of REQUESTS) {
    void test(req.name, async () => {
      const { changes } = await cleanRun(req);
      const w = await priorWorld();
      const before = capture(w);
      const attemptsBefore = w.store.attempts;
      // Even a kernel that fails every call cannot fail a dry run: it must not call it.
      w.kernel.failAt({ at: 1, persistent: true });
      const r = await attempt(w.engine.transact(req.ops(), true));
      assert.ok(r.ok, `dry run failed: ${r.ok ? "" : r.err.message}`);
      assert.deepEqual(r.result.changes, changes, "dry run plans what the real run does");
      assert.equal(w.kernel.calls, 0, "dry run made kernel calls");
      assert.equal(w.store.attempts, attemptsBefore, "dry run tried to save");
      assertUnchanged(w, before, "dry run");
    });
  }

  void test("a dry run that fails validation changes nothing either", async () => {
    const w = await priorWorld();
    const before = capture(w);
    const r = await attempt(w.engine.transact([add("10.0.0.1", "239.1.1.1", "e0", ["e1"])], true));
    assert.ok(!r.ok && r.err.code === "E_MFC_EXISTS");
    assert.equal(w.kernel.calls, 0);
    assertUnchanged(w, before, "failed dry run");
  });
});

void describe("engine: validation failures never reach the kernel (SPEC §6.5)", () => {
  const cases: [string, () => Op[], string][] = [
    ["E_MFC_EXISTS", () => [add("10.0.0.1", "239.1.1.1", "e0", ["e1"])], "E_MFC_EXISTS"],
    ["E_IF_NOT_FOUND (missing oif)", () => [add("10.0.0.1", "239.5.5.5", "e0", ["e4"])], "E_IF_NOT_FOUND"],
    ["E_VIF_IN_USE", () => [vifDel("e5")], "E_VIF_IN_USE"],
    ["E_VIF_NOT_FOUND", () => [vifDel("e10")], "E_VIF_NOT_FOUND"],
    ["E_VIF_EXISTS", () => [vifAdd("e9")], "E_VIF_EXISTS"],
    ["E_MFC_NOT_FOUND", () => [del("10.0.0.1", "239.7.7.7")], "E_MFC_NOT_FOUND"],
    ["last op of a batch fails", () => [add("10.0.0.1", "239.5.5.5", "e10", ["e12"]), parseOp("FLUSH", {}), del("10.0.0.1", "239.1.1.1")], "E_MFC_NOT_FOUND"],
    // IPv6, and the two tables kept apart: a VIF is no MIF, an IPv4 route uses no MIF.
    ["E_MFC_EXISTS (IPv6)", () => [add("2001:db8::1", "ff3e::1", "e0", ["e1"])], "E_MFC_EXISTS"],
    ["E_IF_NOT_FOUND (IPv6, missing iif)", () => [add(null, "ff3e::5:5", "e4", ["e0"])], "E_IF_NOT_FOUND"],
    ["E_VIF_IN_USE (a pinned MIF that IPv6 routes use)", () => [mifDel("e5")], "E_VIF_IN_USE"],
    ["E_VIF_IN_USE (the MIF of e9, whose pinned VIF no IPv4 route uses)", () => [mifDel("e9")], "E_VIF_IN_USE"],
    ["E_VIF_NOT_FOUND (e13 has a pinned MIF, no VIF)", () => [vifDel("e13")], "E_VIF_NOT_FOUND"],
    ["E_VIF_NOT_FOUND (MIF)", () => [mifDel("e8")], "E_VIF_NOT_FOUND"],
    ["E_VIF_EXISTS (MIF)", () => [mifAdd("e13")], "E_VIF_EXISTS"],
    ["E_VIF_EXISTS (MIF e5, pinned beside VIF e5)", () => [mifAdd("e5")], "E_VIF_EXISTS"],
    ["E_MFC_NOT_FOUND (IPv6 (*,G))", () => [del(null, "ff3e::1")], "E_MFC_NOT_FOUND"],
    ["E_JOIN_EXISTS (IPv6)", () => [join("e2", "ff3e::6:6", "2001:db8::8")], "E_JOIN_EXISTS"],
    [
      "APPLY of IPv6 only that lists an IPv4 route",
      () => [parseOp("APPLY", { family: 6, state: { routes: [{ source: null, group: "ff3e::2", iif: "e1", oifs: ["e0"] }, { source: null, group: "239.1.1.2", iif: "e1", oifs: ["e0"] }] } })],
      "E_INVALID_ARGUMENT",
    ],
    [
      "last op of a mixed batch fails", () => [add("2001:db8::6", "ff3e::5:5", "e10", ["e12"]), mifAdd("e8"), add("10.0.0.6", "239.5.5.5", "e10", ["e12"]), parseOp("FLUSH", { family: 6 }), del("2001:db8::1", "ff3e::1")],
      "E_MFC_NOT_FOUND",
    ],
  ];
  for (const [name, ops, code] of cases) {
    void test(name, async () => {
      const w = await priorWorld();
      const before = capture(w);
      const r = await attempt(w.engine.transact(ops(), false));
      assert.ok(!r.ok, "succeeded");
      assert.equal(r.err.code, code, r.err.message);
      assert.equal(w.kernel.calls, 0);
      assertUnchanged(w, before, name);
    });
  }
});

/**
 * SPEC §3/§7: MAXVIFS and MAXMIFS are 32 each, counted apart. In the prior state the config names
 * 10 VIF interfaces and 11 MIF interfaces (e4's, missing, count too: admission counts what the
 * config names, present or missing).
 */
void describe("engine: VIFs and MIFs are limited apart (32 each)", () => {
  void test("each table fills to 32 whatever the other holds; one more is refused for its table only", async () => {
    const w = await priorWorld();
    for (const name of ifnames(14, 35)) w.links.add(name);
    const ok = async (ops: Op[], what: string): Promise<void> => {
      const r = await attempt(w.engine.transact(ops, false));
      assert.ok(r.ok, `${what}: ${r.ok ? "" : `${r.err.code} ${r.err.message}`}`);
      assert.deepEqual(dumpOf(w.kernel), imageDump(w.engine.snapshot().image), `${what}: kernel != image`);
      assertNoStaleEntries(w, what);
    };
    await ok([add("10.0.0.30", "239.4.4.30", "e14", ifnames(15, 35))], "VIF table to 32");
    await ok([add("2001:db8::30", "ff3e::4:30", "e14", ifnames(15, 34))], "MIF table to 32");
    // 32 each, e4's missing: 31 in each kernel table, every one of them numbered 0-31.
    assert.equal(w.kernel.vifs.size, 31, "VIFs in the kernel");
    assert.equal(w.kernel.mifs.size, 31, "MIFs in the kernel");
    assert.deepEqual(w.engine.snapshot().image.waiting, new Map([["e4", "interface missing"], ["e4/6", "interface missing"]]), "waiting");
    const before = capture(w);
    w.kernel.resetCalls();
    // details.family: 6 names the MIF table, none the VIF table; "either" where both are full.
    const cases: [string, Op[], 4 | 6 | "either"][] = [
      ["one more MIF", [add(null, "ff3e::4:31", "e0", ["e35"])], 6],
      ["one more VIF", [add(null, "239.4.4.31", "e0", ["e12"])], 4],
      ["one more MIF, pinned", [mifAdd("e12")], 6],
      ["one more VIF, pinned, on e13 (which has a MIF)", [vifAdd("e13")], 4],
      ["one more of each in a batch", [add(null, "239.4.4.31", "e0", ["e12"]), add(null, "ff3e::4:31", "e0", ["e35"])], "either"],
    ];
    for (const [what, ops, table] of cases) {
      const r = await attempt(w.engine.transact(ops, false));
      assert.ok(!r.ok, `${what}: succeeded`);
      assert.equal(r.err.code, "E_VIF_LIMIT", `${what}: ${r.err.message}`);
      const { needed, limit, family } = r.err.details ?? {};
      assert.deepEqual({ needed, limit }, { needed: 33, limit: 32 }, `${what}: details`);
      if (table !== "either") assert.equal(family, table === 6 ? 6 : undefined, `${what}: details.family`);
      assert.equal(w.kernel.calls, 0, `${what}: called the kernel`);
      assertUnchanged(w, before, what);
    }
    // Room in the VIF table again once a route leaves it, however full the MIF table is.
    await ok([del("10.0.0.30", "239.4.4.30"), add(null, "239.4.4.32", "e0", ["e12"])], "VIF table freed, then a VIF on e12");
  });

  /**
   * Found by the IPv6 model test (MFC_MODEL_SEED=26): runGroup() must ask for a reconcile (wake)
   * when either table shrank, not the two together: a transaction that frees VIFs while it adds as
   * many MIFs would otherwise leave interfaces waiting for a free VIF until the periodic retry.
   */
  void test("a transaction that frees VIFs while it adds MIFs asks for the reconcile that installs waiting interfaces", async () => {
    const links = new FakeLinks([...ifnames(0, 32), "z1", "z2"]);
    const kernel = new FakeKernel(links);
    const wide: Route = { source: null, group: "239.4.4.1", iif: "e0", oifs: ifnames(1, 32).map((ifname) => ({ ifname, ttl: 1 })) };
    const small: Route = { source: "10.0.0.1", group: "239.4.4.2", iif: "z1", oifs: [{ ifname: "z2", ttl: 1 }] };
    // A state acknowledged before past the VIF limit (restore never refuses it): 35 interfaces, 32
    // VIFs; z1 and z2 (numbered last) wait for a VIF.
    const store = new MemoryStore(undefined, { vifs: new Map(), routes: new Map([["*,239.4.4.1", wide], ["10.0.0.1,239.4.4.2", small]]), joins: new Map() });
    let woken = 0;
    const engine = new Engine(kernel, links, store, () => undefined, () => { woken++; });
    await engine.restore();
    assert.equal(kernel.vifs.size, 32, "restore: 32 VIFs");
    assert.equal(engine.snapshot().image.waiting?.get("z1"), "VIF limit: 32 in use", "restore: z1 waits for a VIF");
    // 33 VIFs freed, 32 MIFs added: the waiting interfaces now fit.
    const r = await attempt(engine.transact([del(null, "239.4.4.1"), add(null, "ff3e::4:1", "e0", ifnames(1, 31))], false));
    assert.ok(r.ok, r.ok ? "" : r.err.message);
    assert.equal(engine.retryWanted(), true, "interfaces wait that fit now");
    assert.equal(woken, 1, "the engine asked for a reconcile");
  });
});
