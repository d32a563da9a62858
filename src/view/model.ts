/**
 * The one view model of `show`: built by the daemon (SHOW result), printed by the CLI as JSON
 * as-is, or as text by render.ts. Field names are SPEC §4's.
 */
import type { Image } from "../engine/image.js";
import { originOf } from "../engine/image.js";
import { pendingReason } from "../engine/realize.js";
import type { SgCounters, VifCounters } from "../kernel/port.js";
import { familyOf, type Family } from "../model/family.js";
import {
  neededInterfaces, routeFamily, routeKey, vifKey, vifKeyFamily, vifKeyIfname, type Config, type Oif, type Route,
} from "../model/types.js";
import { isGroupRange, parseIpv4 } from "../model/ipv4.js";
import { parseIpv6 } from "../model/ipv6.js";

const sum = <T>(xs: readonly T[], f: (x: T) => number): number => xs.reduce((acc, x) => acc + f(x), 0);

/** A VIF (family 4) or a MIF (family 6): `vifi` is its number in its family's table. */
export interface VifView {
  family: Family; vifi: number | null; ifname: string; ifindex: number | null; threshold: number; pinned: boolean;
  pkts_in: number; bytes_in: number; pkts_out: number; bytes_out: number;
}

/** A flow a template installed (SPEC §7): an (S, G) kernel entry of its own. */
export interface FlowView { source: string; group: string; packets: number; bytes: number }

export interface RouteView {
  source: string | null; group: string; iif: string; oifs: Oif[];
  packets: number; bytes: number; wrong_if: number;
  state: "installed" | "pending"; reason?: string;
  /** Templates only (a group range): the flows it installed; the counters above are their sums. */
  flows?: FlowView[];
}

/** A join (SPEC §7): `installed` = the membership is held now; `pending` with the reason. */
export interface JoinView { ifname: string; group: string; source: string | null; state: "installed" | "pending"; reason?: string }

export interface ShowView { vifs: VifView[]; joins: JoinView[]; routes: RouteView[] }

export interface CounterSource {
  sgCounters(origin: string, group: string): SgCounters | undefined;
  vifCounters(family: Family, vifi: number): VifCounters | undefined;
  /** The flows a template (by route key) installed; absent: none. */
  flowsOf?(templateKey: string): FlowView[];
}

/**
 * Sort keys of addresses, or of ranges by their first address (a template sorts with its groups):
 * IPv4 by value (below 2^32), then IPv6 by rank among the IPv6 addresses given (2^32 + rank), so
 * the keys stay exact doubles.
 */
