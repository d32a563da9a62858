/**
 * The transaction engine: validate -> plan -> apply with undo log -> save -> commit. Kernel,
 * memory and state file change together or not at all (SPEC §6.1, §6.2). It reaches the kernel
 * only through KernelPort, so a fake kernel can fail any step.
 */
import { MfcError } from "../errors/codes.js";
import { KernelError } from "../kernel/errors.js";
import type { KernelPort, LinkResolver } from "../kernel/port.js";
import { cloneConfig, emptyConfig, interfaceRefs, type Config, type MapConfig } from "../model/types.js";
import type { Op } from "../protocol/schema.js";
import type { StateStore } from "../state/store.js";
import { StepFailed, applySteps, runStep, undoSteps } from "./apply.js";
import { emptyImage, type Image, type MfcImage } from "./image.js";
import { describeStep, planSteps, type Step } from "./plan.js";
import { realize } from "./realize.js";
import { planTouched } from "./incremental.js";
import { CachedLinks } from "./link_cache.js";
import { applyOps, touchedBy } from "./operations.js";
import { Serial } from "./serial.js";

export interface TxResult { changes: Record<string, unknown>[] }

export interface Snapshot { config: Config; image: Image }

export type Logger = (priority: number, message: string) => void;

export class Engine {
  /** The committed Config: real Maps, edited in place only at commit. */
  private config: MapConfig = emptyConfig();
  /** References per interface in `config`, kept up to date for O(change) planning. */
  private refs = new Map<string, number>();
  private image: Image = emptyImage();
  private readonly serial = new Serial();
  /** Set when a resync could not reinstall everything; cleared by the next clean reconcile. */
  degraded: string | undefined;

  constructor(
    private readonly kernel: KernelPort,
    private readonly links: LinkResolver,
    private readonly store: StateStore,
    private readonly log: Logger = () => undefined,
  ) {}

  /**
   * A consistent view for readers. It stays consistent until the next commit, which edits the maps
   * in place: read it synchronously, or copy what must be kept.
   */
  snapshot(): Snapshot {
    return { config: this.config, image: this.image };
  }

  /** Start-up: load the state file and install it before anyone is served (SPEC §6.3). */
  async restore(): Promise<{ routes: number; installed: number }> {
    const loaded = await this.store.load();
    if (!loaded) return { routes: 0, installed: 0 };
    return this.serial.run(() => {
      const target = realize(loaded, emptyImage(), this.links);
      this.applyOrThrow(planSteps(emptyImage(), target));
      this.config = loaded; // a store hands over a config of its own, not one it keeps
      this.refs = interfaceRefs(this.config);
      this.image = target;
      return Promise.resolve({ routes: loaded.routes.size, installed: target.mfcs.size });
    });
  }

  /** One all-or-nothing transaction for a list of operations (a single request or a BATCH). */
  transact(ops: readonly Op[], dryRun: boolean): Promise<TxResult> {
    return this.serial.run(async () => {
      const links = new CachedLinks(this.links);
      const next = applyOps(this.config, ops, links);
      const current = this.liveImage();
      // A vanished VIF leaves stale indices in untouched entries: only the full plan rewrites them.
      const routesOnly = current.staleVifis === undefined && !next.routes.isCleared && !next.vifs.isCleared &&
        next.vifs.changedKeys().next().done === true;
      const delta = routesOnly ? planTouched(this.config, next, next.routes.changedKeys(), current, this.refs, links) : undefined;
      const target = delta ? undefined : realize(next, current, links);
      const steps = delta?.steps ?? planSteps(current, target as Image);
      const changes = steps.map(describeStep);
      if (dryRun) return { changes };
      this.image = current;
      this.applyOrThrow(steps);
      try {
        await this.store.save(next, touchedBy(ops));
      } catch (err) {
        const undoFailures = undoSteps(this.kernel, steps);
        if (undoFailures.length > 0) this.image = this.resync(this.image);
        throw new MfcError("E_STATE_WRITE", `State file ${this.store.path} could not be saved: ${(err as Error).message}; kernel changes were rolled back.`, {
          path: this.store.path, ...(undoFailures.length > 0 ? { undo_failures: undoFailures } : {}),
        });
      }
      if (delta) {
        next.routes.mergeInto(this.config.routes);
        this.refs = delta.refs;
        for (const [key, entry] of delta.mfcs) {
          if (entry) current.mfcs.set(key, entry);
          else current.mfcs.delete(key);
        }
        this.image = { vifs: delta.vifs, mfcs: current.mfcs };
      } else {
        this.config = cloneConfig(next);
        this.refs = interfaceRefs(this.config);
        this.image = target as Image;
      }
      return { changes };
    });
  }

