/**
 * The transaction engine: validate -> plan -> apply with undo log -> commit in memory -> save
 * (shared by the transactions that queued meanwhile) -> answer; a failed save undoes them all.
 * Kernel, memory and state file change together or not at all (SPEC §6.1, §6.2). It reaches the kernel
 * only through KernelPort, so a fake kernel can fail any step.
 */
import { MfcError } from "../errors/codes.js";
import { KernelError } from "../kernel/errors.js";
import type { KernelPort, LinkResolver } from "../kernel/port.js";
import { emptyConfig, interfaceRefs, neededInterfaces, sameRoute, vifKeyIfname, vifLabel, type Config, type Join, type MapConfig, type Route } from "../model/types.js";
import { isGroupRange } from "../model/ipv4.js";
import type { Op } from "../protocol/schema.js";
import type { Delta, StateStore } from "../state/store.js";
import { StepFailed, applySteps, runStep, undoSteps, type UndoFailure } from "./apply.js";
import { emptyImage, entrySlots, keyOfVif, vifCounts, vifSlot, type Image, type JoinImage, type MfcImage, type VifImage } from "./image.js";
import { describeStep, planSteps, type Step } from "./plan.js";
import { converge, convergeJoins } from "./converge.js";
import { admitInterfaces, realize, type Refusals } from "./realize.js";
import { planTouched, type DeltaPlan } from "./incremental.js";
import { liveJoins, planJoins, realizeJoins, type JoinTarget } from "./joins.js";
import { CachedLinks } from "./link_cache.js";
import { applyOps, configChanged, takeConfig, touchedBy, type Draft } from "./operations.js";
import { Serial } from "./serial.js";

/**
 * What a transaction did: the kernel steps, described (`changes`) only when asked. An apply of
 * 100 000 routes is answered in pieces, each described as it is written (handlers.ts), so its
 * 100 000 descriptions never exist at once.
 */
export class TxResult {
  private described: Record<string, unknown>[] | undefined;
  constructor(readonly steps: readonly Step[]) {}

  get changes(): Record<string, unknown>[] {
    return (this.described ??= this.steps.map(describeStep));
  }
}

export interface Snapshot { config: Config; image: Image }

export type Logger = (priority: number, message: string) => void;

interface Queued {
  ops: readonly Op[];
  /** An APPLY's routes array as the state file writes it (protocol/apply_line.ts): its snapshot's routes. */
  routesText?: Uint8Array | undefined;
  resolve: (result: TxResult) => void;
  reject: (err: unknown) => void;
}

/** A validated plan: the config after the transaction and the kernel steps that get there. */
interface Plan {
  next: Draft;
  current: Image;
  refused: Refusals;
  steps: Step[];
  /** The routes-only shortcut (O(change)); otherwise `target` is the whole new image. */
  delta?: DeltaPlan;
  target?: Image;
  joins: JoinTarget;
}

function templateKeysOf(config: Config): Set<string> {
  const keys = new Set<string>();
  for (const [key, route] of config.routes) if (isGroupRange(route.group)) keys.add(key);
  return keys;
}

/** Operations per group at most (one APPLY counts its routes, pins and joins). */
export const GROUP_WORK = 10_000;

function workOf(ops: readonly Op[]): number {
  let n = 0;
  for (const op of ops) n += op.action === "APPLY" ? op.routes.length + op.vifs.length + op.joins.length : 1;
  return n;
}

function mergeDeltas(a: Delta | undefined, b: Delta | undefined): Delta | undefined {
  if (!a || !b) return undefined; // one of them rewrites everything: so does the group's save
  for (const key of b.routes) a.routes.add(key);
  for (const name of b.vifs) a.vifs.add(name);
  for (const key of b.joins) a.joins.add(key);
  return a;
}

/** An undo failure as clients see it. */
const described = ({ step, call, errno }: UndoFailure): Omit<UndoFailure, "stillDone"> => ({ step, call, errno });

function putBack<K, V>(map: Map<K, V>, old: ReadonlyMap<K, V | undefined>): void {
  for (const [key, value] of old) {
    if (value === undefined) map.delete(key);
    else map.set(key, value);
  }
}

