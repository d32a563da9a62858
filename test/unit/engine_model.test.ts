/**
 * Model-based test of the engine (SPEC §3, §6.1-6.3, §7): random sequences of add / replace / del /
 * vif add / vif del / join / leave / batch / apply / flush / restart / link removal, re-creation and rename, the
 * kernel refusing an interface as a VIF, and routes over many interfaces that reach the 32-VIF
 * limit, some of them invalid and some run with an injected kernel or save fault, against a
 * deliberately simple model (a Map of routes and a Map of pinned VIFs, with the error code each
 * invalid op must get), and bursts of transactions sent at once, which the engine commits as one
 * group with one save that may fail for all of them. Every key, route, pin, join and flush is of
 * either address family (IPv6: MIFs numbered apart in a table of 32 of their own, ttl 1 only,
 * `vif add`/`vif del` with family 6, `flush` and `apply` of one family), and batches, APPLYs and
 * bursts mix them. The state is a FileStateStore on a simulated disk (SimFs); a save fault is a
 * failing write. A restart loads the files and must always succeed.
 *
 * After every step:
 * - the engine's config and the last saved config equal the model (a failed request changed nothing);
 * - the FakeKernel's VIF table holds exactly one VIF per needed, existing interface of the IPv4
 *   config, with its threshold, and its MIF table one MIF per needed, existing interface of the
 *   IPv6 config (the same device may have both; neither counts against the other's 32);
 * - its MFC table holds exactly the routes the model can install (iif and at least one oif present),
 *   each parent/oif VIF (MIF for an IPv6 entry) naming the right ifindex, each TTL the stricter of
 *   oif TTL and VIF threshold (always 1 for IPv6), (*,G) entries of both families with their parent
 *   set, and no entry references a VIF that does not exist or belongs to another interface;
 * - the engine's image equals the kernel table (memory tells the truth);
 * - while the kernel refuses an interface (or until a reconcile retried after it stopped): every
 *   route is installed or pending with a reason, every needed interface has a VIF (MIF) or a reason.
 * The model computes VIF keys, needed interfaces and admission per family on its own (no engine helper).
 *
 * Reproducible: a fixed seed (override with MFC_MODEL_SEED=<n>); fast-check prints seed and path
 * of any counterexample, and the failing step is named in the message.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Engine } from "../../src/engine/engine.js";
import type { Image } from "../../src/engine/image.js";
import { MfcError } from "../../src/errors/codes.js";
import { pendingReason } from "../../src/engine/realize.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { configToJson } from "../../src/state/format.js";
import { FileStateStore } from "../../src/state/store.js";
import type { Config, Join, PinnedVif, Route } from "../../src/model/types.js";
import { parseBatch, parseOp, type Op } from "../../src/protocol/schema.js";
import { FaultyFs } from "../support/fault_fs.js";
import { configText } from "../support/memory_store.js";
import { SimFs } from "../support/sim_fs.js";
import { STATE, loadText } from "../support/store_world.js";

const DEFAULT_SEED = 0x6d6663;
const SEED = process.env.MFC_MODEL_SEED !== undefined ? Number(process.env.MFC_MODEL_SEED) : DEFAULT_SEED;
const RUNS = process.env.MFC_MODEL_RUNS !== undefined ? Number(process.env.MFC_MODEL_RUNS) : 200;

const IFACES = ["e0", "e1", "e2", "e3", "e4", "e5"];
/** Enough more interfaces that routes over them reach the kernel's 32-VIF limit. */
const WIDE = Array.from({ length: 40 }, (_, i) => `w${i}`);
const MISSING = "zz9"; // never exists
const GROUPS = ["239.0.0.1", "239.0.0.2", "239.0.0.3", "239.0.0.4"];
const SOURCES = [null, "10.0.0.1", "10.0.0.2", "192.168.7.3"];
/** IPv6 keys, in the canonical text (model/ipv6.ts formatIpv6) the engine stores. */
const GROUPS6 = ["ff3e::1", "ff3e::2", "ff05::3"];
const SOURCES6 = [null, "2001:db8::1", "2001:db8::2"];

type Family = 4 | 6;
const FAMILIES: readonly Family[] = [4, 6];
/** A route's or join's family: its group's (source and group are always generated of one family). */
const familyOf = (group: string): Family => (group.includes(":") ? 6 : 4);
/** The model's own VIF keys (not the engine's vifKey): an interface's VIF "e0", its MIF "e0/6". */
const vk = (family: Family, ifname: string): string => (family === 6 ? `${ifname}/6` : ifname);
const keyFamily = (key: string): Family => (key.endsWith("/6") ? 6 : 4);
const keyIfname = (key: string): string => (key.endsWith("/6") ? key.slice(0, -2) : key);
/** The kernel's origin of a (*,G) entry. */
const anyOrigin = (family: Family): string => (family === 6 ? "::" : "0.0.0.0");
const tableName = (family: Family): string => (family === 6 ? "MIF" : "VIF");

// ---------------------------------------------------------------------------------------------
// Commands

interface RouteSpec { source: string | null; group: string; iif: string; oifs: { ifname: string; ttl: number }[] }
type SubCmd =
  | { k: "add" | "replace"; route: RouteSpec }
  | { k: "del"; source: string | null; group: string }
  | { k: "vifAdd"; ifname: string; threshold: number; family: Family }
  /** `pick`: instead, the pick-th pinned VIF or MIF of the state the transaction starts from (resolvePicks). */
  | { k: "vifDel"; ifname: string; family: Family; pick?: number }
  | { k: "flush"; family?: Family }
  | { k: "join" | "leave"; ifname: string; group: string; source: string | null };
type TxCmd =
  | SubCmd
  | { k: "batch"; ops: SubCmd[] }
  /** Desired state: the current routes/pins selected by the masks, plus extra ones. */
  | {
    k: "apply"; keepRoutes: number; keepVifs: number; keepJoins: number; routes: RouteSpec[]; vifs: VifSpec[];
    /** `mfc -4/-6 apply`: the state of that family only (its current entries and the extra ones of
     * that family; `stray`: the extra ones of the other family too, which the engine refuses). */
    family?: Family; stray?: boolean;
  };
interface VifSpec { ifname: string; threshold: number; family: Family }
type Fault = { mode: "none" } | { mode: "once" | "persistent" | "save" | "saveThenUndoOnce"; pick: number };
type Cmd =
  | { k: "tx"; tx: TxCmd; fault: Fault }
  /** Transactions sent at once: they form one group commit (one save), which may fail as a whole. */
  | { k: "burst"; txs: TxCmd[]; failSave: boolean }
  | { k: "restart" }
  | { k: "linkDown" | "linkUp" | "rename" | "refuse" | "allow"; ifname: string; reconcile: boolean }
  | { k: "reconcile" }
  /** A state file written by an earlier version, past the 32-VIF limit, then a restart. */
  | { k: "legacy"; route: RouteSpec };

