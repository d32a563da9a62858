/**
 * Pure: the ordered kernel steps that turn one image into another, each with its inverse.
 * (Memberships are planned apart, in joins.ts: they name interfaces, never VIFs.)
 * Order: MFC removals (and updates that need no new VIF) first, then VIF removals, VIF additions,
 * and last the MFC additions/updates that need the new VIFs. So no entry ever names a missing
 * or reassigned VIF while traffic flows (MRT_ADD_MFC silently drops OIFs that do not exist), and
 * undoing the steps in reverse order restores every entry while its VIFs exist.
 */
import type { Image, JoinImage, MfcImage, VifImage } from "./image.js";
import { entrySlots, sameMfc, sameVif, vifSlot } from "./image.js";

export type Step =
  | { op: "del_mfc"; entry: MfcImage }
  | { op: "add_mfc"; entry: MfcImage }
  | { op: "replace_mfc"; entry: MfcImage; previous: MfcImage }
  | { op: "del_vif"; vif: VifImage }
  | { op: "add_vif"; vif: VifImage }
  | { op: "join"; join: JoinImage }
  | { op: "leave"; join: JoinImage };

export function planSteps(from: Image, to: Image): Step[] {
  const stable = new Set<number>();
  for (const [name, v] of to.vifs) {
    const old = from.vifs.get(name);
    if (old && sameVif(old, v)) stable.add(vifSlot(v.family, v.vifi));
  }
  const usesOnlyStable = (m: MfcImage): boolean => entrySlots(m).every((slot) => stable.has(slot));

  const early: Step[] = [];
  const late: Step[] = [];
  for (const [key, old] of from.mfcs) {
    const next = to.mfcs.get(key);
    if (!next) early.push({ op: "del_mfc", entry: old });
    else if (sameMfc(old, next)) continue;
    else if (usesOnlyStable(next)) early.push({ op: "replace_mfc", entry: next, previous: old });
    else if (usesOnlyStable(old)) late.push({ op: "replace_mfc", entry: next, previous: old });
    else {
      // Both versions name VIFs that change in this transaction. Undoing a late replace would
      // re-add the old entry while its VIFs are still gone, and the kernel silently drops OIFs
      // naming missing VIFs; so remove it early and add it late, each undone at the right time.
      early.push({ op: "del_mfc", entry: old });
      late.push({ op: "add_mfc", entry: next });
    }
  }
  // In order: early, VIF removals, VIF additions, late, then the new entries, each appended to
  // one array (a restore's 100 000 adds are not copied from a list of their own).
  const steps = early;
  for (const [name, old] of from.vifs) {
    const next = to.vifs.get(name);
    if (!next || !sameVif(old, next)) steps.push({ op: "del_vif", vif: old });
  }
  for (const [name, next] of to.vifs) {
    const old = from.vifs.get(name);
    if (!old || !sameVif(old, next)) steps.push({ op: "add_vif", vif: next });
  }
  for (const step of late) steps.push(step);
  for (const [key, next] of to.mfcs) {
    if (!from.mfcs.has(key)) steps.push({ op: "add_mfc", entry: next });
  }
  return steps;
}

export function inverse(step: Step): Step {
  switch (step.op) {
    case "add_mfc": return { op: "del_mfc", entry: step.entry };
    case "del_mfc": return { op: "add_mfc", entry: step.entry };
    // MRT_ADD_MFC replaces by (S,G), so restoring the pre-image is one more add.
    case "replace_mfc": return { op: "replace_mfc", entry: step.previous, previous: step.entry };
    case "add_vif": return { op: "del_vif", vif: step.vif };
    case "del_vif": return { op: "add_vif", vif: step.vif };
    case "join": return { op: "leave", join: step.join };
    case "leave": return { op: "join", join: step.join };
  }
}

/** The plan as the client sees it (`changes` in a response). */
export function describeStep(step: Step): Record<string, unknown> {
  switch (step.op) {
    case "add_vif":
    case "del_vif":
      return { action: step.op, family: step.vif.family, vifi: step.vif.vifi, ifname: step.vif.ifname, ifindex: step.vif.ifindex, threshold: step.vif.threshold };
    case "add_mfc":
    case "del_mfc":
    case "replace_mfc":
      return {
        action: step.op, source: step.entry.source, group: step.entry.group, iif: step.entry.iif,
        oifs: step.entry.oifs.map((o) => ({ ifname: o.ifname, ttl: o.ttl })),
      };
    case "join":
    case "leave":
      return { action: step.op, ifname: step.join.ifname, ifindex: step.join.ifindex, group: step.join.group, source: step.join.source };
  }
}