export class Engine {
  /** The committed Config: real Maps, edited in place only at commit. */
  private config: MapConfig = emptyConfig();
  /** References per interface in `config`, kept up to date for O(change) planning. */
  private refs = new Map<string, number>();
  private image: Image = emptyImage();
  private readonly serial = new Serial();
  /** Transactions waiting for the next group commit. */
  private readonly queued: Queued[] = [];
  private groupScheduled = false;
  /** Set when a resync or a convergence could not install everything; cleared by a clean reconcile. */
  private tableProblem: string | undefined;

  constructor(
    private readonly kernel: KernelPort,
    private readonly links: LinkResolver,
    private readonly store: StateStore,
    private readonly log: Logger = () => undefined,
    /** Asks for a reconcile soon: a transaction freed a VIF that a waiting interface can take. */
    private readonly wake: () => void = () => undefined,
    /** Told after every change of configuration or kernel image (template flows follow it). */
    private readonly changed: () => void = () => undefined,
  ) {}

  /** Counts changes of the configuration (commits, their rollbacks, restores): caches key on it. */
  get configVersion(): number {
    return this.version;
  }

  private version = 0;
  /** Keys of the routes that are templates (group ranges), kept in O(change) for the flows. */
  private templateKeys = new Set<string>();

  /** The route keys of the templates: read synchronously, like snapshot(). */
  templates(): ReadonlySet<string> {
    return this.templateKeys;
  }

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

  /** Interfaces the configuration needs that have no VIF (or MIF: "eth0 (IPv6)"), and why (for status). */
  waitingInterfaces(): ReadonlyMap<string, string> {
    return new Map([...this.image.waiting ?? []].map(([key, why]) => [vifLabel(key), why]));
  }

