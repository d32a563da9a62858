/**
 * Pure: apply validated operations to a copy of the Config, enforcing the rules that need the
 * current state (exists / not found / in use) and the interface table. Nothing touches the kernel.
 */
import { MfcError, invalid } from "../errors/codes.js";
import type { LinkResolver } from "../kernel/port.js";
import { OverlayMap } from "../model/overlay.js";
import { familyName, familyOf, type Family } from "../model/family.js";
import { formatJoin, formatSG, joinKey, routeFamily, routeKey, sameRoute, vifKey, vifKeyFamily, type Config, type Join, type MapConfig, type PinnedVif, type Route } from "../model/types.js";
import type { Op } from "../protocol/schema.js";
import type { Delta } from "../state/format.js";

export type Draft = { vifs: OverlayMap<string, PinnedVif>; routes: OverlayMap<string, Route>; joins: OverlayMap<string, Join> };

/** The Config a draft holds, as maps of its own; the draft is spent (OverlayMap.takeMap). */
export function takeConfig(d: Draft): MapConfig {
  return { vifs: d.vifs.takeMap(), routes: d.routes.takeMap(), joins: d.joins.takeMap() };
}

/** The Config after `ops`, as an overlay over `base` (which is not modified). */
export function applyOps(base: Config, ops: readonly Op[], links: LinkResolver): Draft {
  const config: Draft = { vifs: new OverlayMap(base.vifs), routes: new OverlayMap(base.routes), joins: new OverlayMap(base.joins) };
  ops.forEach((op, i) => {
    try {
      applyOp(config, op, base, links);
    } catch (err) {
      // In a batch, say which operation broke (0-based, in the order the client sent them).
      if (ops.length > 1 && err instanceof MfcError) throw new MfcError(err.code, err.message, { ...err.details, operation: i });
      throw err;
    }
  });
  return config;
}

function applyOp(config: Draft, op: Op, base: Config, links: LinkResolver): void {
  switch (op.action) {
    case "ADD_VIF": {
      const key = vifKey(op.vif.family, op.vif.ifname);
      if (config.vifs.has(key)) throw invalid("E_VIF_EXISTS", `${vifWord(op.vif.family)} for interface '${op.vif.ifname}' already exists.`);
      requireInterface(op.vif.ifname, links);
      config.vifs.set(key, op.vif);
      return;
    }
    case "DEL_VIF": {
      const users = routesUsing(config, op.ifname, op.family);
      if (users.length > 0) {
        throw invalid("E_VIF_IN_USE", `${vifWord(op.family)} '${op.ifname}' is used by ${users.length} route(s), e.g. ${users[0]}.`, { routes: users.slice(0, 10) });
      }
      if (!config.vifs.delete(vifKey(op.family, op.ifname))) throw invalid("E_VIF_NOT_FOUND", `Interface '${op.ifname}' has no ${vifWord(op.family)}.`);
      return;
    }
    case "ADD_MFC":
    case "REPLACE_MFC": {
      const key = routeKey(op.route.source, op.route.group);
      if (op.action === "ADD_MFC" && config.routes.has(key)) {
        throw invalid("E_MFC_EXISTS", `Route ${formatSG(op.route)} already exists (use replace).`);
      }
      checkRoute(op.route, links);
      config.routes.set(key, op.route);
      return;
    }
    case "DEL_MFC": {
      if (!config.routes.delete(routeKey(op.source, op.group))) throw invalid("E_MFC_NOT_FOUND", `Route ${formatSG(op)} does not exist.`);
      return;
    }
    case "JOIN": {
      const key = joinKey(op.join);
      if (config.joins.has(key)) throw invalid("E_JOIN_EXISTS", `Join ${formatJoin(op.join)} already exists.`);
      requireInterface(op.join.ifname, links);
      config.joins.set(key, op.join);
      return;
    }
    case "LEAVE": {
      if (!config.joins.delete(joinKey(op.join))) throw invalid("E_JOIN_NOT_FOUND", `Join ${formatJoin(op.join)} does not exist.`);
      return;
    }
    case "FLUSH":
      clearFamily(config, op.family);
      return;
    case "APPLY": {
      clearFamily(config, op.family);
      if (op.family !== undefined) {
        // `mfc -6 apply`: the document is that family's whole state; an entry of the other family is a mistake.
        const other = [...op.routes.map((r) => ({ what: `route ${formatSG(r)}`, family: routeFamily(r) })),
          ...op.joins.map((j) => ({ what: `join ${formatJoin(j)}`, family: familyOf(j.group) })),
          ...op.vifs.map((v) => ({ what: `${vifWord(v.family)} '${v.ifname}'`, family: v.family ?? 4 }))].find((x) => x.family !== op.family);
        if (other) throw invalid("E_INVALID_ARGUMENT", `${other.what} is not ${familyName(op.family)}: an apply limited to ${familyName(op.family)} takes only its entries.`);
      }
      for (const join of op.joins) {
        const key = joinKey(join);
        if (config.joins.has(key)) throw invalid("E_INVALID_ARGUMENT", `Join ${formatJoin(join)} is listed twice.`);
        // Like routes: a join that stays may wait for its interface; a new one needs it now.
        if (!base.joins.has(key)) requireInterface(join.ifname, links);
        config.joins.set(key, join);
      }
      for (const vif of op.vifs) {
        const key = vifKey(vif.family, vif.ifname);
        if (config.vifs.has(key)) throw invalid("E_INVALID_ARGUMENT", `${vifWord(vif.family)} '${vif.ifname}' is listed twice.`);
        if (!base.vifs.has(key)) requireInterface(vif.ifname, links);
        config.vifs.set(key, vif);
      }
      for (const route of op.routes) {
        const key = routeKey(route.source, route.group);
        // summarizeApply's counts rely on this refusal (and on the family's one above). (A route
        // added before its checks below throw goes with the draft the failed APPLY leaves.)
        if (!config.routes.add(key, route)) throw invalid("E_INVALID_ARGUMENT", `Route ${formatSG(route)} is listed twice.`);
        // Routes that do not change are not re-checked: a pending one may stay pending.
        const old = base.routes.get(key);
        if (old && sameRoute(old, route)) checkShape(route);
        else checkRoute(route, links);
      }
      return;
    }
  }
}

