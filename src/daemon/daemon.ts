/**
 * MfcDaemon: owns the table, restores the state file, then serves the socket (SPEC §6.3), and
 * on SIGTERM/SIGINT finishes the transaction in flight, MRT_DONE, removes the socket (§6.4).
 */
import { Engine } from "../engine/engine.js";
import { openLinkMonitor, type LinkMonitor } from "../kernel/link_monitor.js";
import { MrouteSocket, SystemLinks, TableBusyError } from "../kernel/mroute.js";
import { groupId } from "../kernel/peercred.js";
import { sdNotify } from "../kernel/sdnotify.js";
import { FileStateStore } from "../state/store.js";
import { VERSION } from "../version.js";
import type { DaemonConfig } from "./config.js";
import { gatherFacts } from "./facts.js";
import { RequestHandler } from "./handlers.js";
import { missingCaps } from "./capabilities.js";
import { LOG, log } from "./log.js";
import { MemoryHygiene, releaseMemory } from "./memory.js";
import { ControlServer } from "./server.js";

/** Start-up failed in a way the operator must fix; the message says how. */
export class StartupError extends Error {}

const LINK_SETTLE_MS = 50;
const REPAIR_INTERVAL_MS = 5_000;
/** From this many routes on, a restore, SHOW or transaction hands its memory back (memory.ts). */
const LARGE = 10_000;

export class MfcDaemon {
  private kernel: MrouteSocket | undefined;
  private engine: Engine | undefined;
  private server: ControlServer | undefined;
  private monitor: LinkMonitor | undefined;
  private linkTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private repairTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private readonly memory = new MemoryHygiene();
  private stopping: Promise<void> | undefined;

  constructor(private readonly config: DaemonConfig) {}

  /** Runs until a signal stops it; resolves with the exit status. */
  async mainEntrypoint(): Promise<number> {
    try {
      await this.start();
    } catch (err) {
      log(LOG.crit, `mfc_daemon: cannot start: ${(err as Error).message}`);
      this.shutdownKernel();
      return 1;
    }
    return new Promise<number>((resolve) => {
      const stop = (signal: string): void => {
        log(LOG.notice, `${signal} received: finishing, then releasing the multicast table`);
        this.stop().then(() => resolve(0), (err: unknown) => {
          log(LOG.crit, `stop failed: ${(err as Error).message}`);
          resolve(1);
        });
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
      // smcroute users send HUP to "reload": here it re-checks the kernel against the saved state
      // (interfaces, stale entries) without dropping anything; Node's default would exit.
      process.on("SIGHUP", () => {
        log(LOG.notice, "SIGHUP received: reconciling the kernel with the configuration");
        this.scheduleReconcile();
      });
    });
  }

  async start(): Promise<void> {
    const c = this.config;
    const gid = c.socketGroup === "" ? undefined : groupId(c.socketGroup);
    if (c.socketGroup !== "" && gid === undefined) {
      throw new StartupError(`socket_group '${c.socketGroup}' does not exist (create it: groupadd --system ${c.socketGroup}, or set socket_group = in the config)`);
    }
    const missing = missingCaps(c.table !== undefined);
    if (missing.length > 0) {
      throw new StartupError(`missing capability ${missing.join(" and ")} (run as root, or grant it: AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN)`);
    }
    try {
      this.kernel = new MrouteSocket(c.table);
    } catch (err) {
      if (err instanceof TableBusyError) throw new StartupError(err.message);
      throw new StartupError(`cannot take the multicast routing table: ${(err as Error).message} (needs CAP_NET_RAW${c.table !== undefined ? " and CAP_NET_ADMIN" : ""})`);
    }
    const links = new SystemLinks();
    const store = new FileStateStore(c.stateFile);
    const engine = new Engine(this.kernel, links, store, log);
    this.engine = engine;
    // Link events first, so an interface that appears during the restore is not missed.
    this.monitor = openLinkMonitor(() => this.scheduleReconcile(), () => this.scheduleReconcile());
    const restored = await engine.restore();
    log(LOG.info, `restored ${restored.routes} route(s) from ${c.stateFile}, ${restored.installed} installed`);
    if (restored.routes >= LARGE) {
      releaseMemory();
      this.memory.largeWorkDone(); // once more when idle: V8 returns pages only after a quiet GC
    }
    const facts = (names: Iterable<string>, vifs: number, tableWide: boolean): ReturnType<typeof gatherFacts> => gatherFacts(names, vifs, c.table, tableWide);
    const handler = new RequestHandler(engine, this.kernel, { status: () => this.status() }, facts, (a) => {
      log(LOG.notice, `audit: uid ${a.uid} pid ${a.pid} ${a.action}${a.dryRun ? " (dry run)" : ""}: ${a.outcome}, ${a.kernelSteps} kernel step(s)`);
    }, (entries) => { if (entries >= LARGE) this.memory.largeWorkDone(); });
    this.server = new ControlServer({
      path: c.socketPath, groupId: gid, maxRequestBytes: c.maxRequestBytes,
      maxConnections: c.maxConnections, clientTimeoutMs: c.clientTimeoutMs, requestTimeoutMs: c.requestTimeoutMs,
    }, (line, peer) => handler.handleLine(line, peer));
    await this.server.listen();
    log(LOG.notice, `mfc_daemon ${VERSION} ready on ${c.socketPath} (table ${c.table ?? "default"})`);
    sdNotify(`READY=1\nSTATUS=${this.statusLine()}`);
    this.startWatchdog();
    // After a rollback that could not be completed, keep retrying until the kernel matches again.
    this.repairTimer = setInterval(() => { if (this.engine?.degraded) this.scheduleReconcile(); }, REPAIR_INTERVAL_MS);
    this.repairTimer.unref();
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
    const routes = snap?.config.routes.size ?? 0;
    const installed = snap?.image.mfcs.size ?? 0;
    return {
      version: VERSION, pid: process.pid, uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      table: this.config.table ?? "default", vifs: snap?.image.vifs.size ?? 0,
      routes, routes_installed: installed, routes_pending: routes - installed,
      state_file: this.config.stateFile, socket: this.config.socketPath,
      degraded: this.engine?.degraded ?? null,
      rss_bytes: process.memoryUsage.rss(),
    };
  }

  private statusLine(): string {
    const s = this.status();
    return `${String(s.routes_installed)} route(s) installed, ${String(s.routes_pending)} pending, ${String(s.vifs)} VIF(s)`;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      sdNotify("STOPPING=1");
      clearTimeout(this.linkTimer);
      clearInterval(this.watchdog);
      clearInterval(this.repairTimer);
      this.memory.stop();
      await this.server?.close();
      await this.engine?.idle(); // the transaction in flight completes (and is saved) first
      this.shutdownKernel();
      log(LOG.notice, "stopped: multicast table released (MRT_DONE), state file kept");
    })();
    return this.stopping;
  }

  private shutdownKernel(): void {
    this.monitor?.close();
    this.monitor = undefined;
    this.kernel?.close();
    this.kernel = undefined;
  }
}