const ifnameArb = fc.oneof({ weight: 15, arbitrary: fc.constantFrom(...IFACES) }, { weight: 1, arbitrary: fc.constant(MISSING) });
const ttlArb = fc.constantFrom(1, 1, 1, 2, 3, 64);
const thresholdArb = fc.constantFrom(1, 1, 2, 5);
/** Routes may also be templates (a group range): VIFs like any route, no kernel entry of their own. */
const TEMPLATE = "239.8.0.0/16";
const TEMPLATE6 = "ff3e::8000:0/112";
const isTemplate = (group: string): boolean => group === TEMPLATE || group === TEMPLATE6;
/** A route key: the family first, then a source and a group of it. */
const keyArb = fc.oneof(
  fc.record({ source: fc.constantFrom(...SOURCES), group: fc.constantFrom(...GROUPS, TEMPLATE) }),
  fc.record({ source: fc.constantFrom(...SOURCES6), group: fc.constantFrom(...GROUPS6, TEMPLATE6) }),
);
/** IPv6 routes take ttl 1 only (schema.ts: MRT6 entries have no per-oif threshold). */
const familyTtls = (r: RouteSpec): RouteSpec => (familyOf(r.group) === 6 ? { ...r, oifs: r.oifs.map((o) => ({ ...o, ttl: 1 })) } : r);
const joinArb = fc.oneof(
  fc.record({ k: fc.constantFrom("join" as const, "join" as const, "leave" as const), ifname: ifnameArb, group: fc.constantFrom(...GROUPS), source: fc.constantFrom(...SOURCES) }),
  fc.record({ k: fc.constantFrom("join" as const, "join" as const, "leave" as const), ifname: ifnameArb, group: fc.constantFrom(...GROUPS6), source: fc.constantFrom(...SOURCES6) }),
);
/** A pin: a VIF with its threshold, or a MIF (threshold 1, schema.ts). */
const vifSpecArb: fc.Arbitrary<VifSpec> = fc.oneof(
  fc.record({ ifname: ifnameArb, threshold: thresholdArb }).map((x) => ({ ...x, family: 4 as const })),
  ifnameArb.map((ifname) => ({ ifname, threshold: 1, family: 6 as const })),
);
const flushArb = fc.constantFrom<{ k: "flush"; family?: Family }>({ k: "flush" }, { k: "flush", family: 4 }, { k: "flush", family: 6 });
const routeArb: fc.Arbitrary<RouteSpec> = fc.record({
  key: keyArb,
  iif: ifnameArb,
  oifs: fc.array(fc.record({ ifname: ifnameArb, ttl: ttlArb }), { minLength: 1, maxLength: 4 }),
  bad: fc.integer({ min: 0, max: 9 }),
}).map(({ key, iif, oifs, bad }) => {
  // Mostly well-formed (iif not an oif, no duplicate oif); 1 in 10 left as generated.
  let list = oifs;
  if (bad !== 0) {
    const seen = new Set<string>([iif]);
    list = oifs.filter((o) => !seen.has(o.ifname) && seen.add(o.ifname) !== undefined);
    if (list.length === 0) list = [{ ifname: IFACES.find((n) => n !== iif) as string, ttl: 1 }];
  }
  return familyTtls({ source: key.source, group: key.group, iif, oifs: list });
});
/** A route over many interfaces (two such routes name more than 32). */
const wideRouteArb: fc.Arbitrary<RouteSpec> = fc.record({
  key: keyArb,
  iif: fc.constantFrom(...IFACES),
  oifs: fc.uniqueArray(fc.constantFrom(...WIDE), { minLength: 14, maxLength: 28 }),
}).map(({ key, iif, oifs }) => ({ source: key.source, group: key.group, iif, oifs: oifs.map((ifname) => ({ ifname, ttl: 1 })) }));
const subArb: fc.Arbitrary<SubCmd> = fc.oneof(
  { weight: 6, arbitrary: routeArb.map((route) => ({ k: "add" as const, route })) },
  // Half of them IPv6: two of a family name more than 32 interfaces, one of each does not.
  { weight: 3, arbitrary: wideRouteArb.map((route) => ({ k: "add" as const, route })) },
  { weight: 3, arbitrary: routeArb.map((route) => ({ k: "replace" as const, route })) },
  { weight: 3, arbitrary: keyArb.map((key) => ({ k: "del" as const, ...key })) },
  { weight: 3, arbitrary: vifSpecArb.map((x) => ({ k: "vifAdd" as const, ...x })) },
  { weight: 2, arbitrary: fc.record({ ifname: ifnameArb, family: fc.constantFrom<Family>(4, 6) }).map((x) => ({ k: "vifDel" as const, ...x })) },
  { weight: 2, arbitrary: fc.record({ ifname: ifnameArb, family: fc.constantFrom<Family>(4, 6), pick: fc.nat() }).map((x) => ({ k: "vifDel" as const, ...x })) },
  { weight: 1, arbitrary: flushArb },
  { weight: 5, arbitrary: joinArb },
);
const txArb: fc.Arbitrary<TxCmd> = fc.oneof(
  { weight: 10, arbitrary: subArb.filter((s) => s.k !== "flush") },
  { weight: 1, arbitrary: flushArb },
  { weight: 3, arbitrary: fc.array(subArb, { minLength: 2, maxLength: 5 }).map((ops) => ({ k: "batch" as const, ops })) },
  {
    weight: 2,
    arbitrary: fc.record({
      keepRoutes: fc.nat(), keepVifs: fc.nat(), keepJoins: fc.nat(),
      routes: fc.array(fc.oneof({ weight: 5, arbitrary: routeArb }, { weight: 1, arbitrary: wideRouteArb }), { maxLength: 3 }),
      vifs: fc.array(vifSpecArb, { maxLength: 2 }),
      limit: fc.constantFrom(undefined, undefined, 4 as const, 6 as const), stray: fc.integer({ min: 0, max: 5 }),
    }).map(({ limit, stray, ...x }) => ({ k: "apply" as const, ...x, ...(limit === undefined ? {} : { family: limit, stray: stray === 0 }) })),
  },
);
const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  { weight: 12, arbitrary: fc.constant({ mode: "none" as const }) },
  { weight: 4, arbitrary: fc.record({ mode: fc.constantFrom("once" as const, "persistent" as const, "save" as const, "saveThenUndoOnce" as const), pick: fc.nat() }) },
);
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 20, arbitrary: fc.record({ tx: txArb, fault: faultArb }).map((x) => ({ k: "tx" as const, ...x })) },
  {
    weight: 4,
    arbitrary: fc.record({ txs: fc.array(txArb, { minLength: 2, maxLength: 6 }), failSave: fc.boolean() }).map((x) => ({ k: "burst" as const, ...x })),
  },
  { weight: 1, arbitrary: fc.constant({ k: "restart" as const }) },
  { weight: 3, arbitrary: fc.record({ ifname: fc.constantFrom(...IFACES), reconcile: fc.boolean() }).map((x) => ({ k: "linkDown" as const, ...x })) },
  { weight: 2, arbitrary: fc.record({ ifname: fc.constantFrom(...IFACES), reconcile: fc.boolean() }).map((x) => ({ k: "linkUp" as const, ...x })) },
  { weight: 1, arbitrary: fc.constant({ k: "reconcile" as const }) },
  {
    // 33 interfaces in one route: past the limit whatever else the state holds.
    weight: 1,
    arbitrary: fc.record({ key: keyArb, iif: fc.constantFrom(...IFACES) }).map(({ key, iif }) => ({
      k: "legacy" as const,
      route: { source: key.source, group: key.group, iif, oifs: [...IFACES.filter((n) => n !== iif).slice(0, 4), ...WIDE.slice(0, 28)].map((ifname) => ({ ifname, ttl: 1 })) }, // either family
    })),
  },
  ...(["rename", "refuse", "allow"] as const).map((k) => ({
    weight: k === "refuse" ? 2 : 1,
    arbitrary: fc.record({ ifname: fc.constantFrom(...IFACES, "w0", "w5"), reconcile: fc.boolean() }).map((x) => ({ k, ...x })),
  })),
);

