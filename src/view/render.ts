/** Text rendering of the view models (the CLI's human output). Pure: strings in, strings out. */
import { formatSG } from "../model/types.js";
import type { JoinView, RouteView, ShowStats, ShowView, VifView } from "./model.js";

export function renderRoute(r: RouteView): string {
  const oifs = r.oifs.map((o) => (o.ttl === 1 ? o.ifname : `${o.ifname}(ttl ${o.ttl})`)).join(" ");
  const head = `${formatSG(r)}  iif ${r.iif}  oifs ${oifs}  pkts ${r.packets}  bytes ${r.bytes}  wrong ${r.wrong_if}  ${routeStateText(r)}`;
  if (!r.flows) return head;
  // A template: its state, then one line per flow it installed.
  return [`${head}, template: ${r.flows.length} flow(s)`, ...r.flows.map((f) => `  flow ${formatSG(f)}  pkts ${f.packets}  bytes ${f.bytes}`)].join("\n");
}

/**
 * The one vocabulary of `show`, `check` and the docs: `installed` (a kernel entry forwarding on
 * every oif), `partial (reason)` (installed, but some oifs have no VIF: it forwards on the others;
 * JSON state `installed` with a `reason`), `pending (reason)` (no kernel entry: forwards nothing).
 */
export function routeStateText(r: Pick<RouteView, "state" | "reason">): string {
  if (r.state === "pending") return `pending (${r.reason ?? "unknown"})`;
  return r.reason ? `partial (${r.reason})` : "installed";
}

/** The VIF table, then (if any) the MIF table of IPv6, each numbered in its own kernel table. */
export function renderVifs(vifs: VifView[]): string[] {
  const mifs = vifs.filter((v) => v.family === 6);
  if (mifs.length === 0) return vifTable("vif", vifs);
  const v4 = vifs.filter((v) => v.family !== 6);
  return [...(v4.length > 0 ? [...vifTable("vif", v4), ""] : []), ...vifTable("mif", mifs)];
}

function vifTable(label: "vif" | "mif", vifs: VifView[]): string[] {
  const rows = vifs.map((v) => [
    v.vifi === null ? "-" : String(v.vifi), v.ifname, v.ifindex === null ? "missing" : String(v.ifindex), String(v.threshold),
    v.pinned ? "pinned" : "auto", String(v.pkts_in), String(v.bytes_in), String(v.pkts_out), String(v.bytes_out),
  ]);
  return table([label, "ifname", "ifindex", "thresh", "kind", "pkts_in", "bytes_in", "pkts_out", "bytes_out"], rows);
}

/** `(*, 239.1.1.1) on eth0  installed`, in the vocabulary of routes. */
export function renderJoin(j: JoinView): string {
  return `${formatSG(j)} on ${j.ifname}  ${j.state === "pending" ? `pending (${j.reason ?? "unknown"})` : "installed"}`;
}

export function renderStats(s: ShowStats): string {
  const lines = [
    `routes ${s.routes}  installed ${s.installed}${s.partial > 0 ? ` (partial ${s.partial})` : ""}  pending ${s.pending}`,
    `pkts ${s.packets}  bytes ${s.bytes}  wrong ${s.wrong_if}`,
    `vifs ${s.vifs} of ${s.vif_limit}${s.mifs > 0 ? `  mifs ${s.mifs} of ${s.vif_limit}` : ""}`,
  ];
  if (s.busiest.length > 0) lines.push("busiest:", ...s.busiest.map((r) => `  ${formatSG(r)}  pkts ${r.packets}  bytes ${r.bytes}`));
  return lines.join("\n");
}

export function renderShow(view: Partial<ShowView>): string {
  const parts: string[] = [];
  const section = (lines: string[]): void => {
    if (parts.length > 0) parts.push("");
    parts.push(...lines);
  };
  if (view.vifs) section(view.vifs.length ? renderVifs(view.vifs) : ["no VIFs"]);
  // In `show` (all), joins are listed only when there are some: a router without joins sees no change.
  if (view.joins && (view.joins.length > 0 || (!view.vifs && !view.routes))) section(view.joins.length ? view.joins.map(renderJoin) : ["no joins"]);
  if (view.routes) section(view.routes.length ? view.routes.map(renderRoute) : ["no routes"]);
  return parts.join("\n");
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

export interface FindingView { severity: string; code: string; message: string; fix?: string; route?: string }

export function renderFinding(f: FindingView): string {
  return `${f.severity}: ${f.code}${f.route ? ` ${f.route}` : ""}: ${f.message}${f.fix ? `\n  fix: ${f.fix}` : ""}`;
}

export function renderChange(c: Record<string, unknown>): string {
  const a = String(c.action);
  if (a === "join" || a === "leave") return `${a} ${formatSG({ source: typeof c.source === "string" ? c.source : null, group: String(c.group) })} on ${String(c.ifname)}`;
  if (a.endsWith("_vif")) return `${a.replace("_", " ").replace("vif", c.family === 6 ? "mif" : "vif")} ${String(c.vifi)} ${String(c.ifname)} (ifindex ${String(c.ifindex)}, threshold ${String(c.threshold)})`;
  const oifs = Array.isArray(c.oifs) ? (c.oifs as { ifname: string; ttl: number }[]).map((o) => (o.ttl === 1 ? o.ifname : `${o.ifname}(ttl ${o.ttl})`)).join(" ") : "";
  return `${a.replace("_", " ")} ${formatSG({ source: typeof c.source === "string" ? c.source : null, group: String(c.group) })} iif ${String(c.iif)} oifs ${oifs}`;
}

export function renderCheck(routesChecked: number, findings: FindingView[]): string {
  const head = `checked ${routesChecked} route(s): ${findings.length === 0 ? "no problems found" : `${findings.length} finding(s)`}`;
  return [head, ...findings.map(renderFinding)].join("\n");
}

/** `key: value` lines; null (or an empty map) shows as "-", strings without quotes, maps as `k (v), ...`. */
export function renderStatus(status: Record<string, unknown>): string {
  const value = (v: unknown): string => {
    if (v === null) return "-";
    if (typeof v === "object" && !Array.isArray(v)) {
      const entries = Object.entries(v);
      return entries.length === 0 ? "-" : entries.map(([k, x]) => `${k} (${String(x)})`).join(", ");
    }
    return JSON.stringify(v).replace(/^"(.*)"$/, "$1");
  };
  return Object.entries(status).map(([k, v]) => `${k}: ${value(v)}`).join("\n");
}

export interface ApplySummaryView { added: number; replaced: number; removed: number; unchanged: number }

/** A transaction's outcome for a person: the APPLY diff if any, and the planned steps of a dry run. */
export function renderTransaction(changes: Record<string, unknown>[], dryRun: boolean, apply?: ApplySummaryView): string | undefined {
  const lines: string[] = [];
  if (apply) {
    lines.push(`${dryRun ? "dry run: would apply" : "applied"}: ${apply.added} added, ${apply.replaced} replaced, ${apply.removed} removed, ${apply.unchanged} unchanged`);
  } else if (dryRun) {
    lines.push(changes.length === 0 ? "dry run: no kernel changes needed" : `dry run: ${changes.length} kernel change(s) would be made:`);
  }
  if (dryRun) lines.push(...changes.map((c) => `  ${renderChange(c)}`));
  return lines.length > 0 ? lines.join("\n") : undefined;
}
