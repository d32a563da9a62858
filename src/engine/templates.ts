/**
 * Pure: group-range templates (SPEC §7). A route whose group is a range (`239.1.0.0/16`) has no
 * kernel entry of its own; when the kernel reports a flow it has no entry for (an upcall: (S, G)
 * arrived on a VIF), the template that covers it gives the (S, G) entry to install (daemon/flows.ts).
 */
import { groupMatcher, type GroupMatcher } from "../model/address.js";
import { routeKey, type Config, type Route } from "../model/types.js";

export interface Template { key: string; route: Route; range: GroupMatcher }

/** The templates among the routes (O(routes): call it when the configuration changed). */
export function templatesOf(routes: Iterable<[string, Route]>): Template[] {
  const out: Template[] = [];
  for (const [key, route] of routes) {
    const range = groupMatcher(route.group);
    if (range) out.push({ key, route, range });
  }
  // Most specific first: the longest range, then a source-specific template before an any-source one.
  return out.sort((a, b) => b.range.len - a.range.len || Number(b.route.source !== null) - Number(a.route.source !== null));
}

/**
 * The template that takes (source, group) arriving on `iif`: the most specific that matches. None
 * when an exact route names the flow — (S, G), or (*, G) — even a pending one: exact routes win.
 */
export function templateFor(config: Config, templates: readonly Template[], iif: string, source: string, group: string): Template | undefined {
  if (config.routes.has(routeKey(source, group)) || config.routes.has(routeKey(null, group))) return undefined;
  return templates.find((t) => t.route.iif === iif && (t.route.source === null || t.route.source === source) && t.range.contains(group));
}
