/**
 * Effects, best effort (SPEC §6.3): bring the kernel from the installed image to what a Config
 * asks for, one step at a time, tracking exactly what got installed. A step the kernel refuses
 * does not stop the rest: the interface (or route) is recorded with the errno and left out, the
 * plan is recomputed from what is really installed, and everything else is installed. Used by
 * restore and reconcile, where the Config is already acknowledged and must never be refused.
 */
import { KernelError } from "../kernel/errors.js";
import type { KernelPort, LinkResolver } from "../kernel/port.js";
import type { Config, Join } from "../model/types.js";
import { runStep, runUntilRefused } from "./apply.js";
import { keyOfVif, type Image, type JoinImage } from "./image.js";
import { planJoins, realizeJoins } from "./joins.js";
import { planSteps, type Step } from "./plan.js";
import { realize } from "./realize.js";

export interface Converged {
  image: Image;
  refused: { vifs: Map<string, string>; routes: Map<string, string> };
  /** The steps that succeeded, in order. */
  applied: Step[];
  /** Steps that failed in a way that could not be worked around (the table may differ from `image`). */
  problems: string[];
}

export function converge(kernel: KernelPort, config: Config, from: Image, links: LinkResolver): Converged {
  let image = from;
  let copied = false;
  const refused: Converged["refused"] = { vifs: new Map(), routes: new Map() };
  /** Removals the kernel refused: the objects are still there, so the image keeps them. */
  const stuck = new Set<Step>();
  const problems: string[] = [];
  let applied: Step[] = [];
  let waiting: Image["waiting"];
  // Each round that fails records one more refusal, so this ends; the bound is a safety net.
  for (let round = 0; round <= config.routes.size + 64; round++) {
    const target = realize(config, image, links, refused);
    waiting = target.waiting;
    const planned = planSteps(image, target);
    const steps = stuck.size === 0 ? planned : planned.filter((s) => !isStuck(s, stuck));
    const failure = runUntilRefused(kernel, steps, alreadyGone, target.vifs);
    // The steps before the failure (all of them, without one) took effect, and those of its batch
    // that the kernel took after it.
    const done = failure?.index ?? steps.length;
    // A first round without a failure ends below: its steps are the list itself, not copied.
    if (applied.length === 0 && !failure) applied = steps;
    else for (let k = 0; k < done; k++) applied.push(steps[k] as Step);
    if (failure) applied.push(...failure.alsoDone);
    // All done: the kernel holds exactly the target (planSteps' contract) — unless a removal was
    // refused earlier, in which case the image, kept step by step, is the truth.
    if (!failure && stuck.size === 0) return { image: target, refused, applied, problems };
    // Only now is the (100 000-entry) image copied: the common case above never needs it.
    if (!copied) {
      image = { vifs: new Map(from.vifs), mfcs: new Map(from.mfcs), staleVifis: from.staleVifis };
      copied = true;
    }
    for (let k = 0; k < done; k++) applyToImage(image, steps[k] as Step);
    for (const step of failure?.alsoDone ?? []) applyToImage(image, step);
    if (!failure) return { image: { ...image, waiting }, refused, applied, problems };
    const { step, err } = failure;
    const what = step.op === "add_vif" ? (step.vif.family === 6 ? "MIF" : "VIF") : "route";
    const why = `kernel refused ${what}: ${err.reason}`;
    if (step.op === "add_vif" && err.call === "MRT6_INIT") {
      // The IPv6 table itself is refused (another process owns it): every MIF would be, so all of
      // them wait now, instead of one more round over the whole config per MIF.
      for (let k = failure.index; k < steps.length; k++) {
        const s = steps[k] as Step;
        if (s.op === "add_vif" && s.vif.family === 6) refused.vifs.set(keyOfVif(s.vif), why);
      }
    } else if (step.op === "add_vif") refused.vifs.set(keyOfVif(step.vif), why);
    else if (step.op === "add_mfc" || step.op === "replace_mfc") refused.routes.set(step.entry.key, why);
    else {
      // A removal the kernel refuses leaves the object in the table: the image keeps it (so the
      // next reconcile tries again), this convergence passes over it, and status says degraded.
      problems.push(`${step.op}: ${err.message}`);
      stuck.add(step);
    }
  }
  problems.push("gave up converging after too many kernel refusals");
  return { image: { ...image, waiting }, refused, applied, problems };
}

/** A removal refused earlier in this convergence (planSteps makes new step objects each round). */
function isStuck(step: Step, stuck: ReadonlySet<Step>): boolean {
  if (step.op !== "del_vif" && step.op !== "del_mfc") return false;
  for (const s of stuck) {
    if (s.op === "del_vif" && step.op === "del_vif" && keyOfVif(s.vif) === keyOfVif(step.vif) && s.vif.vifi === step.vif.vifi) return true;
    if (s.op === "del_mfc" && step.op === "del_mfc" && s.entry.key === step.entry.key) return true;
  }
  return false;
}

/** Deleting an entry the kernel no longer has reaches the wanted state all the same. */
const alreadyGone = (step: Step, err: KernelError): boolean => step.op === "del_mfc" && err.errnoName === "ENOENT";

function applyToImage(image: Image, step: Step): void {
  switch (step.op) {
    case "add_vif": image.vifs.set(keyOfVif(step.vif), step.vif); break;
    case "del_vif": image.vifs.delete(keyOfVif(step.vif)); break;
    case "add_mfc":
    case "replace_mfc": image.mfcs.set(step.entry.key, step.entry); break;
    case "del_mfc": image.mfcs.delete(step.entry.key); break;
  }
}

export interface ConvergedJoins {
  /** The memberships held now, step by step. */
  joins: Map<string, JoinImage>;
  waiting: Map<string, string>;
  applied: Step[];
  problems: string[];
}

/**
 * Memberships, best effort like the rest: a join the kernel refuses waits with the errno (retried
 * by the next reconcile), a leave it refuses stays held (and is a problem: status says degraded).
 */
export function convergeJoins(kernel: KernelPort, joins: ReadonlyMap<string, Join>, from: ReadonlyMap<string, JoinImage> | undefined, links: LinkResolver): ConvergedJoins {
  const target = realizeJoins(joins, links);
  const out: ConvergedJoins = { joins: new Map(from ?? []), waiting: target.waiting, applied: [], problems: [] };
  for (const step of planJoins(from, target.joins)) {
    if (step.op !== "join" && step.op !== "leave") continue;
    try {
      runStep(kernel, step);
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      if (step.op === "join") out.waiting.set(step.join.key, `kernel refused join: ${err.errnoName}`);
      else out.problems.push(`leave ${step.join.key}: ${err.message}`);
      continue;
    }
    out.applied.push(step);
    if (step.op === "leave") out.joins.delete(step.join.key);
    else out.joins.set(step.join.key, step.join);
  }
  return out;
}
