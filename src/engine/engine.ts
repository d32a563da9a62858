/**
 * The transaction engine: validate -> plan -> apply with undo log -> save -> commit. Kernel,
 * memory and state file change together or not at all (SPEC §6.1, §6.2). It reaches the kernel
 * only through KernelPort, so a fake kernel can fail any step.
 */
import { MfcError } from "../errors/codes.js";
import { KernelError } from "../kernel/errors.js";
import type { KernelPort, LinkResolver } from "../kernel/port.js";
import { cloneConfig, emptyConfig, interfaceRefs, neededInterfaces, sameRoute, type Config, type MapConfig } from "../model/types.js";
import type { Op } from "../protocol/schema.js";
import type { StateStore } from "../state/store.js";
import { StepFailed, applySteps, runStep, undoSteps } from "./apply.js";
import { emptyImage, type Image, type MfcImage } from "./image.js";
import { describeStep, planSteps, type Step } from "./plan.js";
import { converge } from "./converge.js";
import { admitInterfaces, realize } from "./realize.js";
import { planTouched } from "./incremental.js";
import { CachedLinks } from "./link_cache.js";
import { applyOps, configChanged, touchedBy, type Draft } from "./operations.js";
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
  /** Set when a resync or a convergence could not install everything; cleared by a clean reconcile. */
  private tableProblem: string | undefined;

  constructor(
    private readonly kernel: KernelPort,
    private readonly links: LinkResolver,
    private readonly store: StateStore,
    private readonly log: Logger = () => undefined,
    /** Asks for a reconcile soon: a transaction freed a VIF that a waiting interface can take. */
    private readonly wake: () => void = () => undefined,
  ) {}

  /** Why the daemon cannot promise kernel = configuration = state file right now, if it cannot. */
  get degraded(): string | undefined {
    const parts = [this.tableProblem];
    if (this.store.needsRepair) parts.push(`state file ${this.store.path} may hold a refused change (saving the acknowledged state again failed); retrying`);
    const text = parts.filter((p) => p !== undefined).join("; ");
    return text === "" ? undefined : text;
  }

  /**
   * A consistent view for readers. It stays consistent until the next commit, which edits the maps
   * in place: read it synchronously, or copy what must be kept.
   */
  snapshot(): Snapshot {
    return { config: this.config, image: this.image };
  }

  /** Interfaces the configuration needs that have no VIF, and why (for status). */
  waitingInterfaces(): ReadonlyMap<string, string> {
    return this.image.waiting ?? new Map();
  }

  /** Something waits that a retry could install (a refusal, or a VIF that may have come free). */
  retryWanted(): boolean {
    if ((this.image.refusedRoutes?.size ?? 0) > 0) return true;
    for (const [name, why] of this.image.waiting ?? []) {
      if (why !== "interface missing" || this.links.indexOf(name) !== undefined) return true;
    }
    return false;
  }

  /**
   * Start-up: load the state file and install it before anyone is served (SPEC §6.3). Never
   * refuses an acknowledged state: what does not fit or is refused stays pending with a reason.
   * undefined when there is no state file yet.
   */
  async restore(): Promise<{ routes: number; installed: number } | undefined> {
    const loaded = await this.store.load();
    if (!loaded) return undefined; // no state yet: a first start
    return this.serial.run(() => {
      this.config = loaded; // a store hands over a config of its own, not one it keeps
      this.refs = interfaceRefs(this.config);
      this.converge(emptyImage());
      return Promise.resolve({ routes: loaded.routes.size, installed: this.image.mfcs.size });
    });
  }

  /** One all-or-nothing transaction for a list of operations (a single request or a BATCH). */
  transact(ops: readonly Op[], dryRun: boolean): Promise<TxResult> {
    return this.serial.run(async () => {
      const links = new CachedLinks(this.links);
      const next = applyOps(this.config, ops, links);
      // Nothing changes, so nothing is written: a no-op cannot fail on a full disk.
      if (!configChanged(this.config, next)) return { changes: [] };
      const current = this.liveImage();
      const refused = this.holdBack(current, next);
      // A vanished VIF leaves stale indices in untouched entries: only the full plan rewrites them.
      const routesOnly = current.staleVifis === undefined && !next.routes.isCleared && !next.vifs.isCleared &&
        next.vifs.changedKeys().next().done === true;
      const delta = routesOnly ? planTouched(this.config, next, next.routes.changedKeys(), current, this.refs, links, refused) : undefined;
      if (!delta) admitInterfaces(neededInterfaces(next), this.refs);
      const target = delta ? undefined : realize(next, current, links, refused);
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
        const repaired = await this.repairStore();
        throw new MfcError("E_STATE_WRITE", `State file ${this.store.path} could not be saved: ${(err as Error).message}; kernel changes were rolled back.`, {
          path: this.store.path, ...(undoFailures.length > 0 ? { undo_failures: undoFailures } : {}),
          ...(repaired ? {} : { state_file_needs_repair: true }),
        });
      }
      const vifsBefore = this.image.vifs.size;
      if (delta) {
        next.routes.mergeInto(this.config.routes);
        this.refs = delta.refs;
        for (const [key, entry] of delta.mfcs) {
          if (entry) current.mfcs.set(key, entry);
          else current.mfcs.delete(key);
        }
        this.image = { vifs: delta.vifs, mfcs: current.mfcs, waiting: delta.waiting, refusedRoutes: refused.routes };
      } else {
        this.config = cloneConfig(next);
        this.refs = interfaceRefs(this.config);
        this.image = { ...(target as Image), refusedRoutes: refused.routes };
      }
      if (this.image.vifs.size < vifsBefore && this.retryWanted()) this.wake();
      return { changes };
    });
  }

  /**
   * What a transaction must leave alone: interfaces already waiting (reconcile installs them, best
   * effort, so they can never fail this change) and routes the kernel refused — except the routes
   * this transaction itself changes, which it tries again (and fails with E_KERNEL if refused).
   * An APPLY that keeps a refused route as it is leaves it waiting, like any other change.
   */
  private holdBack(current: Image, next: Draft): { vifs: Map<string, string>; routes: Map<string, string> } {
    // Waiting interfaces include those the kernel refused (with that reason): realize put them there.
    const vifs = new Map(current.waiting ?? []);
    const routes = new Map<string, string>();
    const changed = next.routes.isCleared ? undefined : new Set(next.routes.changedKeys());
    for (const [key, why] of current.refusedRoutes ?? []) {
      // After FLUSH/APPLY (a cleared draft) a route counts as touched only if it changed or went.
      const before = this.config.routes.get(key);
      const after = next.routes.get(key);
      const untouched = changed ? !changed.has(key) : before !== undefined && after !== undefined && sameRoute(before, after);
      if (untouched) routes.set(key, why);
    }
    return { vifs, routes };
  }

  /**
   * Interfaces came or went, or something waits for a retry: bring the kernel in line with the
   * Config, best effort (no save — the Config is unchanged). Every refusal is tried again.
   */
  reconcile(): Promise<TxResult> {
    return this.serial.run(() => {
      const steps = this.converge(this.liveImage());
      if (steps.length > 0) this.log(6, `reconciled: ${steps.length} kernel step(s)`);
      return Promise.resolve({ changes: steps.map(describeStep) });
    });
  }

  /** Saves the acknowledged config again when a failed save may have left a refused change. */
  repairState(): Promise<boolean> {
    return this.serial.run(() => this.repairStore());
  }

  private async repairStore(): Promise<boolean> {
    if (!this.store.needsRepair) return true;
    try {
      await this.store.save(this.config);
      this.log(5, `state file ${this.store.path} rewritten with the acknowledged state`);
      return true;
    } catch (err) {
      this.log(2, `state file ${this.store.path} may hold a refused change and could not be rewritten: ${(err as Error).message}`);
      return false;
    }
  }

  /** Converges from `from`, records the outcome; returns the kernel steps it took. */
  private converge(from: Image): Step[] {
    const result = converge(this.kernel, this.config, from, this.links);
    this.image = { ...result.image, refusedRoutes: result.refused.routes };
    for (const [name, why] of result.refused.vifs) this.log(4, `interface ${name}: ${why}; its routes stay pending`);
    for (const [key, why] of result.refused.routes) this.log(4, `route ${key}: ${why}; it stays pending`);
    this.tableProblem = result.problems.length > 0 ? `could not converge: ${result.problems.slice(0, 3).join("; ")}` : undefined;
    if (this.tableProblem) this.log(3, this.tableProblem);
    return result.applied;
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
    return { ...this.image, vifs, mfcs, staleVifis };
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
        ...(err.undoFailures.length > 0 ? { undo_failures: err.undoFailures, degraded: this.tableProblem ?? null } : {}),
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
    const got: Image = { ...emptyImage(), waiting: want.waiting, refusedRoutes: want.refusedRoutes };
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
    this.tableProblem = failures.length > 0 ? `resync left ${failures.length} step(s) failed: ${failures.slice(0, 3).join("; ")}` : undefined;
    if (this.tableProblem) this.log(2, this.tableProblem);
    return got;
  }
}