// ---------------------------------------------------------------------------------------------
// The model: what the configuration must be, and which error each invalid op gets.

interface Model { routes: Map<string, Route>; vifs: Map<string, PinnedVif>; joins: Map<string, Join> }

class Refused extends Error {
  /** E_VIF_LIMIT: the families past their limit (the engine names the MIF table: details.family 6). */
  constructor(readonly code: string, readonly families: Family[] = []) {
    super(code);
  }
}

const keyOf = (source: string | null, group: string): string => `${source ?? "*"},${group}`;
const sameRoute = (a: Route, b: Route): boolean => JSON.stringify([a.source, a.group, a.iif, a.oifs]) === JSON.stringify([b.source, b.group, b.iif, b.oifs]);
const usesIf = (r: Route, name: string): boolean => r.iif === name || r.oifs.some((o) => o.ifname === name);
/** The interfaces of one family the model needs a VIF (MIF) for: pins and route interfaces, present or missing. */
function neededOf(m: Model, family: Family): Set<string> {
  const names = new Set<string>();
  for (const key of m.vifs.keys()) if (keyFamily(key) === family) names.add(keyIfname(key));
  for (const r of m.routes.values()) if (familyOf(r.group) === family) for (const n of [r.iif, ...r.oifs.map((o) => o.ifname)]) names.add(n);
  return names;
}
const toPin = (x: VifSpec): PinnedVif => (x.family === 6 ? { ifname: x.ifname, threshold: 1, family: 6 } : { ifname: x.ifname, threshold: x.threshold });

function toRoute(s: RouteSpec): Route {
  return { source: s.source, group: s.group, iif: s.iif, oifs: s.oifs.map((o) => ({ ifname: o.ifname, ttl: o.ttl })) };
}

function checkRoute(r: Route, exists: (n: string) => boolean): void {
  const names = [r.iif, ...r.oifs.map((o) => o.ifname)];
  if (new Set(names).size !== names.length) throw new Refused("E_INVALID_ARGUMENT");
  if (!names.every(exists)) throw new Refused("E_IF_NOT_FOUND");
}

function modelSub(m: Model, c: SubCmd, exists: (n: string) => boolean): void {
  switch (c.k) {
    case "add":
    case "replace": {
      const key = keyOf(c.route.source, c.route.group);
      if (c.k === "add" && m.routes.has(key)) throw new Refused("E_MFC_EXISTS");
      checkRoute(toRoute(c.route), exists);
      m.routes.set(key, toRoute(c.route));
      return;
    }
    case "del":
      if (!m.routes.delete(keyOf(c.source, c.group))) throw new Refused("E_MFC_NOT_FOUND");
      return;
    case "vifAdd":
      if (m.vifs.has(vk(c.family, c.ifname))) throw new Refused("E_VIF_EXISTS");
      if (!exists(c.ifname)) throw new Refused("E_IF_NOT_FOUND");
      m.vifs.set(vk(c.family, c.ifname), toPin(c));
      return;
    case "vifDel":
      // Only routes of the VIF's own family hold it.
      if ([...m.routes.values()].some((r) => familyOf(r.group) === c.family && usesIf(r, c.ifname))) throw new Refused("E_VIF_IN_USE");
      if (!m.vifs.delete(vk(c.family, c.ifname))) throw new Refused("E_VIF_NOT_FOUND");
      return;
    case "flush":
      for (const [key, r] of [...m.routes]) if (c.family === undefined || familyOf(r.group) === c.family) m.routes.delete(key);
      for (const key of [...m.vifs.keys()]) if (c.family === undefined || keyFamily(key) === c.family) m.vifs.delete(key);
      for (const [key, j] of [...m.joins]) if (c.family === undefined || familyOf(j.group) === c.family) m.joins.delete(key);
      return;
    case "join": {
      const key = joinKeyOf(c);
      if (m.joins.has(key)) throw new Refused("E_JOIN_EXISTS");
      if (!exists(c.ifname)) throw new Refused("E_IF_NOT_FOUND");
      m.joins.set(key, { ifname: c.ifname, group: c.group, source: c.source });
      return;
    }
    case "leave":
      if (!m.joins.delete(joinKeyOf(c))) throw new Refused("E_JOIN_NOT_FOUND");
      return;
  }
}

const joinKeyOf = (j: { ifname: string; group: string; source: string | null }): string => `${j.ifname}|${j.source ?? "*"},${j.group}`;

/** The concrete APPLY desired state for `c`, given the current model. */
function applyState(m: Model, c: Extract<TxCmd, { k: "apply" }>): { routes: Route[]; vifs: PinnedVif[]; joins: Join[]; family?: Family } {
  const f = c.family;
  const mine = (family: Family): boolean => f === undefined || family === f;
  const routes = [...m.routes.values()].filter((r) => mine(familyOf(r.group))).filter((_, i) => ((c.keepRoutes >> i) & 1) === 1);
  const vifs = [...m.vifs.values()].filter((v) => mine(v.family ?? 4)).filter((_, i) => ((c.keepVifs >> i) & 1) === 1);
  const joins = [...m.joins.values()].filter((j) => mine(familyOf(j.group))).filter((_, i) => ((c.keepJoins >> i) & 1) === 1);
  const extraRoutes = c.routes.filter((r) => c.stray === true || mine(familyOf(r.group))).map(toRoute);
  const extraVifs = c.vifs.filter((v) => c.stray === true || mine(v.family)).map(toPin);
  return { routes: [...routes, ...extraRoutes], vifs: [...vifs, ...extraVifs], joins, ...(f === undefined ? {} : { family: f }) };
}

