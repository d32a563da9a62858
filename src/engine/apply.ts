/**
 * Effects: run steps against the kernel with an undo log. On the first failure the steps already
 * taken are undone in reverse; the caller learns which step failed and whether every undo worked.
 */
import { KernelError } from "../kernel/errors.js";
import { familyOf, type KernelPort } from "../kernel/port.js";
import { vifKey } from "../model/types.js";
import { originOf, type MfcImage, type VifImage } from "./image.js";
import { describeStep, inverse, type Step } from "./plan.js";

export function runStep(kernel: KernelPort, step: Step): void {
  switch (step.op) {
    case "add_vif": return kernel.addVif(step.vif);
    case "del_vif": return kernel.delVif(step.vif);
    case "add_mfc":
    case "replace_mfc":
      return kernel.addMfc({ origin: originOf(step.entry), group: step.entry.group, parent: step.entry.parent, ttls: step.entry.ttls });
    case "del_mfc":
      return kernel.delMfc({ origin: originOf(step.entry), group: step.entry.group, parent: step.entry.parent });
    case "join": return kernel.join(step.join);
    case "leave": return kernel.leave(step.join);
  }
}

export interface UndoFailure {
  step: Record<string, unknown>; call: string; errno: string;
  /** The step whose undo failed: its effect is still in the kernel (not sent to clients). */
  stillDone: Step;
}

export class StepFailed extends Error {
  constructor(
    readonly index: number,
    readonly step: Step,
    override readonly cause: KernelError,
    readonly undoFailures: UndoFailure[],
  ) {
    super(`step ${index + 1} (${step.op}) failed: ${cause.message}`);
  }
}

/** The step the kernel refused; the steps before it took effect, and so did those in `alsoDone`. */
export interface Refusal {
  index: number;
  step: Step;
  err: KernelError;
  /**
   * Steps after `index` that took effect anyway, in order: a batch of adds (KernelPort.addMfcs)
   * runs all of its entries, and one refusal does not stop the others.
   */
  alsoDone: Step[];
}

/** A run of this many MFC adds or more goes to the kernel in batches. */
const BATCH_MIN = 2;
/** Steps per KernelPort.addMfcs call: bounds what exists at once for a run of 100 000. */
const BATCH_MAX = 1024;

/**
 * Runs steps in order until the kernel refuses one; returns which (undefined: all done). Steps
 * that `harmless` accepts as failed-but-done are passed over. Only KernelErrors are caught.
 * Consecutive MFC adds and replacements of distinct entries, which do not depend on each other,
 * are sent in batches (with `vifs`, the VIFs the steps were planned against: a batch names each
 * entry's parent by its device); a refusal among them is reported as if they had run one by one,
 * with the later ones of its batch that took effect in `alsoDone`.
 */
export function runUntilRefused(
  kernel: KernelPort, steps: readonly Step[], harmless: (step: Step, err: KernelError) => boolean = () => false,
  vifs?: ReadonlyMap<string, VifImage>,
): Refusal | undefined {
  for (let i = 0; i < steps.length;) {
    const end = vifs ? addRunEnd(steps, i, Math.min(steps.length, i + BATCH_MAX)) : i;
    if (vifs && end - i >= BATCH_MIN) {
      const refused = runBatch(kernel, steps, i, end, harmless, vifs);
      if (refused) return refused;
      i = end;
      continue;
    }
    // A run too short for a batch (or none): its steps one by one, so no step is looked at twice.
    for (const stop = Math.max(end, i + 1); i < stop; i++) {
      const step = steps[i] as Step;
      try {
        runStep(kernel, step);
      } catch (err) {
        if (!(err instanceof KernelError)) throw err;
        if (!harmless(step, err)) return { index: i, step, err, alsoDone: [] };
      }
    }
  }
  return undefined;
}

/** Where the run of MFC adds and replacements of distinct (origin, group) starting at `from` ends (at most `limit`). */
function addRunEnd(steps: readonly Step[], from: number, limit: number): number {
  // No set for a run of one (a single add: the hot path of many small transactions).
  let keys: Set<string> | undefined;
  let i = from;
  for (; i < limit; i++) {
    const s = steps[i] as Step;
    if (s.op !== "add_mfc" && s.op !== "replace_mfc") break;
    if (i > from) {
      keys ??= new Set([(steps[from] as Extract<Step, { op: "add_mfc" | "replace_mfc" }>).entry.key]);
      if (keys.has(s.entry.key)) break;
      keys.add(s.entry.key);
    }
  }
  return i;
}

function runBatch(
  kernel: KernelPort, steps: readonly Step[], from: number, end: number, harmless: (step: Step, err: KernelError) => boolean,
  vifs: ReadonlyMap<string, VifImage>,
): Refusal | undefined {
  const run = steps.slice(from, end) as Extract<Step, { op: "add_mfc" | "replace_mfc" }>[];
  const results = kernel.addMfcs(run.map(({ entry }) => ({
    origin: originOf(entry), group: entry.group, parent: entry.parent, ttls: entry.ttls, iifIndex: deviceOf(entry, vifs),
  })));
  for (let k = 0; k < run.length; k++) {
    const err = results[k];
    const step = run[k] as Step;
    if (err === undefined || harmless(step, err)) continue;
    const alsoDone = run.slice(k + 1).filter((_, j) => results[k + 1 + j] === undefined);
    return { index: from + k, step, err, alsoDone };
  }
  return undefined;
}

/**
 * The device of the entry's parent VIF as the plan has it. The kernel takes that device's VIF as
 * the parent (ipmr_find_vif), so the plan must say the same VIF; where it does not (no VIF for the
 * iif, another index), 0: the kernel refuses the message and MRT_ADD_MFC takes `parent` as given.
 */
function deviceOf(entry: MfcImage, vifs: ReadonlyMap<string, VifImage>): number {
  const vif = vifs.get(vifKey(familyOf(entry.group), entry.iif));
  return vif !== undefined && vif.vifi === entry.parent ? vif.ifindex : 0;
}

/** Applies steps (planned against `vifs`); throws StepFailed after undoing what was done. */
export function applySteps(kernel: KernelPort, steps: readonly Step[], vifs?: ReadonlyMap<string, VifImage>): void {
  const failed = runUntilRefused(kernel, steps, undefined, vifs);
  if (failed) throw new StepFailed(failed.index, failed.step, failed.err, undoSteps(kernel, [...steps.slice(0, failed.index), ...failed.alsoDone]));
}

/** Undoes applied steps in reverse; keeps going past failures and reports each one. */
export function undoSteps(kernel: KernelPort, applied: readonly Step[]): UndoFailure[] {
  const failures: UndoFailure[] = [];
  for (let i = applied.length - 1; i >= 0; i--) {
    const undo = inverse(applied[i] as Step);
    try {
      runStep(kernel, undo);
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      failures.push({ step: describeStep(undo), call: err.call, errno: err.errnoName, stillDone: applied[i] as Step });
    }
  }
  return failures;
}
