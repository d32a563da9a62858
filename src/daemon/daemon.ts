/**
 * MfcDaemon: owns the table, restores the state file, then serves the socket (SPEC §6.3), and
 * on SIGTERM/SIGINT finishes the transaction in flight, MRT_DONE, removes the socket (§6.4).
 */
import type { Facts } from "../diagnostics/checks.js";
import { Engine } from "../engine/engine.js";
import { vifCounts } from "../engine/image.js";
import { openLinkMonitor, type LinkMonitor } from "../kernel/link_monitor.js";
import { SystemLinks } from "../kernel/mroute.js";
import { TableBusyError } from "../kernel/errors.js";
import { tableFailureMessage } from "./table_failure.js";
import { KernelTables } from "../kernel/tables.js";
import type { Watch } from "../kernel/poll.js";
import type { CounterSource } from "../view/model.js";
import { FlowManager } from "./flows.js";
import { groupId } from "../kernel/peercred.js";
import { sdNotify } from "../kernel/sdnotify.js";
import { StateGuardError, StateLock, checkStateDir } from "../state/guard.js";
import { FileStateStore, StateFileError } from "../state/store.js";
import { VERSION } from "../version.js";
import type { DaemonConfig } from "../config/config.js";
import { gatherFacts } from "./facts.js";
import { RequestHandler } from "./handlers.js";
import { missingCaps } from "./capabilities.js";
import { LOG, afterLogged, log, logInTurn } from "./log.js";
import { MemoryHygiene } from "./memory.js";
import { ControlServer } from "./server.js";

/** Start-up failed in a way the operator must fix; the message says how. */
export class StartupError extends Error {}

const LINK_SETTLE_MS = 50;
const REPAIR_INTERVAL_MS = 5_000;
/** How often template flows are checked for idleness (at most template_idle_s). */
const FLOW_CHECK_MS = 5_000;
/** Retries of a lasting refusal back off to one in this many repair ticks (64 x 5 s). */
const MAX_RETRY_BACKOFF = 64;
/** From this many routes on, a restore, SHOW or transaction hands its memory back (memory.ts). */
const LARGE = 10_000;

export class MfcDaemon {
  private kernel: KernelTables | undefined;
  private engine: Engine | undefined;
  private server: ControlServer | undefined;
  private monitor: LinkMonitor | undefined;
  private upcalls: Watch | undefined;
  private flowTimer: NodeJS.Timeout | undefined;
  private flows: FlowManager | undefined;
  private linkTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private repairTimer: NodeJS.Timeout | undefined;
  /** Back-off of retries for something that waits (retry()): every `retryEvery` ticks. */
  private retryEvery = 1;
  private retrySkipped = 0;
  private readonly startedAt = Date.now();
  private readonly memory = new MemoryHygiene();
  private stopping: Promise<void> | undefined;
  private store: FileStateStore | undefined;
  private lock: StateLock | undefined;
  /** The signal that asked us to stop (a stop asked for during start-up waits for it). */
  private stopSignal: string | undefined;
  /** SIGHUP arrived before the engine could reconcile. */
  private hupPending = false;

  constructor(private readonly config: DaemonConfig) {}

  /** Runs until a signal stops it; resolves with the exit status. */
  async mainEntrypoint(): Promise<number> {
    // Handlers first: a signal during the restore must not kill us by its default action.
    let stopRequested!: () => void;
    const stopSignalled = new Promise<void>((resolve) => { stopRequested = resolve; });
    const onStop = (signal: string): void => {
      if (this.stopSignal) {
        log(LOG.notice, `${signal} received again: already stopping (finishing, then releasing the table)`);
        return;
      }
      this.stopSignal = signal;
      log(LOG.notice, `${signal} received: finishing, then releasing the multicast table`);
      stopRequested();
    };
    process.on("SIGTERM", () => onStop("SIGTERM"));
    process.on("SIGINT", () => onStop("SIGINT"));
    // smcroute users send HUP to "reload": here it re-checks the kernel against the saved state
    // (interfaces, stale entries, refusals) without dropping anything; Node's default would exit.
    process.on("SIGHUP", () => {
      log(LOG.notice, "SIGHUP received: reconciling the kernel with the configuration");
      if (this.server) this.scheduleReconcile();
      else this.hupPending = true;
    });
    try {
      await this.start();
    } catch (err) {
      log(LOG.crit, `mfc_daemon: cannot start: ${(err as Error).message}`);
      this.shutdownKernel();
      return 1;
    }
    await stopSignalled;
    try {
      await this.stop();
      return 0;
    } catch (err) {
      log(LOG.crit, `stop failed: ${(err as Error).message}`);
      return 1;
    }
  }