/** Expected outcome of a transaction: the next model, or the error code. */
/** `concrete`: the APPLY's state as it was sent (its masks resolved against an earlier model). */
function modelTx(m: Model, tx: TxCmd, exists: (n: string) => boolean, concrete?: ReturnType<typeof applyState>): { next: Model } | { code: string; families: Family[] } {
  const next: Model = { routes: new Map(m.routes), vifs: new Map(m.vifs), joins: new Map(m.joins) };
  try {
    if (tx.k === "batch") for (const s of tx.ops) modelSub(next, s, exists);
    else if (tx.k === "apply") {
      const want = concrete ?? applyState(m, tx);
      // The whole state, or (`-6 apply`) that family's: the other family stays as it is.
      modelSub(next, want.family === undefined ? { k: "flush" } : { k: "flush", family: want.family }, exists);
      const f = want.family;
      if (f !== undefined && [...want.routes.map((r) => familyOf(r.group)), ...want.vifs.map((v) => v.family ?? 4), ...want.joins.map((j) => familyOf(j.group))].some((x) => x !== f)) {
        throw new Refused("E_INVALID_ARGUMENT");
      }
      for (const j of want.joins) next.joins.set(joinKeyOf(j), j); // kept ones: they may wait for their interface
      for (const x of want.vifs) {
        const key = vk(x.family ?? 4, x.ifname);
        if (next.vifs.has(key)) throw new Refused("E_INVALID_ARGUMENT");
        // A VIF pinned before may stay pinned while its interface is missing.
        if (!m.vifs.has(key) && !exists(x.ifname)) throw new Refused("E_IF_NOT_FOUND");
        next.vifs.set(key, x);
      }
      for (const r of want.routes) {
        const key = keyOf(r.source, r.group);
        if (next.routes.has(key)) throw new Refused("E_INVALID_ARGUMENT");
        // An unchanged route may stay pending; a new or changed one needs its interfaces.
        const old = m.routes.get(key);
        if (!(old && sameRoute(old, r))) checkRoute(r, exists);
        next.routes.set(key, r);
      }
    } else modelSub(next, tx, exists);
    // Admission (SPEC §6.3), per family: the names a config uses, present or missing, fit the 32
    // VIFs, and apart from them the 32 MIFs — a change that names yet another interface of a
    // family past its limit is refused, whatever the other family holds.
    if (configText(modelConfig(next)) !== configText(modelConfig(m))) {
      const over = FAMILIES.filter((f) => {
        const wanted = neededOf(next, f);
        const had = neededOf(m, f);
        return wanted.size > 32 && [...wanted].some((n) => !had.has(n));
      });
      if (over.length > 0) throw new Refused("E_VIF_LIMIT", over);
    }
  } catch (err) {
    if (err instanceof Refused) return { code: err.code, families: err.families };
    throw err;
  }
  return { next };
}

/** A transaction with its picks resolved against the state it starts from (a pick of nothing stays as generated). */
function resolvePicks(m: Model, tx: TxCmd): TxCmd {
  const pinned = [...m.vifs.keys()].sort();
  const resolve = (s: SubCmd): SubCmd => {
    if (s.k !== "vifDel" || s.pick === undefined || pinned.length === 0) return s;
    const key = pinned[s.pick % pinned.length] as string;
    return { k: "vifDel", ifname: keyIfname(key), family: keyFamily(key) };
  };
  return tx.k === "batch" ? { k: "batch", ops: tx.ops.map(resolve) } : tx.k === "apply" ? tx : resolve(tx);
}

/** The request the daemon would receive, parsed the daemon's way. */
function toOps(m: Model, tx: TxCmd): Op[] {
  const routePayload = (r: RouteSpec | Route): Record<string, unknown> => ({ source: r.source, group: r.group, iif: r.iif, oifs: r.oifs });
  const sub = (s: SubCmd): { action: string; payload: Record<string, unknown> } => {
    switch (s.k) {
      case "add": return { action: "ADD_MFC", payload: routePayload(s.route) };
      case "replace": return { action: "REPLACE_MFC", payload: routePayload(s.route) };
      case "del": return { action: "DEL_MFC", payload: { source: s.source, group: s.group } };
      // A MIF is sent as `mfc -6 vif add` does: with family 6 and no threshold.
      case "vifAdd": return { action: "ADD_VIF", payload: s.family === 6 ? { ifname: s.ifname, family: 6 } : { ifname: s.ifname, threshold: s.threshold } };
      case "vifDel": return { action: "DEL_VIF", payload: s.family === 6 ? { ifname: s.ifname, family: 6 } : { ifname: s.ifname } };
      case "flush": return { action: "FLUSH", payload: s.family === undefined ? {} : { family: s.family } };
      case "join": return { action: "JOIN", payload: { ifname: s.ifname, group: s.group, source: s.source } };
      case "leave": return { action: "LEAVE", payload: { ifname: s.ifname, group: s.group, source: s.source } };
    }
  };
  if (tx.k === "batch") return parseBatch({ operations: tx.ops.map(sub) });
  if (tx.k === "apply") {
    const want = applyState(m, tx);
    const state = { vifs: want.vifs, routes: want.routes.map(routePayload), joins: want.joins };
    return [parseOp("APPLY", want.family === undefined ? { state } : { family: want.family, state })];
  }
  const s = sub(tx);
  return [parseOp(s.action, s.payload)];
}

// ---------------------------------------------------------------------------------------------
// Invariants

function modelConfig(m: Model): Config {
  return { routes: m.routes, vifs: m.vifs, joins: m.joins };
}

/**
 * The kernel tables must be what the model implies, in interface terms (VIF and MIF numbers are
 * free): the VIF table for the IPv4 config, the MIF table for the IPv6 config, each entry's numbers
 * in its own family's table.
 */
