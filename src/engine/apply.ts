/**
 * Effects: run steps against the kernel with an undo log. On the first failure the steps already
 * taken are undone in reverse; the caller learns which step failed and whether every undo worked.
 */
import { KernelError } from "../kernel/errors.js";
import type { KernelPort } from "../kernel/port.js";
import { originOf } from "./image.js";
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

/** A run of this many MFC adds or more goes to the kernel as one batch. */
const BATCH_MIN = 2;

/**
 * Runs steps in order until the kernel refuses one; returns which (undefined: all done). Steps
 * that `harmless` accepts as failed-but-done are passed over. Only KernelErrors are caught.
 * Consecutive MFC adds and replacements of distinct entries, which do not depend on each other,
 * are sent as one batch; a refusal among them is reported as if they had run one by one, with the
 * later ones of the batch that took effect in `alsoDone`.
 */
export function runUntilRefused(
  kernel: KernelPort, steps: readonly Step[], harmless: (step: Step, err: KernelError) => boolean = () => false,
): Refusal | undefined {
  for (let i = 0; i < steps.length;) {
    const end = addRunEnd(steps, i);
    if (end - i >= BATCH_MIN) {
      const refused = runBatch(kernel, steps, i, end, harmless);
      if (refused) return refused;
      i = end;
      continue;
    }
    const step = steps[i] as Step;
    try {
      runStep(kernel, step);
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      if (!harmless(step, err)) return { index: i, step, err, alsoDone: [] };
    }
    i++;
  }
  return undefined;
}

/** Where the run of MFC adds and replacements of distinct (origin, group) starting at `from` ends. */
function addRunEnd(steps: readonly Step[], from: number): number {
  const keys = new Set<string>();
  let i = from;
  for (; i < steps.length; i++) {
    const s = steps[i] as Step;
    if ((s.op !== "add_mfc" && s.op !== "replace_mfc") || keys.has(s.entry.key)) break;
    keys.add(s.entry.key);
  }
  return i;
}

function runBatch(
  kernel: KernelPort, steps: readonly Step[], from: number, end: number, harmless: (step: Step, err: KernelError) => boolean,
): Refusal | undefined {
  const run = steps.slice(from, end) as Extract<Step, { op: "add_mfc" | "replace_mfc" }>[];
  const results = kernel.addMfcs(run.map(({ entry }) => ({ origin: originOf(entry), group: entry.group, parent: entry.parent, ttls: entry.ttls, iifIndex: entry.iifIndex })));
  for (let k = 0; k < run.length; k++) {
    const err = results[k];
    const step = run[k] as Step;
    if (err === undefined || harmless(step, err)) continue;
    const alsoDone = run.slice(k + 1).filter((_, j) => results[k + 1 + j] === undefined);
    return { index: from + k, step, err, alsoDone };
  }
  return undefined;
}

/** Applies steps; throws StepFailed after undoing what was done. */
export function applySteps(kernel: KernelPort, steps: readonly Step[]): void {
  const failed = runUntilRefused(kernel, steps);
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
