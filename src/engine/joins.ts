/**
 * Pure: the memberships the Config's joins ask for, given which interfaces exist now, and the steps
 * from the memberships held to those. A join whose interface is missing waits ("interface missing")
 * and is joined when it returns — on its new index: a device deleted and created again gets a new
 * one, and the kernel dropped the old membership with the old device.
 */
import type { LinkResolver } from "../kernel/port.js";
import type { Join } from "../model/types.js";
import type { JoinImage } from "./image.js";
import type { Step } from "./plan.js";

export interface JoinTarget { joins: Map<string, JoinImage>; waiting: Map<string, string> }

/** `held` = joins left out with their reason (the kernel refused them); they keep waiting. */
export function realizeJoins(joins: ReadonlyMap<string, Join>, links: LinkResolver, held: ReadonlyMap<string, string> = new Map()): JoinTarget {
  const target: JoinTarget = { joins: new Map(), waiting: new Map() };
  for (const [key, j] of joins) {
    const why = held.get(key);
    const ifindex = links.indexOf(j.ifname);
    if (ifindex === undefined) target.waiting.set(key, "interface missing");
    else if (why !== undefined) target.waiting.set(key, why);
    else target.joins.set(key, { key, ifname: j.ifname, ifindex, group: j.group, source: j.source });
  }
  return target;
}

/** Leaves first (a membership gone or on another index), then joins. */
export function planJoins(from: ReadonlyMap<string, JoinImage> | undefined, to: ReadonlyMap<string, JoinImage>): Step[] {
  const leaves: Step[] = [];
  const joins: Step[] = [];
  for (const [key, old] of from ?? []) {
    const next = to.get(key);
    if (!next || next.ifindex !== old.ifindex) leaves.push({ op: "leave", join: old });
  }
  for (const [key, next] of to) {
    const old = from?.get(key);
    if (!old || old.ifindex !== next.ifindex) joins.push({ op: "join", join: next });
  }
  return [...leaves, ...joins];
}

/** The memberships whose device still exists (the kernel dropped the others with their device). */
export function liveJoins(held: ReadonlyMap<string, JoinImage> | undefined, links: LinkResolver): Map<string, JoinImage> {
  const live = new Map<string, JoinImage>();
  for (const [key, j] of held ?? []) if (links.nameOf(j.ifindex) !== undefined) live.set(key, j);
  return live;
}