  async start(): Promise<void> {
    const c = this.config;
    const gid = c.socketGroup === "" ? undefined : groupId(c.socketGroup);
    if (c.socketGroup !== "" && gid === undefined) {
      throw new StartupError(`socket_group '${c.socketGroup}' does not exist (create it: groupadd --system ${c.socketGroup}, or set socket_group = in the config)`);
    }
    try {
      // Before the table is taken: a second daemon on the same state file changes nothing.
      checkStateDir(c.stateFile);
      this.lock = StateLock.acquire(c.stateFile);
    } catch (err) {
      if (err instanceof StateGuardError) throw new StartupError(err.message);
      throw new StartupError(`cannot lock state file ${c.stateFile}: ${(err as Error).message}`);
    }
    const missing = missingCaps(c.table !== undefined);
    if (missing.length > 0) {
      throw new StartupError(`missing capability ${missing.join(" and ")} (run as root, or grant it: AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN)`);
    }
    try {
      // The IPv4 table now; the IPv6 one on first use (tables.ts), so a router without IPv6
      // routes leaves it to others. A restore that finds it owned keeps its IPv6 routes pending.
      this.kernel = new KernelTables(c.table);
    } catch (err) {
      if (err instanceof TableBusyError) throw new StartupError(err.message);
      throw new StartupError(tableFailureMessage(err, c.table !== undefined));
    }
    const links = new SystemLinks();
    const store = new FileStateStore(c.stateFile);
    this.store = store;
    for (const name of await store.removeLeftovers()) log(LOG.notice, `removed ${name}, a temp file left by a crash before its rename`);
    const kernel = this.kernel;
    // The flows need the engine, and the engine tells the flows of every change (never before
    // restore(), below: flowManager exists by then).
    const engine = new Engine(kernel, links, store, log, () => this.scheduleReconcile(), () => flowManager.sync());
    this.engine = engine;
    const flowManager = new FlowManager(kernel, engine, c.templateIdleMs, log);
    this.flows = flowManager;
    // Upcalls from the start: a flow of a template that arrives during the restore is taken too.
    this.upcalls = kernel.watchUpcalls((u) => flowManager.onNoCache(u));
    this.flowTimer = setInterval(() => flowManager.expire(), Math.min(FLOW_CHECK_MS, c.templateIdleMs));
    this.flowTimer.unref();
    // Link events first, so an interface that appears during the restore is not missed.
    this.monitor = openLinkMonitor(() => this.scheduleReconcile(), () => this.scheduleReconcile());
    let restored;
    try {
      restored = await engine.restore();
    } catch (err) {
      if (err instanceof StateFileError) throw new StartupError(err.message);
      throw err;
    }
    for (const note of store.notes) log(LOG.warning, note);
    if (!restored) log(LOG.info, `no state yet: ${c.stateFile} does not exist (the first change creates it)`);
    else log(LOG.info, `restored ${restored.routes} route(s) from ${c.stateFile}, ${restored.installed} installed, ${restored.routes - restored.installed} pending`);
    if (this.stopSignal) return; // stopped during the restore: no listening, no READY
    // The full GC that hands back what parsing the state file grew runs once idle, after READY:
    // run here it delayed readiness by its ~70 ms pause at 100 000 routes.
    if (restored && restored.routes >= LARGE) this.memory.largeWorkDone();
    const facts = (names: Iterable<string>, vifs: Record<4 | 6, number>, tableWide: boolean, withVifCounters: boolean): Facts => {
      const { config, image } = engine.snapshot();
      const read = { image, table: c.table, vifCounters: kernel.vifCounters.bind(kernel) };
      return { ...gatherFacts(names, vifs, tableWide, read, withVifCounters), waiting: image.waiting, refusedRoutes: image.refusedRoutes, joins: config.joins };
    };
    const counters: CounterSource = {
      sgCounters: (origin, group) => kernel.sgCounters(origin, group),
      vifCounters: (family, vifi) => kernel.vifCounters(family, vifi),
      flowsOf: (key) => flowManager.of(key),
    };
    const handler = new RequestHandler(engine, counters, { status: () => this.status() }, facts, (a) => {
      logInTurn(LOG.notice, `audit: uid ${a.uid} pid ${a.pid} ${a.action}${a.dryRun ? " (dry run)" : ""}: ${a.outcome}, ${a.kernelSteps} kernel step(s)`);
    }, (entries) => { if (entries >= LARGE) this.memory.largeWorkDone(); });
    this.server = new ControlServer({
      path: c.socketPath, groupId: gid, maxRequestBytes: c.maxRequestBytes,
      maxConnections: c.maxConnections, clientTimeoutMs: c.clientTimeoutMs, requestTimeoutMs: c.requestTimeoutMs,
    }, (line, peer) => afterLogged(handler.handleLine(line, peer)));
    await this.server.listen();
    log(LOG.notice, `mfc_daemon ${VERSION} ready on ${c.socketPath} (table ${c.table ?? "default"})`);
    sdNotify(`READY=1\nSTATUS=${this.statusLine()}`);
    this.startWatchdog();
    if (this.hupPending) this.scheduleReconcile();
    // Keep retrying what waits: a rollback that could not be completed, interfaces the kernel
    // refused or that found no free VIF, a state file that may still hold a refused change.
    this.repairTimer = setInterval(() => this.retry(), REPAIR_INTERVAL_MS);
    this.repairTimer.unref();
  }