  /** Something waits that a retry could install (a refusal, or a VIF that may have come free). */
  retryWanted(): boolean {
    if ((this.image.refusedRoutes?.size ?? 0) > 0) return true;
    for (const [name, why] of this.image.waiting ?? []) {
      if (why !== "interface missing" || this.links.indexOf(vifKeyIfname(name)) !== undefined) return true;
    }
    for (const [key, why] of this.image.joinsWaiting ?? []) {
      const join = this.config.joins.get(key);
      if (why !== "interface missing" || (join && this.links.indexOf(join.ifname) !== undefined)) return true;
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
      this.templateKeys = templateKeysOf(this.config);
      this.version++;
      this.converge(emptyImage());
      this.changed();
      return Promise.resolve({ routes: loaded.routes.size, installed: this.image.mfcs.size });
    });
  }

  /**
   * One all-or-nothing transaction for a list of operations (a single request or a BATCH).
   * Transactions that arrive while a save is in flight are committed together (group commit,
   * `commitGroup`): each is still answered only after its change is durable.
   */
  transact(ops: readonly Op[], dryRun: boolean, routesText?: Uint8Array): Promise<TxResult> {
    if (dryRun) {
      return this.serial.run(() => Promise.resolve(new TxResult(this.plan(ops, new CachedLinks(this.links))?.steps ?? [])));
    }
    return new Promise<TxResult>((resolve, reject) => {
      this.queued.push({ ops, routesText, resolve, reject });
      if (this.groupScheduled) return;
      this.groupScheduled = true;
      void this.serial.run(() => this.commitGroup());
    });
  }

  /**
   * Commits every transaction queued so far as one group: each is validated, planned and applied
   * to the kernel and to memory in arrival order (so each sees the ones before it), then one save
   * makes them all durable, then all are answered. A transaction that fails validation or that the
   * kernel refuses is rolled back alone and changes nothing; the others go on. If the shared save
   * fails, every change of the group is undone in reverse order and each fails with E_STATE_WRITE
   * (SPEC §6.1/§6.2 hold per transaction: none of them is acknowledged, none remains).
   */
  private async commitGroup(): Promise<void> {
    // A group starts a turn of the event loop after the job before it: that job's answers (and
    // their audit lines) run to their writes first, however many promise steps that takes, instead
    // of waiting behind this group's synchronous work (an APPLY of 100 000 routes holds the loop
    // ~1 s); and what arrives meanwhile joins the group.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const group = this.takeGroup();
    this.groupScheduled = this.queued.length > 0;
    if (this.groupScheduled) void this.serial.run(() => this.commitGroup());
    try {
      await this.runGroup(group);
    } catch (err) {
      // A bug, not a refusal: nobody may wait for an answer forever (answered ones ignore this).
      // One sent back to be planned again is not answered here: it still runs, and answers then.
      for (const tx of group) if (!this.queued.includes(tx)) tx.reject(err);
    }
  }

  private async runGroup(group: readonly Queued[]): Promise<void> {
    const answers: (() => void)[] = [];
    const staged: { tx: Queued; steps: Step[]; undo: () => void; answer: number }[] = [];
    /** Answers (no-ops, refusals) computed on top of staged changes: void if the save fails. */
    const dependent: { tx: Queued; answer: number }[] = [];
    let delta: Delta | undefined = { routes: new Set(), vifs: new Set(), joins: new Set() };
    const vifsBefore = vifCounts(this.image);
    // The group runs synchronously up to its save: the interface table cannot change meanwhile,
    // so every name is looked up once for all of it.
    const links = new CachedLinks(this.links);
    const vanished = [...(this.image.joins?.values() ?? [])].filter((j) => links.nameOf(j.ifindex) === undefined);
    for (const tx of group) {
      let plan: Plan | undefined;
      try {
        plan = this.plan(tx.ops, links);
        if (plan) {
          this.image = plan.current;
          this.applyOrThrow(plan.steps, (plan.delta ?? plan.target)?.vifs);
        }
      } catch (err) {
        if (staged.length > 0) dependent.push({ tx, answer: answers.length });
        answers.push(() => tx.reject(err));
        continue;
      }
      // Nothing changes, so nothing is written: a no-op cannot fail on a full disk.
      if (!plan) {
        if (staged.length > 0) dependent.push({ tx, answer: answers.length });
        answers.push(() => tx.resolve(new TxResult([])));
        continue;
      }
      const result = new TxResult(plan.steps);
      staged.push({ tx, steps: plan.steps, undo: this.commitInMemory(plan), answer: answers.length });
      answers.push(() => tx.resolve(result));
      delta = mergeDeltas(delta, touchedBy(tx.ops));
    }
    let saved = false;
    if (staged.length > 0) {
      try {
        await this.store.save(this.config, delta, wholeRoutesText(staged));
        saved = true;
      } catch (err) {
        const undoFailures: UndoFailure[] = [];
        for (const s of [...staged].reverse()) {
          undoFailures.push(...undoSteps(this.kernel, s.steps));
          s.undo();
        }
        if (undoFailures.length > 0) this.image = this.resync(this.image, undoFailures);
        const repaired = await this.repairStore();
        const failure = new MfcError("E_STATE_WRITE", `State file ${this.store.path} could not be saved: ${(err as Error).message}; kernel changes were rolled back.`, {
          path: this.store.path, ...(undoFailures.length > 0 ? { undo_failures: undoFailures.map(described) } : {}),
          ...(repaired ? {} : { state_file_needs_repair: true }),
          ...(staged.length > 1 ? { transactions_in_failed_save: staged.length } : {}),
        });
        for (const s of staged) answers[s.answer] = () => s.tx.reject(failure);
        // A no-op or a refusal decided on top of the undone changes is not the answer on the state
        // that stands: those transactions are planned again, first in the next group.
        for (const d of dependent) answers[d.answer] = () => undefined;
        if (dependent.length > 0) this.requeue(dependent.map((d) => d.tx));
      }
    }
    for (const answer of answers) answer();
    if (staged.length > 0 && saved) this.releaseVanishedJoins(vanished);
    if (staged.length > 0) this.changed();
    // Per table: freeing VIFs while adding as many MIFs still frees room for waiting interfaces.
    const vifsAfter = vifCounts(this.image);
    if ((vifsAfter[4] < vifsBefore[4] || vifsAfter[6] < vifsBefore[6]) && this.retryWanted()) this.wake();
  }

  /**
   * Memberships on a device that was gone when the group began: the kernel dropped them with the
   * device and the commit dropped them from the image; leaving frees the socket's entry. Best
   * effort, after the save, outside any transaction: there is nothing to undo.
   */
  private releaseVanishedJoins(vanished: readonly JoinImage[]): void {
    for (const j of vanished) {
      if (this.image.joins?.get(j.key)?.ifindex === j.ifindex) continue; // still listed: reconcile leaves it
      try {
        this.kernel.leave(j);
      } catch (err) {
        if (!(err instanceof KernelError)) throw err;
      }
    }
  }

  /**
   * The next group: everything queued, up to GROUP_WORK operations (a group runs synchronously up
   * to its save: a bound keeps other clients and the watchdog from waiting on many big applies).
   */
  private takeGroup(): Queued[] {
    const group: Queued[] = [];
    let work = 0;
    for (let tx = this.queued[0]; tx !== undefined; tx = this.queued[0]) {
      const w = workOf(tx.ops);
      if (group.length > 0 && work + w > GROUP_WORK) break;
      group.push(tx);
      this.queued.shift();
      work += w;
    }
    return group;
  }

  private requeue(txs: readonly Queued[]): void {
    this.queued.unshift(...txs);
    if (this.groupScheduled) return;
    this.groupScheduled = true;
    void this.serial.run(() => this.commitGroup());
  }

  /** Validates and plans `ops` against the current state; undefined when they change nothing. */
  private plan(ops: readonly Op[], links: LinkResolver): Plan | undefined {
    const next = applyOps(this.config, ops, links);
    if (!configChanged(this.config, next)) return undefined;
    const current = this.liveImage(links);
    const refused = this.holdBack(current, next);
    // A vanished VIF leaves stale indices in untouched entries: only the full plan rewrites them.
    const routesOnly = current.staleVifis === undefined && !next.routes.isCleared && !next.vifs.isCleared &&
      next.vifs.changedKeys().next().done === true;
    const delta = routesOnly ? planTouched(this.config, next, next.routes.changedKeys(), current, this.refs, links, refused) : undefined;
    const joins = this.joinTarget(next, current, links);
    // Memberships of a vanished device are no step of this transaction (undoing a leave there
    // would fail with ENODEV and flush the table): releaseVanishedJoins() dropped them first.
    const joinSteps = planJoins(liveJoins(current.joins, links), joins.joins);
    if (delta) return { next, current, refused, steps: [...delta.steps, ...joinSteps], delta, joins };
    admitInterfaces(neededInterfaces(next), this.refs);
    const target = realize(next, current, links, refused);
    return { next, current, refused, steps: [...planSteps(current, target), ...joinSteps], target, joins };
  }

  /**
   * The memberships after a transaction. A join the kernel refused at restore or reconcile keeps
   * waiting while the transaction leaves it alone, like a refused route (reconcile retries it).
   */
  private joinTarget(next: Draft, current: Image, links: LinkResolver): JoinTarget {
    const held = new Map<string, string>();
    for (const [key, why] of current.joinsWaiting ?? []) {
      if (why !== "interface missing" && this.config.joins.has(key) && next.joins.has(key)) held.set(key, why);
    }
    return realizeJoins(next.joins, links, held);
  }

  /**
   * Makes an applied plan the committed state in memory; returns what puts the state before it
   * back (the group's save may still fail). The routes-only path edits the maps in place, so it
   * remembers the entries it replaces; the full path builds new objects and keeps the old ones.
   */
  private commitInMemory(plan: Plan): () => void {
    const { config, refs, templateKeys } = this;
    this.version++;
    const image = plan.current;
    if (plan.delta) {
      const oldRoutes = new Map<string, Route | undefined>();
      for (const key of plan.next.routes.changedKeys()) oldRoutes.set(key, config.routes.get(key));
      for (const key of oldRoutes.keys()) {
        const route = plan.next.routes.get(key);
        if (route && isGroupRange(route.group)) templateKeys.add(key);
        else templateKeys.delete(key);
      }
      const oldJoins = new Map<string, Join | undefined>();
      for (const key of plan.next.joins.changedKeys()) oldJoins.set(key, config.joins.get(key));
      const oldMfcs = new Map<string, MfcImage | undefined>();
      for (const key of plan.delta.mfcs.keys()) oldMfcs.set(key, image.mfcs.get(key));
      plan.next.routes.mergeInto(config.routes);
      plan.next.joins.mergeInto(config.joins);
      for (const [key, entry] of plan.delta.mfcs) {
        if (entry) image.mfcs.set(key, entry);
        else image.mfcs.delete(key);
      }
      this.refs = plan.delta.refs;
      this.image = {
        vifs: plan.delta.vifs, mfcs: image.mfcs, waiting: plan.delta.waiting, refusedRoutes: plan.refused.routes,
        joins: plan.joins.joins, joinsWaiting: plan.joins.waiting,
      };
      return () => {
        putBack(config.routes, oldRoutes);
        putBack(config.joins, oldJoins);
        putBack(image.mfcs, oldMfcs);
        for (const [key, old] of oldRoutes) {
          if (old && isGroupRange(old.group)) templateKeys.add(key);
          else templateKeys.delete(key);
        }
        this.restoreCommitted(config, refs, image, templateKeys);
      };
    }
    this.config = takeConfig(plan.next);
    this.refs = interfaceRefs(this.config);
    this.templateKeys = templateKeysOf(this.config);
    this.image = { ...(plan.target as Image), refusedRoutes: plan.refused.routes, joins: plan.joins.joins, joinsWaiting: plan.joins.waiting };
    return () => this.restoreCommitted(config, refs, image, templateKeys);
  }

  private restoreCommitted(config: MapConfig, refs: Map<string, number>, image: Image, templateKeys: Set<string>): void {
    this.version++;
    this.templateKeys = templateKeys;
    this.config = config;
    this.refs = refs;
    this.image = image;
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
      this.changed();
      return Promise.resolve(new TxResult(steps));
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
    const joins = convergeJoins(this.kernel, this.config.joins, from.joins, this.links);
    this.image = { ...result.image, refusedRoutes: result.refused.routes, joins: joins.joins, joinsWaiting: joins.waiting };
    for (const [name, why] of result.refused.vifs) this.log(4, `interface ${vifLabel(name)}: ${why}; its routes stay pending`);
    for (const [key, why] of result.refused.routes) this.log(4, `route ${key}: ${why}; it stays pending`);
    for (const [key, why] of joins.waiting) if (why !== "interface missing") this.log(4, `join ${key}: ${why}; it stays pending`);
    const problems = [...result.problems, ...joins.problems];
    this.tableProblem = problems.length > 0 ? `could not converge: ${problems.slice(0, 3).join("; ")}` : undefined;
    if (this.tableProblem) this.log(3, this.tableProblem);
    // (A restore's 100 000 steps are not copied for the joins' few.)
    return joins.applied.length === 0 ? result.applied : [...result.applied, ...joins.applied];
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
  private liveImage(links: LinkResolver = this.links): Image {
    const vanished = new Set<number>();
    for (const vif of this.image.vifs.values()) {
      if (links.nameOf(vif.ifindex) === undefined) vanished.add(vifSlot(vif.family, vif.vifi));
    }
    if (vanished.size === 0) return this.image;
    const vifs = new Map([...this.image.vifs].filter(([, v]) => !vanished.has(vifSlot(v.family, v.vifi))));
    // Entries naming a vanished VIF are stale: the kernel still holds the old index, and re-adding
    // them (an undo) would silently lose that OIF. Marked stale, every plan rewrites them.
    const mfcs = new Map<string, MfcImage>();
    for (const [key, m] of this.image.mfcs) {
      const stale = entrySlots(m).some((slot) => vanished.has(slot));
      mfcs.set(key, stale ? { ...m, stale: true } : m);
    }
    const staleVifis = new Set([...(this.image.staleVifis ?? []), ...vanished]);
    return { ...this.image, vifs, mfcs, staleVifis };
  }

  private applyOrThrow(steps: Step[], vifs: ReadonlyMap<string, VifImage> | undefined): void {
    try {
      applySteps(this.kernel, steps, vifs);
    } catch (err) {
      if (!(err instanceof StepFailed)) throw err;
      if (err.undoFailures.length > 0) this.image = this.resync(this.image, err.undoFailures);
      throw new MfcError("E_KERNEL", `Kernel call ${err.cause.call} failed with ${err.cause.reason} at step ${err.index + 1} of ${steps.length}; ${
        err.undoFailures.length === 0 ? "everything was rolled back" : "rollback was incomplete, the table was resynchronised"}.`, {
        call: err.cause.call, errno: err.cause.errnoName, step: err.index + 1, steps: steps.length,
        failed_step: describeStep(err.step),
        ...(err.undoFailures.length > 0 ? { undo_failures: err.undoFailures.map(described), degraded: this.tableProblem ?? null } : {}),
      });
    }
  }

  /**
   * Last resort when an undo failed: the kernel's table is no longer known exactly, so flush it and
   * reinstall `want` step by step. MRT_FLUSH leaves memberships alone: those are known exactly
   * (`want`'s, plus the joins and leaves whose undo failed) and brought back to the Config's.
   * Returns the image that actually got installed.
   */
  private resync(want: Image, undoFailures: readonly UndoFailure[]): Image {
    this.log(2, "rollback incomplete: flushing the multicast table and reinstalling the last committed state");
    try {
      this.kernel.flushAll();
    } catch (err) {
      this.log(2, `MRT_FLUSH failed: ${(err as Error).message}`);
    }
    const held = new Map(want.joins ?? []);
    for (const { stillDone: s } of undoFailures) {
      if (s.op === "join") held.set(s.join.key, s.join);
      else if (s.op === "leave") held.delete(s.join.key);
    }
    const joins = convergeJoins(this.kernel, this.config.joins, held, this.links);
    // staleVifis stay reserved: the stale entries are reinstalled as they were, still naming them.
    const got: Image = {
      ...emptyImage(), waiting: want.waiting, refusedRoutes: want.refusedRoutes, joins: joins.joins, joinsWaiting: joins.waiting,
      ...(want.staleVifis === undefined ? {} : { staleVifis: want.staleVifis }),
    };
    const failures: string[] = [...joins.problems];
    for (const step of planSteps(emptyImage(), want)) {
      try {
        runStep(this.kernel, step);
        if (step.op === "add_vif") got.vifs.set(keyOfVif(step.vif), step.vif);
        else if (step.op === "add_mfc") got.mfcs.set(step.entry.key, step.entry);
      } catch (err) {
        if (!(err instanceof KernelError)) throw err;
        failures.push(`${step.op}: ${err.message}`);
      }
    }
    for (const [key, why] of joins.waiting) if (why !== "interface missing") failures.push(`join ${key}: ${why}`);
    this.tableProblem = failures.length > 0 ? `resync left ${failures.length} step(s) failed: ${failures.slice(0, 3).join("; ")}` : undefined;
    if (this.tableProblem) this.log(2, this.tableProblem);
    return got;
  }

}

/**
 * The routes array of the state after `staged`, as written by the one of them that set them all:
 * a lone APPLY of every family whose routes came as the state file writes them (then the state's
 * routes are that APPLY's, in its order: operations.ts). The snapshot of a 100 000-route APPLY
 * then writes those bytes as they came instead of making ~9 MB of JSON again.
 */
function wholeRoutesText(staged: readonly { tx: Queued }[]): Uint8Array | undefined {
  const only = staged.length === 1 ? staged[0]?.tx : undefined;
  const op = only?.ops.length === 1 ? only.ops[0] : undefined;
  return op?.action === "APPLY" && op.family === undefined ? only?.routesText : undefined;
}
