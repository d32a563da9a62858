/**
 * Effects, best effort (SPEC §6.3): bring the kernel from the installed image to what a Config
 * asks for, one step at a time, tracking exactly what got installed. A step the kernel refuses
 * does not stop the rest: the interface (or route) is recorded with the errno and left out, the
 * plan is recomputed from what is really installed, and everything else is installed. Used by
 * restore and reconcile, where the Config is already acknowledged and must never be refused.
 */
import type { KernelError } from "../kernel/errors.js";
import type { KernelPort, LinkResolver } from "../kernel/port.js";
import type { Config } from "../model/types.js";
import { runUntilRefused } from "./apply.js";
import type { Image } from "./image.js";
import { planSteps, type Step } from "./plan.js";
import { realize, type Refusals } from "./realize.js";

export interface Converged {
  image: Image;
  refused: { vifs: Map<string, string>; routes: Map<string, string> };
  /** The steps that succeeded, in order. */
  applied: Step[];
  /** Steps that failed in a way that could not be worked around (the table may differ from `image`). */
  problems: string[];
}

export function converge(kernel: KernelPort, config: Config, from: Image, links: LinkResolver, keep: Refusals): Converged {
  const image: Image = { vifs: new Map(from.vifs), mfcs: new Map(from.mfcs), staleVifis: from.staleVifis };
  const refused = { vifs: new Map(keep.vifs), routes: new Map(keep.routes) };
  const problems: string[] = [];
  const applied: Step[] = [];
  // Each round that fails records one more refusal, so this ends; the bound is a safety net.
  for (let round = 0; round <= config.routes.size + 64; round++) {
    const target = realize(config, image, links, refused);
    const steps = planSteps(image, target);
    const failure = runUntilRefused(kernel, steps, alreadyGone);
    // The steps before the failure (all of them, without one) took effect.
    const done = failure?.index ?? steps.length;
    for (let k = 0; k < done; k++) applied.push(steps[k] as Step);
    // All done: the kernel now holds exactly the target (planSteps' contract), so it is the image.
    if (!failure) return { image: target, refused, applied, problems };
    for (let k = 0; k < done; k++) applyToImage(image, steps[k] as Step);
    const { step, err } = failure;
    const why = `kernel refused ${step.op === "add_vif" ? "VIF" : "route"}: ${err.errnoName}`;
    if (step.op === "add_vif") refused.vifs.set(step.vif.ifname, why);
    else if (step.op === "add_mfc" || step.op === "replace_mfc") refused.routes.set(step.entry.key, why);
    else {
      // A removal that fails leaves the object in the kernel; forget it rather than retry forever
      // (the next resync flushes the table), and say so.
      problems.push(`${step.op}: ${err.message}`);
      if (step.op === "del_vif") image.vifs.delete(step.vif.ifname);
      else image.mfcs.delete(step.entry.key);
    }
  }
  problems.push("gave up converging after too many kernel refusals");
  return { image, refused, applied, problems };
}

/** Deleting an entry the kernel no longer has reaches the wanted state all the same. */
const alreadyGone = (step: Step, err: KernelError): boolean => step.op === "del_mfc" && err.errnoName === "ENOENT";

function applyToImage(image: Image, step: Step): void {
  switch (step.op) {
    case "add_vif": image.vifs.set(step.vif.ifname, step.vif); break;
    case "del_vif": image.vifs.delete(step.vif.ifname); break;
    case "add_mfc":
    case "replace_mfc": image.mfcs.set(step.entry.key, step.entry); break;
    case "del_mfc": image.mfcs.delete(step.entry.key); break;
  }
}
