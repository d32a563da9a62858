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

/**
 * Runs steps in order until the kernel refuses one; returns which (undefined: all done). Steps
 * that `harmless` accepts as failed-but-done are passed over. Only KernelErrors are caught.
 */
export function runUntilRefused(
  kernel: KernelPort, steps: readonly Step[], harmless: (step: Step, err: KernelError) => boolean = () => false,
): { index: number; step: Step; err: KernelError } | undefined {
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as Step;
    try {
      runStep(kernel, step);
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      if (!harmless(step, err)) return { index: i, step, err };
    }
  }
  return undefined;
}

/** Applies steps; throws StepFailed after undoing what was done. */
export function applySteps(kernel: KernelPort, steps: readonly Step[]): void {
  const failed = runUntilRefused(kernel, steps);
  if (failed) throw new StepFailed(failed.index, failed.step, failed.err, undoSteps(kernel, steps.slice(0, failed.index)));
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