/** Every route, VIF and join (family undefined), or those of one family (`mfc -6 flush`, `-6 apply`). */
function clearFamily(config: Config, family: Family | undefined): void {
  if (family === undefined) {
    config.routes.clear();
    config.vifs.clear();
    config.joins.clear();
    return;
  }
  for (const [key, r] of [...config.routes]) if (routeFamily(r) === family) config.routes.delete(key);
  for (const key of [...config.vifs.keys()]) if (vifKeyFamily(key) === family) config.vifs.delete(key);
  for (const [key, j] of [...config.joins]) if (familyOf(j.group) === family) config.joins.delete(key);
}

function checkShape(route: Route): void {
  const seen = new Set<string>();
  for (const o of route.oifs) {
    if (o.ifname === route.iif) throw invalid("E_INVALID_ARGUMENT", `iif '${route.iif}' is also listed as an oif of ${formatSG(route)}.`);
    if (seen.has(o.ifname)) throw invalid("E_INVALID_ARGUMENT", `oif '${o.ifname}' is listed twice in ${formatSG(route)}.`);
    seen.add(o.ifname);
  }
}

function checkRoute(route: Route, links: LinkResolver): void {
  checkShape(route);
  requireInterface(route.iif, links);
  for (const o of route.oifs) requireInterface(o.ifname, links);
}

function requireInterface(ifname: string, links: LinkResolver): void {
  if (links.indexOf(ifname) === undefined) throw invalid("E_IF_NOT_FOUND", `Interface '${ifname}' not found.`, { ifname });
}

/** O(table): only `vif del` asks, and it must name the routes (of the VIF's family) in its error message. */
function routesUsing(config: Config, ifname: string, family: Family): string[] {
  const users: string[] = [];
  for (const r of config.routes.values()) {
    if (routeFamily(r) !== family) continue;
    if (r.iif === ifname || r.oifs.some((o) => o.ifname === ifname)) users.push(formatSG(r));
  }
  return users;
}

const vifWord = (family: Family | undefined): string => (family === 6 ? "MIF" : "VIF");

/** What a list of operations can change, for an O(change) journal record; undefined = everything. */
export function touchedBy(ops: readonly Op[]): Delta | undefined {
  const delta: Delta = { routes: new Set(), vifs: new Set(), joins: new Set() };
  for (const op of ops) {
    switch (op.action) {
      case "JOIN":
      case "LEAVE": delta.joins.add(joinKey(op.join)); break;
      case "ADD_VIF": delta.vifs.add(vifKey(op.vif.family, op.vif.ifname)); break;
      case "DEL_VIF": delta.vifs.add(vifKey(op.family, op.ifname)); break;
      case "ADD_MFC":
      case "REPLACE_MFC": delta.routes.add(routeKey(op.route.source, op.route.group)); break;
      case "DEL_MFC": delta.routes.add(routeKey(op.source, op.group)); break;
      case "FLUSH":
      case "APPLY": return undefined;
    }
  }
  return delta;
}

export interface ApplySummary { added: number; replaced: number; removed: number; unchanged: number }

/**
 * What an APPLY changes, route by route (for `mfc apply --dry-run`); `family`: of that family only.
 * Pure; O(table), and no set of keys: a listing with a route twice, or of the other family, is
 * refused (applyOps) and this summary with it, so every route of the base, of the family, that no
 * listed route matched is one removed.
 */
export function summarizeApply(base: Config, routes: readonly Route[], family?: Family): ApplySummary {
  const sum: ApplySummary = { added: 0, replaced: 0, removed: 0, unchanged: 0 };
  for (const r of routes) {
    const old = base.routes.get(routeKey(r.source, r.group));
    if (!old) sum.added++;
    else if (sameRoute(old, r)) sum.unchanged++;
    else sum.replaced++;
  }
  let inScope = family === undefined ? base.routes.size : 0;
  if (family !== undefined) for (const r of base.routes.values()) if (routeFamily(r) === family) inScope++;
  sum.removed = inScope - sum.unchanged - sum.replaced;
  return sum;
}

/** Whether a draft differs from its base: a transaction that changes nothing writes nothing. */
export function configChanged(base: Config, draft: Draft): boolean {
  return mapChanged(base.routes, draft.routes, sameRoute) || mapChanged(base.vifs, draft.vifs, (a, b) => a.threshold === b.threshold) ||
    mapChanged(base.joins, draft.joins, () => true); // a join's key is all of it
}

/** O(change); O(table) only after clear() (FLUSH, APPLY), which rebuilds the whole map anyway. */
function mapChanged<V>(base: ReadonlyMap<string, V>, draft: OverlayMap<string, V>, same: (a: V, b: V) => boolean): boolean {
  const keys = draft.isCleared ? draft.keys() : draft.changedKeys();
  if (draft.isCleared && draft.size !== base.size) return true;
  for (const key of keys) {
    const a = base.get(key);
    const b = draft.get(key);
    if (a === undefined || b === undefined ? a !== b : !same(a, b)) return true;
  }
  return false;
}