function checkKernel(m: Model, kernel: FakeKernel, links: FakeLinks): void {
  const tableOf = (f: Family): Map<number, { ifindex: number; threshold: number }> => (f === 6 ? kernel.mifs : kernel.vifs);
  const threshold = (f: Family, n: string): number => m.vifs.get(vk(f, n))?.threshold ?? 1;
  for (const f of FAMILIES) {
    // One VIF (MIF) per needed interface of the family that exists, nothing else.
    const wantVifs = [...neededOf(m, f)].flatMap((n) => {
      const ifindex = links.indexOf(n);
      return ifindex === undefined ? [] : [`${n}#${ifindex}/${threshold(f, n)}`];
    }).sort();
    const table = tableOf(f);
    const haveVifs = [...table.values()].map((v) => `${links.nameOf(v.ifindex) ?? "?"}#${v.ifindex}/${v.threshold}`).sort();
    assert.deepEqual(haveVifs, wantVifs, `kernel ${tableName(f)}s`);
    for (const vifi of table.keys()) assert.ok(vifi >= 0 && vifi < 32, `${tableName(f)} ${vifi}`);
  }

  // MFC: installed iff the iif and at least one oif exist.
  const want = new Map<string, Route>();
  for (const r of m.routes.values()) {
    if (isTemplate(r.group)) continue; // its flows come from upcalls (daemon/flows.ts), not from the plan
    if (links.indexOf(r.iif) !== undefined && r.oifs.some((o) => links.indexOf(o.ifname) !== undefined)) want.set(`${r.source ?? anyOrigin(familyOf(r.group))},${r.group}`, r);
  }
  assert.deepEqual([...kernel.mfcs.keys()].sort(), [...want.keys()].sort(), "kernel MFC entries");
  for (const [key, e] of kernel.mfcs) {
    const r = want.get(key) as Route;
    const f = familyOf(r.group);
    const table = tableOf(f);
    const parent = table.get(e.parent);
    assert.ok(parent, `${key}: parent ${tableName(f)} ${e.parent} does not exist`);
    assert.equal(parent.ifindex, links.indexOf(r.iif), `${key}: parent ${tableName(f)} ${e.parent} is not iif ${r.iif}`);
    const got: string[] = [];
    e.ttls.forEach((t, v) => {
      if (t === 0) return;
      const vif = table.get(v);
      assert.ok(vif, `${key}: ttls[${v}]=${t} names a ${tableName(f)} that does not exist`);
      if (v === e.parent) {
        assert.equal(r.source, null, `${key}: an (S,G) entry must not list its iif as an oif`);
        assert.equal(t, 1, `${key}: (*,G) needs ttls[parent] = 1`);
        return;
      }
      got.push(`${links.nameOf(vif.ifindex) ?? `?${vif.ifindex}`}:${t}`);
    });
    // IPv6 too: the kernel's (*,G) entry holds its parent MIF in the set of oifs.
    if (r.source === null) assert.equal(e.ttls[e.parent], 1, `${key}: (*,G) without ttls[parent]`);
    const expected = r.oifs.filter((o) => links.indexOf(o.ifname) !== undefined)
      .map((o) => `${o.ifname}:${Math.max(o.ttl, threshold(f, o.ifname))}`);
    assert.deepEqual(got.sort(), expected.sort(), `${key}: oifs`);
  }
}

type Row = [number, number, number];

function tableText(vifs: Row[], mifs: Row[], mfcs: [string, number, readonly number[]][], masked: boolean): string {
  const exists = { 4: new Set(vifs.map(([vifi]) => vifi)), 6: new Set(mifs.map(([vifi]) => vifi)) };
  return JSON.stringify({
    vifs: vifs.map(([i, x, t]) => `${i}:${x}/${t}`).sort(),
    mifs: mifs.map(([i, x, t]) => `${i}:${x}/${t}`).sort(),
    mfcs: mfcs.map(([k, p, ttls]) => {
      // Masked: TTLs on VIF (MIF) numbers that do not exist are ignored (a stale entry, before the
      // reconcile that follows a link removal, may or may not still carry them).
      const live = exists[familyOf(k)];
      const t = ttls.map((x, v) => (masked && !live.has(v) ? 0 : x));
      while (t.length && t[t.length - 1] === 0) t.pop();
      return `${k} ${p} [${t.join(",")}]`;
    }).sort(),
  });
}

/** The engine's image minus VIFs and MIFs whose device is gone (the kernel dropped those by itself). */
function imageText(image: Image, links: FakeLinks, masked: boolean): string {
  const live = [...image.vifs.values()].filter((v) => links.nameOf(v.ifindex) !== undefined);
  const rows = (f: Family): Row[] => live.filter((v) => v.family === f).map((v) => [v.vifi, v.ifindex, v.threshold]);
  return tableText(
    rows(4), rows(6),
    [...image.mfcs.values()].map((e) => [`${e.source ?? anyOrigin(familyOf(e.group))},${e.group}`, e.parent, e.ttls]),
    masked,
  );
}

function kernelText(kernel: FakeKernel, masked: boolean): string {
  const d = kernel.dump();
  return tableText(d.vifs, d.mifs, d.mfcs, masked);
}

/** The families whose part of the configuration differs between two models. */
function familiesChanged(a: Model, b: Model): Family[] {
  const part = (m: Model, f: Family): string => JSON.stringify([
    [...m.routes].filter(([, r]) => familyOf(r.group) === f).sort(([x], [y]) => x.localeCompare(y)),
    [...m.vifs].filter(([key]) => keyFamily(key) === f).sort(([x], [y]) => x.localeCompare(y)),
    [...m.joins.keys()].filter((key) => familyOf(key.slice(key.indexOf(",") + 1)) === f).sort(),
  ]);
  return FAMILIES.filter((f) => part(a, f) !== part(b, f));
}

const EMPTY_MODEL: Model = { routes: new Map(), vifs: new Map(), joins: new Map() };

/** Whether `tx` (from `before` to `after`) removed a pinned MIF with a `vif del` of family 6. */
function unpinsMif(tx: TxCmd, before: Model, after: Model): boolean {
  return (tx.k === "batch" ? tx.ops : [tx]).some((s) => s.k === "vifDel" && s.family === 6 && before.vifs.has(vk(6, s.ifname)) && !after.vifs.has(vk(6, s.ifname)));
}

/** The family of a planned change (the plan of a dry run). */
const changeFamily = (c: Record<string, unknown>): Family =>
  (c.action === "add_vif" || c.action === "del_vif" ? (c.family === 6 ? 6 : 4) : familyOf(c.group as string));

// ---------------------------------------------------------------------------------------------
// The runner

/** How often the interesting situations came up (printed, and required to come up). */
const seen = {
  retriedAfterFailedGroup: 0, templates: 0, joinsHeld: 0, joinsWaiting: 0, groups: 0, failedGroups: 0, woken: 0, restarts: 0, legacy: 0, vifLimit: 0, waitingForVif: 0, refusedVif: 0,
  // IPv6 (SPEC §7)
  /** Committed transactions that changed the config of both families. */
  mixedCommitted: 0,
  /** Transactions changing both families that an injected kernel or save fault rolled back. */
  mixedRolledBack: 0,
  /** Groups (bursts) whose changes, together, touched both families. */
  mixedGroups: 0,
  /** Kernel faults injected at a step of the IPv6 table (MIF, MRT6 entry) or an IPv6 membership. */
  ipv6StepFault: 0,
  /** Changes refused with E_VIF_LIMIT for the MIF table. */
  mifLimit: 0,
  /** Checks with an interface waiting for a MIF (MIF limit). */
  waitingForMif: 0,
  /** Restarts from a state past the MIF limit. */
  legacy6: 0,
  /** Verified kernel states holding more than 32 VIFs and MIFs together (each table within its 32). */
  over32Together: 0,
  /** Verified kernel states with an IPv6 (*,G) entry. */
  anySource6: 0,
  /** Checks with an IPv6 template configured, and with an IPv6 membership held. */
  templates6: 0, joins6Held: 0,
  /** Committed `vif del` of a pinned MIF (DEL_VIF with family 6). */
  mifUnpinned: 0,
  /** Committed FLUSHes of one family that left the other family's config in place. */
  familyFlush: 0,
  /** Committed APPLYs of one family (`-6 apply`) that changed it and left the other family's config in place. */
  familyApply: 0,
};