  /**
   * Interfaces came or went: bring the kernel in line with the Config (no save — the Config is
   * unchanged). Routes whose interfaces vanished become pending; returning ones are reinstalled.
   */
  reconcile(): Promise<TxResult> {
    return this.serial.run(() => {
      const current = this.liveImage();
      this.image = current;
      const target = realize(this.config, current, this.links);
      const steps = planSteps(current, target);
      try {
        this.applyOrThrow(steps);
        this.image = target;
        this.degraded = undefined; // the kernel matches the Config again
      } catch (err) {
        this.log(3, `reconcile failed: ${(err as Error).message}`);
        this.image = this.resync(target);
      }
      if (steps.length > 0) this.log(6, `reconciled interfaces: ${steps.length} kernel step(s)`);
      return Promise.resolve({ changes: steps.map(describeStep) });
    });
  }

  /** Waits for the transaction in flight (SIGTERM finishes it before MRT_DONE). */
  idle(): Promise<void> {
    return this.serial.idle();
  }

  /**
   * The installed image minus VIFs whose device is gone: the kernel deleted those VIFs itself when
   * the device was removed, but MFC entries keep the stale index (STACK.md), so the plan must
   * rewrite or remove every entry that still names them.
   */
  private liveImage(): Image {
    const vanished = new Set<number>();
    for (const vif of this.image.vifs.values()) {
      if (this.links.nameOf(vif.ifindex) === undefined) vanished.add(vif.vifi);
    }
    if (vanished.size === 0) return this.image;
    const vifs = new Map([...this.image.vifs].filter(([, v]) => !vanished.has(v.vifi)));
    // Entries naming a vanished VIF are stale: the kernel still holds the old index, and re-adding
    // them (an undo) would silently lose that OIF. Marked stale, every plan rewrites them.
    const mfcs = new Map<string, MfcImage>();
    for (const [key, m] of this.image.mfcs) {
      const stale = vanished.has(m.parent) || m.oifs.some((o) => vanished.has(o.vifi));
      mfcs.set(key, stale ? { ...m, stale: true } : m);
    }
    const staleVifis = new Set([...(this.image.staleVifis ?? []), ...vanished]);
    return { vifs, mfcs, staleVifis };
  }

  private applyOrThrow(steps: Step[]): void {
    try {
      applySteps(this.kernel, steps);
    } catch (err) {
      if (!(err instanceof StepFailed)) throw err;
      if (err.undoFailures.length > 0) this.image = this.resync(this.image);
      throw new MfcError("E_KERNEL", `Kernel call ${err.cause.call} failed with ${err.cause.errnoName} at step ${err.index + 1} of ${steps.length}; ${
        err.undoFailures.length === 0 ? "everything was rolled back" : "rollback was incomplete, the table was resynchronised"}.`, {
        call: err.cause.call, errno: err.cause.errnoName, step: err.index + 1, steps: steps.length,
        failed_step: describeStep(err.step),
        ...(err.undoFailures.length > 0 ? { undo_failures: err.undoFailures, degraded: this.degraded ?? null } : {}),
      });
    }
  }

  /**
   * Last resort when an undo failed: the kernel's table is no longer known exactly, so flush it and
   * reinstall `want` step by step. Returns the image that actually got installed.
   */
  private resync(want: Image): Image {
    this.log(2, "rollback incomplete: flushing the multicast table and reinstalling the last committed state");
    try {
      this.kernel.flushAll();
    } catch (err) {
      this.log(2, `MRT_FLUSH failed: ${(err as Error).message}`);
    }
    const got: Image = emptyImage();
    const failures: string[] = [];
    for (const step of planSteps(emptyImage(), want)) {
      try {
        runStep(this.kernel, step);
        if (step.op === "add_vif") got.vifs.set(step.vif.ifname, step.vif);
        else if (step.op === "add_mfc") got.mfcs.set(step.entry.key, step.entry);
      } catch (err) {
        if (!(err instanceof KernelError)) throw err;
        failures.push(`${step.op}: ${err.message}`);
      }
    }
    this.degraded = failures.length > 0 ? `resync left ${failures.length} step(s) failed: ${failures.slice(0, 3).join("; ")}` : undefined;
    if (this.degraded) this.log(2, this.degraded);
    return got;
  }
}