function ipKeys(addresses: readonly (string | null)[]): Float64Array {
  const keys = new Float64Array(addresses.length);
  const v6: string[] = [];
  addresses.forEach((a, i) => {
    if (a === null) keys[i] = -1;
    else if (familyOf(a) === 4) keys[i] = parseIpv4(a.split("/")[0] as string) ?? 0;
    else v6.push(a);
  });
  if (v6.length === 0) return keys;
  const hex = (a: string): string => Array.from(parseIpv6(a.split("/")[0] as string) ?? [], (b) => b.toString(16).padStart(2, "0")).join("");
  const ranked = [...new Set(v6)].map((a) => [a, hex(a)] as const).sort((x, y) => (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
  const rank = new Map(ranked.map(([a], r) => [a, 2 ** 32 + r]));
  addresses.forEach((a, i) => {
    if (a !== null && familyOf(a) === 6) keys[i] = rank.get(a) as number;
  });
  return keys;
}

export type ShowWhat = "all" | "routes" | "vifs" | "joins";

/**
 * What one SHOW lists, taken at one instant: the VIF rows (counters included: at most a few dozen
 * ioctls) and the routes in display order with their state. Taking it costs one pass over the
 * routes and a sort; it keeps ~10 bytes per route (a reference to each Route, which a commit
 * replaces but never edits, and a state byte), so an answer can be written in pieces while
 * transactions commit in between: the rows stay those of this instant. Route counters are not
 * part of it: routeViews() reads them when a piece is made (see there).
 */
export class ShowSnapshot {
  private constructor(
    /** undefined: not asked for (what = "routes"). */
    readonly vifs: VifView[] | undefined,
    /** Sorted by group, then source; undefined: not asked for (what = "vifs"). */
    private readonly routes: Route[] | undefined,
    /** Per route: 1 when it has a kernel entry. */
    private readonly installed: Uint8Array,
    /** Per route: why it is pending or partial; undefined when no route has a reason. */
    private readonly reasons: (string | undefined)[] | undefined,
    /** undefined: not asked for. */
    readonly joins: JoinView[] | undefined,
  ) {}

  /** `family`: only that family's rows (`mfc -4`/`-6`); undefined: both. */
  static take(config: Config, image: Image, counters: CounterSource, what: ShowWhat, family?: Family): ShowSnapshot {
    const vifs = what === "all" || what === "vifs" ? vifViews(config, image, counters, family) : undefined;
    const joins = what === "all" || what === "joins" ? joinViews(config, image, family) : undefined;
    if (what === "vifs" || what === "joins") return new ShowSnapshot(vifs, undefined, new Uint8Array(0), undefined, joins);
    let n = config.routes.size;
    if (family !== undefined) {
      n = 0;
      for (const r of config.routes.values()) if (routeFamily(r) === family) n++;
    }
    const routes: Route[] = new Array<Route>(n);
    const installed = new Uint8Array(n);
    let reasons: (string | undefined)[] | undefined;
    /** One string per distinct reason: a table whose routes all wait on one interface holds it once. */
    const pool = new Map<string, string>();
    let i = 0;
    for (const [key, r] of config.routes) {
      if (family !== undefined && routeFamily(r) !== family) continue;
      routes[i] = r;
      // A template is ready to take flows once its iif has a VIF (it has no entry of its own).
      installed[i] = image.mfcs.has(key) || (isGroupRange(r.group) && image.vifs.has(vifKey(routeFamily(r), r.iif))) ? 1 : 0;
      const reason = mayHaveReason(key, r, image) ? pendingReason(key, r, image) : undefined;
      if (reason !== undefined) {
        let shared = pool.get(reason);
        if (shared === undefined) pool.set(reason, shared = reason);
        (reasons ??= new Array<string | undefined>(n))[i] = shared;
      }
      i++;
    }
    const order = displayOrder(ipKeys(routes.map((r) => r.group)), ipKeys(routes.map((r) => r.source)));
    const sorted = order.map((k) => routes[k] as Route);
    const sortedInstalled = new Uint8Array(n);
    let sortedReasons: (string | undefined)[] | undefined;
    order.forEach((k, j) => {
      sortedInstalled[j] = installed[k] as number;
      if (reasons?.[k] !== undefined) (sortedReasons ??= new Array<string | undefined>(n))[j] = reasons[k];
    });
    return new ShowSnapshot(vifs, sorted, sortedInstalled, sortedReasons, joins);
  }

  /** Number of route rows; undefined when routes were not asked for. */
  get routeCount(): number | undefined {
    return this.routes?.length;
  }

  /**
   * Route rows [from, to) with their counters, read now (SIOCGETSGCNT per installed route).
   * Counters are a moving sample anyway; read per piece they are at most one answer's duration
   * apart, as they were when the whole answer was built in one go. A route that a later commit
   * removed from the kernel reads as 0 with the state of the snapshot.
   */
  routeViews(from: number, to: number, counters: CounterSource): RouteView[] {
    const out: RouteView[] = [];
    const routes = this.routes ?? [];
    for (let i = from; i < to && i < routes.length; i++) {
      const r = routes[i] as Route;
      const on = this.installed[i] === 1;
      const flows = isGroupRange(r.group) ? counters.flowsOf?.(routeKey(r.source, r.group)) ?? [] : undefined;
      const c = flows ? { packets: sum(flows, (f) => f.packets), bytes: sum(flows, (f) => f.bytes), wrongIf: 0 } : on ? counters.sgCounters(originOf(r), r.group) : undefined;
      const view: RouteView = {
        source: r.source, group: r.group, iif: r.iif, oifs: r.oifs.map((o) => ({ ifname: o.ifname, ttl: o.ttl })),
        packets: c?.packets ?? 0, bytes: c?.bytes ?? 0, wrong_if: c?.wrongIf ?? 0,
        state: on ? "installed" : "pending",
      };
      const reason = this.reasons?.[i];
      if (reason !== undefined) view.reason = reason;
      if (flows) view.flows = flows;
      out.push(view);
    }
    return out;
  }
}

/** A sort key group * SLOTS + index is exact in a double (groups are below 2^32, 2^52 < 2^53). */
const SLOTS = 2 ** 20;

/**
 * Route indices by group, then source. Typed-array sort of numbers is native, several times faster
 * than a comparator over 100 000 indices; only routes that share a group are then ordered by source.
 */
function displayOrder(groups: Float64Array, sources: Float64Array): number[] {
  const n = groups.length;
  const bySource = (a: number, b: number): number => (sources[a] as number) - (sources[b] as number);
  if (n >= SLOTS) {
    return Array.from({ length: n }, (_, k) => k).sort((a, b) => (groups[a] as number) - (groups[b] as number) || bySource(a, b));
  }
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = (groups[i] as number) * SLOTS + i;
  keys.sort();
  const order = new Array<number>(n);
  for (let j = 0; j < n; j++) order[j] = (keys[j] as number) % SLOTS;
  for (let a = 0, b = 1; a < n; a = b, b = a + 1) {
    const g = groups[order[a] as number];
    while (b < n && groups[order[b] as number] === g) b++;
    if (b - a < 2) continue;
    const run = order.slice(a, b).sort(bySource);
    for (let k = 0; k < run.length; k++) order[a + k] = run[k] as number;
  }
  return order;
}

/**
 * Whether pendingReason() can have something to say: the route was refused or names an interface
 * without a VIF. The common installed route is decided here without allocating.
 */
function mayHaveReason(key: string, r: Route, image: Image): boolean {
  const f = routeFamily(r);
  if (image.refusedRoutes?.has(key) === true || !image.vifs.has(vifKey(f, r.iif))) return true;
  for (const o of r.oifs) if (!image.vifs.has(vifKey(f, o.ifname))) return true;
  return false;
}

/** The whole view at once (tests, and anything small); the daemon writes SHOW in pieces (show_json.ts). */
export function buildShowView(config: Config, image: Image, counters: CounterSource, what: ShowWhat, family?: Family): Partial<ShowView> {
  const snap = ShowSnapshot.take(config, image, counters, what, family);
  const view: Partial<ShowView> = {};
  if (snap.vifs) view.vifs = snap.vifs;
  if (snap.joins) view.joins = snap.joins;
  const n = snap.routeCount;
  if (n !== undefined) view.routes = snap.routeViews(0, n, counters);
  return view;
}

/** Joins by interface, group, source; few enough to take whole. */
function joinViews(config: Config, image: Image, family: Family | undefined): JoinView[] {
  const out: JoinView[] = [];
  for (const [key, j] of config.joins) {
    if (family !== undefined && familyOf(j.group) !== family) continue;
    const view: JoinView = { ifname: j.ifname, group: j.group, source: j.source, state: image.joins?.has(key) === true ? "installed" : "pending" };
    const why = image.joinsWaiting?.get(key);
    if (view.state === "pending") view.reason = why ?? "not joined yet";
    out.push(view);
  }
  const groups = ipKeys(out.map((j) => j.group));
  const sources = ipKeys(out.map((j) => j.source));
  const order = out.map((_, i) => i).sort((a, b) => (out[a] as JoinView).ifname.localeCompare((out[b] as JoinView).ifname) ||
    (groups[a] as number) - (groups[b] as number) || (sources[a] as number) - (sources[b] as number));
  return order.map((i) => out[i] as JoinView);
}

function vifViews(config: Config, image: Image, counters: CounterSource, family: Family | undefined): VifView[] {
  const out: VifView[] = [];
  for (const key of neededInterfaces(config)) {
    const f = vifKeyFamily(key);
    if (family !== undefined && f !== family) continue;
    const v = image.vifs.get(key);
    const c = v ? counters.vifCounters(f, v.vifi) : undefined;
    out.push({
      family: f, vifi: v?.vifi ?? null, ifname: vifKeyIfname(key), ifindex: v?.ifindex ?? null,
      threshold: config.vifs.get(key)?.threshold ?? v?.threshold ?? 1, pinned: config.vifs.has(key),
      pkts_in: c?.pktsIn ?? 0, bytes_in: c?.bytesIn ?? 0, pkts_out: c?.pktsOut ?? 0, bytes_out: c?.bytesOut ?? 0,
    });
  }
  // VIFs, then MIFs; installed ones by number, then the missing ones by name.
  return out.sort((a, b) => a.family - b.family || (a.vifi ?? 99) - (b.vifi ?? 99) || a.ifname.localeCompare(b.ifname));
}

export interface ShowStats {
  /** `installed` counts the `partial` routes too (installed, some oifs without a VIF). */
  routes: number; installed: number; partial: number; pending: number;
  packets: number; bytes: number; wrong_if: number;
  /** VIFs (IPv4) and MIFs (IPv6) installed, each of its own limit `vif_limit`. */
  vifs: number; mifs: number; vif_limit: number;
  busiest: { source: string | null; group: string; packets: number; bytes: number }[];
}

/** Totals of a SHOW view (`mfc show stats`), in the spirit of `ip -s`. Pure. */
export function summarizeShow(view: Partial<ShowView>, top = 5): ShowStats {
  const routes = view.routes ?? [];
  const sum = (f: (r: RouteView) => number): number => routes.reduce((acc, r) => acc + f(r), 0);
  const installed = routes.filter((r) => r.state === "installed").length;
  return {
    routes: routes.length, installed, partial: routes.filter((r) => r.state === "installed" && r.reason !== undefined).length,
    pending: routes.length - installed,
    packets: sum((r) => r.packets), bytes: sum((r) => r.bytes), wrong_if: sum((r) => r.wrong_if),
    vifs: (view.vifs ?? []).filter((v) => v.vifi !== null && v.family !== 6).length,
    mifs: (view.vifs ?? []).filter((v) => v.vifi !== null && v.family === 6).length, vif_limit: 32,
    busiest: [...routes].sort((a, b) => b.packets - a.packets).slice(0, top).filter((r) => r.packets > 0)
      .map((r) => ({ source: r.source, group: r.group, packets: r.packets, bytes: r.bytes })),
  };
}