class World {
  links = new FakeLinks([...IFACES, ...WIDE]);
  sim = new SimFs();
  fs = new FaultyFs(this.sim);
  store = new FileStateStore(STATE, this.fs);
  kernel = new FakeKernel(this.links);
  /** The engine asked for a reconcile (a freed VIF can take a waiting interface), as the daemon does. */
  woken = false;
  engine = this.newEngine();
  model: Model = { routes: new Map(), vifs: new Map(), joins: new Map() };
  /** A link changed and nothing has brought the kernel in line yet. */
  dirty = false;
  /**
   * A device appeared (created, or renamed to a name the config uses) and no reconcile ran since:
   * a transaction leaves interfaces that were waiting alone (the daemon reconciles on the link
   * event), so until then the kernel may lack their VIFs. Only a reconcile or restart clears it.
   */
  appeared = false;
  /** The kernel refuses an interface, or did and no reconcile has retried since. */
  refusals = false;
  readonly log: string[] = [];

  exists = (n: string): boolean => this.links.indexOf(n) !== undefined;

  private newEngine(): Engine {
    return new Engine(this.kernel, this.links, this.store, () => undefined, () => { this.woken = true; });
  }

  private calls(): number {
    return [...this.fs.counts.values()].reduce((a, b) => a + b, 0);
  }

  async step(cmd: Cmd): Promise<void> {
    switch (cmd.k) {
      case "legacy": {
        const key = keyOf(cmd.route.source, cmd.route.group);
        if (this.model.routes.has(key)) return;
        this.model.routes.set(key, toRoute(cmd.route));
        const json = JSON.stringify(configToJson(modelConfig(this.model), 1_000_000 + this.model.routes.size));
        this.sim = new SimFs(new Map([[STATE, Buffer.from(json + "\n")]]));
        this.fs = new FaultyFs(this.sim);
        seen.legacy++;
        if (familyOf(cmd.route.group) === 6) seen.legacy6++;
        return this.step({ k: "restart" });
      }
      case "restart": {
        seen.restarts++;
        this.kernel.close(); // what the kernel does when the daemon's socket closes
        const refused = this.kernel.refusedIfindexes;
        this.kernel = new FakeKernel(this.links);
        for (const i of refused) this.kernel.refusedIfindexes.add(i);
        this.store = new FileStateStore(STATE, this.fs);
        this.engine = this.newEngine();
        await this.engine.restore(); // must never refuse what was acknowledged
        this.dirty = false;
        this.appeared = false;
        this.refusals = refused.size > 0;
        return;
      }
      case "linkDown": {
        const ifindex = this.links.indexOf(cmd.ifname);
        if (ifindex === undefined) return;
        this.links.remove(cmd.ifname);
        this.kernel.dropVifOfIfindex(ifindex);
        this.dirty = true;
        if (cmd.reconcile) await this.reconcile();
        return;
      }
      case "linkUp": {
        if (this.exists(cmd.ifname)) return;
        this.links.add(cmd.ifname); // a new ifindex, like a re-created device
        this.dirty = true;
        this.appeared = true;
        if (cmd.reconcile) await this.reconcile();
        return;
      }
      case "rename": {
        // `ip link set X name Xr` (and back): the device and its VIF stay, the name the config uses goes.
        const [from, to] = this.exists(cmd.ifname) ? [cmd.ifname, `${cmd.ifname}r`] : [`${cmd.ifname}r`, cmd.ifname];
        const ifindex = this.links.indexOf(from);
        if (ifindex === undefined || this.exists(to)) return;
        this.links.remove(from);
        this.links.set(to, ifindex);
        this.dirty = true;
        this.appeared = true;
        if (cmd.reconcile) await this.reconcile();
        return;
      }
      case "refuse":
      case "allow": {
        const ifindex = this.links.indexOf(cmd.ifname);
        if (ifindex === undefined) return;
        if (cmd.k === "refuse") this.kernel.refusedIfindexes.add(ifindex);
        else this.kernel.refusedIfindexes.delete(ifindex);
        this.refusals = true;
        if (cmd.reconcile) await this.reconcile();
        return;
      }
      case "reconcile":
        await this.reconcile();
        return;
      case "tx":
        await this.tx(cmd.tx, cmd.fault);
        return;
      case "burst":
        await this.burst(cmd.txs, cmd.failSave);
        return;
    }
  }

  private async reconcile(): Promise<void> {
    await this.engine.reconcile();
    this.dirty = false;
    this.appeared = false;
    this.refusals = this.kernel.refusedIfindexes.size > 0;
  }

  private async tx(generated: TxCmd, fault: Fault): Promise<void> {
    const tx = resolvePicks(this.model, generated);
    const expected = modelTx(this.model, tx, this.exists);
    const ops = toOps(this.model, tx);

    // Dry run first: same verdict, no kernel call, nothing saved.
    const calls0 = this.kernel.calls;
    const saves0 = this.calls();
    let planned: Record<string, unknown>[] = [];
    try {
      planned = (await this.engine.transact(ops, true)).changes;
      assert.ok(!("code" in expected), `dry run succeeded, expected ${"code" in expected ? expected.code : ""}`);
    } catch (err) {
      if (!(err instanceof MfcError)) throw err;
      assert.equal(err.code, "code" in expected ? expected.code : "(success)", `dry run: ${err.message}`);
    }
    assert.equal(this.kernel.calls, calls0, "a dry run called the kernel");
    assert.equal(this.calls(), saves0, "a dry run saved");
    const n = planned.length;

    this.kernel.resetCalls();
    // A transaction that changes nothing writes nothing, so a save fault cannot reach it.
    const noop = !("code" in expected) && configText(modelConfig(expected.next)) === configText(modelConfig(this.model));
    const saves1 = this.calls();
    let expectFault: string | undefined;
    if (noop) {
      // nothing to fail
    } else if (fault.mode === "once" || fault.mode === "persistent") {
      if (n > 0) {
        this.kernel.failAt({ at: 1 + (fault.pick % n), persistent: fault.mode === "persistent" });
        expectFault = "E_KERNEL";
        if (changeFamily(planned[fault.pick % n] as Record<string, unknown>) === 6) seen.ipv6StepFault++;
      }
    } else if (fault.mode === "save") {
      this.failNextSave();
      expectFault = "E_STATE_WRITE";
    } else if (fault.mode === "saveThenUndoOnce") {
      this.failNextSave();
      if (n > 0) this.kernel.failAt({ at: n + 1 + (fault.pick % n) });
      expectFault = "E_STATE_WRITE";
    }
    let code: string | undefined;
    let details: Record<string, unknown> | undefined;
    try {
      await this.engine.transact(ops, false);
    } catch (err) {
      if (!(err instanceof MfcError)) throw err;
      code = err.code;
      details = err.details;
    } finally {
      this.kernel.clearFaults();
      this.fs.fault = undefined;
    }
    if ("code" in expected) {
      if (expected.code === "E_VIF_LIMIT") seen.vifLimit++;
      assert.equal(code, expected.code, "error code");
      assert.equal(this.kernel.calls, 0, "a refused request called the kernel");
      if (expected.code === "E_VIF_LIMIT" && expected.families.length === 1) {
        // The error names the table that is full: details.family 6 for the MIFs, none for the VIFs.
        assert.equal(details?.family, expected.families[0] === 6 ? 6 : undefined, `E_VIF_LIMIT of the ${tableName(expected.families[0] as Family)}s: ${JSON.stringify(details)}`);
      }
      if (expected.families.includes(6)) seen.mifLimit++;
      return;
    }
    // A change that needs a VIF the kernel refuses fails as a whole, like any kernel error.
    if (code === "E_KERNEL" && this.kernel.refusedIfindexes.size > 0) expectFault = "E_KERNEL";
    assert.equal(code, expectFault, "outcome");
    if (noop) assert.equal(this.calls(), saves1, "a transaction that changes nothing was saved");
    if (this.woken) {
      this.woken = false;
      seen.woken++;
      await this.reconcile();
    }
    const families = familiesChanged(this.model, expected.next);
    if (families.length === 2) {
      if (code === undefined) seen.mixedCommitted++;
      else if (expectFault !== undefined) seen.mixedRolledBack++;
    }
    // `flush -4`/`flush -6` (alone or in a batch) that left the other family's config in place.
    const flushed = (tx.k === "batch" ? tx.ops : [tx]).flatMap((s) => (s.k === "flush" && s.family !== undefined ? [s.family] : []));
    const other = (fs: Family[]): boolean => FAMILIES.some((f) => !fs.includes(f) && familiesChanged(expected.next, EMPTY_MODEL).includes(f));
    if (code === undefined && flushed.length > 0 && other(flushed)) seen.familyFlush++;
    if (code === undefined && unpinsMif(tx, this.model, expected.next)) seen.mifUnpinned++;
    if (code === undefined && tx.k === "apply" && tx.family !== undefined && other([tx.family]) && families.length > 0) seen.familyApply++;
    if (code === undefined) {
      this.model = expected.next;
      // A transaction that changes nothing plans nothing: a link change it saw is still unreconciled.
      if (!noop) this.dirty = false;
    } else if (this.engine.degraded !== undefined) {
      // The undo failed and so did the resync: only a reconcile can bring the table back.
      await this.reconcile();
    }
  }