  private retry(): void {
    const engine = this.engine;
    if (!engine || this.stopping) return;
    if (this.store?.needsRepair) {
      engine.repairState().catch((err: unknown) => log(LOG.err, `state repair failed: ${(err as Error).message}`));
    }
    if (engine.degraded) {
      this.scheduleReconcile();
      return;
    }
    if (!engine.retryWanted()) {
      this.retryEvery = 1;
      this.retrySkipped = 0;
      return;
    }
    // A refusal that persists is retried at 5 s, 10 s, 20 s ... at most every ~5 min: each retry is a
    // full plan (~0.4 s at 100 000 routes). Link events and freed VIFs reconcile at once anyway.
    if (++this.retrySkipped < this.retryEvery) return;
    this.retrySkipped = 0;
    this.retryEvery = Math.min(this.retryEvery * 2, MAX_RETRY_BACKOFF);
    this.scheduleReconcile();
  }

  /**
   * WATCHDOG=1 at half the interval systemd asked for. The ping runs on the event loop, so a
   * stalled loop stops it and systemd restarts us (the restart restores the state file).
   */
  private startWatchdog(): void {
    const usec = Number(process.env.WATCHDOG_USEC ?? 0);
    const pid = process.env.WATCHDOG_PID;
    if (!Number.isInteger(usec) || usec <= 0 || (pid !== undefined && Number(pid) !== process.pid)) return;
    this.watchdog = setInterval(() => sdNotify("WATCHDOG=1"), Math.max(1, Math.floor(usec / 2000)));
    this.watchdog.unref();
  }

  private scheduleReconcile(): void {
    if (this.linkTimer || this.stopping) return;
    // Coalesce bursts (an interface flapping, many created at once) into one reconcile.
    this.linkTimer = setTimeout(() => {
      this.linkTimer = undefined;
      this.engine?.reconcile().then(
        () => sdNotify(`STATUS=${this.statusLine()}`),
        (err: unknown) => log(LOG.err, `reconcile failed: ${(err as Error).message}`),
      );
    }, LINK_SETTLE_MS);
  }

  status(): Record<string, unknown> {
    const snap = this.engine?.snapshot();
    const templates = this.flows?.templateCount() ?? 0;
    const routes = snap?.config.routes.size ?? 0;
    const installed = snap?.image.mfcs.size ?? 0;
    const waiting = Object.fromEntries(this.engine?.waitingInterfaces() ?? []);
    const joins = snap?.config.joins.size ?? 0;
    const vifs = snap ? vifCounts(snap.image) : { 4: 0, 6: 0 };
    return {
      version: VERSION, pid: process.pid, uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      table: this.config.table ?? "default", vifs: vifs[4], mifs: vifs[6], ipv6_table: this.kernel?.isIpv6Open() === true ? "owned" : "not in use",
      // A template has no entry of its own: counted apart, with the flows it installed.
      routes, routes_installed: installed, routes_pending: routes - templates - installed, interfaces_waiting: waiting,
      templates, template_flows: this.flows?.size ?? 0,
      joins, joins_pending: joins - (snap?.image.joins?.size ?? 0),
      state_file: this.config.stateFile, socket: this.config.socketPath,
      degraded: this.engine?.degraded ?? null,
      rss_bytes: process.memoryUsage.rss(),
    };
  }

  private statusLine(): string {
    const s = this.status();
    const mifs = s.mifs === 0 ? "" : `, ${String(s.mifs)} MIF(s)`;
    return `${String(s.routes_installed)} route(s) installed, ${String(s.routes_pending)} pending, ${String(s.vifs)} VIF(s)${mifs}`;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      sdNotify("STOPPING=1");
      clearTimeout(this.linkTimer);
      clearInterval(this.watchdog);
      clearInterval(this.repairTimer);
      clearInterval(this.flowTimer);
      this.memory.stop();
      await this.server?.close();
      await this.engine?.idle(); // the transaction in flight completes (and is saved) first
      this.shutdownKernel();
      await this.store?.close();
      this.lock?.release();
      log(LOG.notice, "stopped: multicast table released (MRT_DONE, and MRT6_DONE if IPv6 was in use), state file kept");
    })();
    return this.stopping;
  }

  private shutdownKernel(): void {
    this.monitor?.close();
    this.monitor = undefined;
    this.upcalls?.close(); // libuv must forget the fd before the socket closes
    this.upcalls = undefined;
    const kernel = this.kernel;
    this.kernel = undefined;
    if (!kernel) return;
    try {
      kernel.close();
      log(LOG.info, `MRT_DONE: the kernel released the multicast table${kernel.isIpv6Open() ? " (and MRT6_DONE the IPv6 one)" : ""}`);
    } catch (err) {
      log(LOG.err, `${(err as Error).message}; closing the socket released the table instead`);
    }
  }
}
