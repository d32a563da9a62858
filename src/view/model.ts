/**
 * The one view model of `show`: built by the daemon (SHOW result), printed by the CLI as JSON
 * as-is, or as text by render.ts. Field names are SPEC §4's.
 */
import type { Image } from "../engine/image.js";
import { originOf } from "../engine/image.js";
import { pendingReason } from "../engine/realize.js";
import type { SgCounters, VifCounters } from "../kernel/port.js";
import { neededInterfaces, type Config, type Oif } from "../model/types.js";
import { parseIpv4 } from "../model/ipv4.js";

export interface VifView {
  vifi: number | null; ifname: string; ifindex: number | null; threshold: number; pinned: boolean;
  pkts_in: number; bytes_in: number; pkts_out: number; bytes_out: number;
}

export interface RouteView {
  source: string | null; group: string; iif: string; oifs: Oif[];
  packets: number; bytes: number; wrong_if: number;
  state: "installed" | "pending"; reason?: string;
}

export interface ShowView { vifs: VifView[]; routes: RouteView[] }

export interface CounterSource {
  sgCounters(origin: string, group: string): SgCounters | undefined;
  vifCounters(vifi: number): VifCounters | undefined;
}

const ipKey = (s: string | null): number => (s === null ? -1 : (parseIpv4(s) ?? 0));

export function buildShowView(config: Config, image: Image, counters: CounterSource, what: "all" | "routes" | "vifs"): Partial<ShowView> {
  const view: Partial<ShowView> = {};
  if (what !== "routes") view.vifs = vifViews(config, image, counters);
  if (what !== "vifs") view.routes = routeViews(config, image, counters);
  return view;
}

function vifViews(config: Config, image: Image, counters: CounterSource): VifView[] {
  const out: VifView[] = [];
  for (const ifname of neededInterfaces(config)) {
    const v = image.vifs.get(ifname);
    const c = v ? counters.vifCounters(v.vifi) : undefined;
    out.push({
      vifi: v?.vifi ?? null, ifname, ifindex: v?.ifindex ?? null,
      threshold: config.vifs.get(ifname)?.threshold ?? v?.threshold ?? 1, pinned: config.vifs.has(ifname),
      pkts_in: c?.pktsIn ?? 0, bytes_in: c?.bytesIn ?? 0, pkts_out: c?.pktsOut ?? 0, bytes_out: c?.bytesOut ?? 0,
    });
  }
  // Installed VIFs by number, then the missing ones by name.
  return out.sort((a, b) => (a.vifi ?? 99) - (b.vifi ?? 99) || a.ifname.localeCompare(b.ifname));
}

function routeViews(config: Config, image: Image, counters: CounterSource): RouteView[] {
  const out: RouteView[] = [];
  for (const [key, r] of config.routes) {
    const m = image.mfcs.get(key);
    const c = m ? counters.sgCounters(originOf(m), m.group) : undefined;
    const reason = pendingReason(key, r, image);
    const view: RouteView = {
      source: r.source, group: r.group, iif: r.iif, oifs: r.oifs.map((o) => ({ ifname: o.ifname, ttl: o.ttl })),
      packets: c?.packets ?? 0, bytes: c?.bytes ?? 0, wrong_if: c?.wrongIf ?? 0,
      state: m ? "installed" : "pending",
    };
    if (reason !== undefined) view.reason = reason;
    out.push(view);
  }
  // Sort keys computed once per route, not once per comparison.
  const keyed = out.map((r) => ({ r, g: ipKey(r.group), s: ipKey(r.source) }));
  keyed.sort((a, b) => a.g - b.g || a.s - b.s);
  return keyed.map((k) => k.r);
}

export interface ShowStats {
  /** `installed` counts the `partial` routes too (installed, some oifs without a VIF). */
  routes: number; installed: number; partial: number; pending: number;
  packets: number; bytes: number; wrong_if: number;
  vifs: number; vif_limit: number;
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
    vifs: (view.vifs ?? []).filter((v) => v.vifi !== null).length, vif_limit: 32,
    busiest: [...routes].sort((a, b) => b.packets - a.packets).slice(0, top).filter((r) => r.packets > 0)
      .map((r) => ({ source: r.source, group: r.group, packets: r.packets, bytes: r.bytes })),
  };
}