  /**
   * Sends every transaction at once (they reach the engine before it starts on the first, so they
   * form one group): each gets the verdict it would get alone, in order, on the state the ones
   * before it left — unless the group's one save fails, and then every change in it fails with
   * E_STATE_WRITE and nothing of the group remains (kernel, memory, file).
   */
  private async burst(txs: TxCmd[], failSave: boolean): Promise<void> {
    // A refused VIF turns a change into E_KERNEL, which the model does not predict per transaction.
    if (this.kernel.refusedIfindexes.size > 0) return;
    let m = this.model;
    /** `limit`: for E_VIF_LIMIT, the families past their limit. */
    const plan: { tx: TxCmd; concrete?: ReturnType<typeof applyState>; ops: Op[]; expected: string; changes: boolean; limit: Family[]; unpinsMif: boolean }[] = [];
    for (const generated of txs) {
      const tx = resolvePicks(m, generated);
      const ex = modelTx(m, tx, this.exists);
      const changes = !("code" in ex) && configText(modelConfig(ex.next)) !== configText(modelConfig(m));
      plan.push({
        tx, concrete: tx.k === "apply" ? applyState(m, tx) : undefined, ops: toOps(m, tx), expected: "code" in ex ? ex.code : "ok", changes,
        limit: "code" in ex ? ex.families : [], unpinsMif: !("code" in ex) && unpinsMif(tx, m, ex.next),
      });
      if (!("code" in ex)) m = ex.next;
    }
    const anyChange = plan.some((p) => p.changes);
    /** The model after the whole group, if its save works. */
    const planned = m;
    if (failSave) this.failNextSave();
    this.kernel.resetCalls();
    const writes0 = this.fs.counts.get("write") ?? 0;
    let codes: string[];
    const details: (Record<string, unknown> | undefined)[] = [];
    try {
      codes = await Promise.all(plan.map((p, i) => this.engine.transact(p.ops, false).then(() => "ok", (err: unknown) => {
        if (!(err instanceof MfcError)) throw err;
        details[i] = err.details;
        return err.code;
      })));
    } finally {
      this.fs.fault = undefined;
    }
    const failed = failSave && anyChange;
    const expected = plan.map((p) => (failed && p.changes ? "E_STATE_WRITE" : p.expected));
    let retried = false;
    if (failed) {
      // The changes are undone; what was decided on top of them (no-ops, refusals after the first
      // change) is planned again on the state before the burst, as one more group that is saved.
      const first = plan.findIndex((p) => p.changes);
      m = this.model;
      plan.forEach((p, i) => {
        if (i < first || p.changes) return;
        const ex = modelTx(m, p.tx, this.exists, p.concrete);
        expected[i] = "code" in ex ? ex.code : "ok";
        p.limit = "code" in ex ? ex.families : [];
        if ("code" in ex) return;
        if (configText(modelConfig(ex.next)) !== configText(modelConfig(m))) retried = true;
        m = ex.next;
      });
      if (retried) seen.retriedAfterFailedGroup++;
    }
    assert.deepEqual(codes, expected, "verdicts of the group");
    plan.forEach((p, i) => {
      if (expected[i] === "ok" && p.changes && p.unpinsMif) seen.mifUnpinned++;
      if (expected[i] !== "E_VIF_LIMIT") return;
      seen.vifLimit++;
      if (p.limit.includes(6)) seen.mifLimit++;
      if (p.limit.length === 1) assert.equal(details[i]?.family, p.limit[0] === 6 ? 6 : undefined, `transaction ${i}: E_VIF_LIMIT of the ${tableName(p.limit[0] as Family)}s`);
    });
    if (anyChange) seen.groups++;
    if (failed) seen.failedGroups++;
    if (anyChange && familiesChanged(this.model, planned).length === 2) seen.mixedGroups++;
    // One group, one save: one write(2) of a journal record or of a snapshot for all of it (and one
    // more for what a failed group's save sent back to be planned again).
    assert.equal((this.fs.counts.get("write") ?? 0) - writes0, anyChange ? 1 + Number(retried) : 0, "the group was not saved exactly once");
    this.model = m;
    // A failed group changed nothing: a link change it saw is still unreconciled.
    if (anyChange && !failed) this.dirty = false;
    if (this.woken) {
      this.woken = false;
      seen.woken++;
      await this.reconcile();
    }
  }

  /** The next save fails at its first write (the journal's or the temp snapshot's). */
  private failNextSave(): void {
    this.fs.fault = { call: "write", nth: (this.fs.counts.get("write") ?? 0) + 1, forGood: false, errno: "ENOSPC" };
  }

  async check(): Promise<void> {
    const { config, image } = this.engine.snapshot();
    assert.equal(configText(config), configText(modelConfig(this.model)), "engine config != model");
    assert.equal(await loadText(this.sim.files()), configText(modelConfig(this.model)), "saved config != model");
    assert.equal(imageText(image, this.links, this.dirty), kernelText(this.kernel, this.dirty), "engine image != kernel");
    // Best effort, never silent: what is not installed says why.
    for (const [key, r] of config.routes) {
      if (!image.mfcs.has(key) && !isTemplate(r.group)) assert.ok(pendingReason(key, r, image), `${key}: not installed, and no reason given`);
    }
    for (const r of config.routes.values()) {
      const f = familyOf(r.group);
      for (const n of [r.iif, ...r.oifs.map((o) => o.ifname)]) {
        const key = vk(f, n);
        if (!image.vifs.has(key)) assert.ok(image.waiting?.has(key) || this.dirty, `${key}: no ${tableName(f)}, and no reason given`);
      }
    }
    for (const [key, v] of image.vifs) assert.equal(`${v.family}:${vk(v.family, v.ifname)}`, `${keyFamily(key)}:${key}`, `image: ${tableName(v.family)} under key ${key}`);
    for (const [key, why] of image.waiting ?? []) {
      if (why.startsWith("VIF limit")) seen.waitingForVif++;
      if (why.startsWith("MIF limit")) seen.waitingForMif++;
      // A full table holds back only interfaces of its own family.
      if (why.startsWith("VIF limit") || why.startsWith("MIF limit")) assert.equal(why.startsWith("MIF"), keyFamily(key) === 6, `${key} waits: ${why}`);
      if (why.startsWith("kernel refused")) seen.refusedVif++;
    }
    // Past a table's 32 (a legacy state) what gets a VIF is the engine's choice: checked above only.
    if (!this.dirty && !this.appeared && !this.refusals && FAMILIES.every((f) => neededOf(this.model, f).size <= 32)) {
      checkKernel(this.model, this.kernel, this.links);
      if (this.kernel.vifs.size + this.kernel.mifs.size > 32) seen.over32Together++;
      if ([...this.kernel.mfcs.keys()].some((k) => k.startsWith("::,"))) seen.anySource6++;
    }
    // Memberships: the kernel holds exactly the image's (on devices that still exist), and, once
    // link changes are reconciled, exactly the model's joins whose interface exists.
    const held = [...this.kernel.memberships].sort();
    const imageJoins = [...(image.joins?.values() ?? [])].filter((j) => this.links.nameOf(j.ifindex) !== undefined)
      .map((j) => `${j.ifindex}/${j.group}/${j.source ?? "*"}`).sort();
    assert.deepEqual(held, imageJoins, "kernel memberships != engine image");
    if (!this.dirty) {
      const want = [...this.model.joins.values()].flatMap((j) => {
        const ifindex = this.links.indexOf(j.ifname);
        return ifindex === undefined ? [] : [`${ifindex}/${j.group}/${j.source ?? "*"}`];
      }).sort();
      assert.deepEqual(held, want, "kernel memberships != model joins");
    }
    for (const key of config.joins.keys()) {
      if (!image.joins?.has(key)) assert.ok(image.joinsWaiting?.has(key), `join ${key}: not held, and no reason given`);
    }
    if (held.length > 0) seen.joinsHeld++;
    if (held.some((j) => j.includes(":"))) seen.joins6Held++;
    if ([...config.routes.values()].some((r) => isTemplate(r.group))) seen.templates++;
    if ([...config.routes.values()].some((r) => r.group === TEMPLATE6)) seen.templates6++;
    // The engine's template index (kept in O(change) for the flows) = the templates of the config.
    assert.deepEqual([...this.engine.templates()].sort(), [...config.routes].filter(([, r]) => isTemplate(r.group)).map(([k]) => k).sort(), "template index");
    if ((image.joinsWaiting?.size ?? 0) > 0) seen.joinsWaiting++;
  }
}

void test(`engine agrees with the model (seed ${SEED}, ${RUNS} runs)`, async (t) => {
  let steps = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 30 }), async (cmds) => {
      const w = new World();
      for (const [i, cmd] of cmds.entries()) {
        try {
          await w.step(cmd);
          await w.check();
          steps++;
        } catch (err) {
          const e = err as Error;
          e.message = `step ${i} ${JSON.stringify(cmd)}: ${e.message}`;
          throw e;
        }
      }
    }),
    { seed: SEED, numRuns: RUNS, includeErrorInReport: true },
  );
  assert.ok(steps > RUNS * 5, `only ${steps} steps ran`);
  t.diagnostic(`${RUNS} runs, ${steps} steps: ${seen.templates} checks with a template configured, ${seen.joinsHeld} checks with memberships held (${seen.joinsWaiting} with a join waiting), ${seen.groups} group commits (${seen.failedGroups} whose shared save failed, ${seen.retriedAfterFailedGroup} of them with a transaction planned again that then changed something), ${seen.woken} reconciles the engine asked for after freeing a VIF, ${seen.restarts} restarts (${seen.legacy} from a state past the VIF limit), ${seen.vifLimit} changes refused with E_VIF_LIMIT, ${seen.waitingForVif} checks with an interface waiting for a VIF, ${seen.refusedVif} with one refused by the kernel`);
  // A join waits only when a link removal hits a joined interface and a reconcile follows: the
  // default seed gets there (7 times); other seeds print how often they did.
  if (SEED === DEFAULT_SEED) assert.ok(seen.joinsWaiting > 0, "a join waited for its interface");
  assert.ok(seen.templates > 0 && seen.joinsHeld > 0 && seen.groups > 0 && seen.failedGroups > 0 && seen.legacy > 0 && seen.vifLimit > 0 && seen.waitingForVif > 0 && seen.refusedVif > 0, "every situation came up");
  const ipv6 = {
    mixedCommitted: seen.mixedCommitted, mixedRolledBack: seen.mixedRolledBack, mixedGroups: seen.mixedGroups, ipv6StepFault: seen.ipv6StepFault,
    mifLimit: seen.mifLimit, waitingForMif: seen.waitingForMif, legacy6: seen.legacy6, over32Together: seen.over32Together,
    anySource6: seen.anySource6, templates6: seen.templates6, joins6Held: seen.joins6Held, familyFlush: seen.familyFlush, familyApply: seen.familyApply, mifUnpinned: seen.mifUnpinned,
  };
  t.diagnostic(`IPv6: ${JSON.stringify(ipv6)}`);
  // The rarer ones (a few per 200 runs) are required of the default seed; other seeds print them.
  const rare = new Set(["mixedRolledBack", "familyApply", "over32Together", "mifUnpinned"]);
  const missing = Object.entries(ipv6).filter(([name, count]) => count === 0 && (SEED === DEFAULT_SEED || !rare.has(name))).map(([name]) => name);
  assert.deepEqual(missing, [], "every IPv6 situation came up");
});
