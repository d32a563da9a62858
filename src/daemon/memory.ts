/**
 * After a large restore, V8 keeps the heap it grew for parsing the state file (measured: RSS
 * ~190 MB at 100 000 routes for ~35 MB of live data) until a full GC followed by an idle period
 * lets its memory reducer return pages; a daemon that then sits idle never gets there. One full
 * GC once the daemon is idle after the restore (MemoryHygiene, after READY: it pauses ~70 ms at
 * 100 000 routes) does it. `gc` exists only when Node was started with --expose-gc
 * (DAEMON_NODE_FLAGS); turning the flag on at run time is documented by Node as unsafe. Without
 * it nothing is lost but memory.
 */
/**
 * The Node flags every launcher of the daemon passes: the packaged wrapper (scripts/package.sh),
 * the shebang of dist/daemon_main.js, run-dev.sh, the tests and the bench
 * (test/unit/node_flags.test.ts holds them to this list). --expose-gc: releaseMemory.
 * --max-semi-space-size=2 (MiB): a small young generation. With V8's default (16 MiB) the daemon
 * kept ~30 MB more at 100 000 routes (settled RSS 154 MB against 124 MB), and start-up, a bulk
 * apply and 20 concurrent clients measured the same with either (docs/performance.md). V8 reads
 * it only at start: it cannot be set from inside.
 */
export const DAEMON_NODE_FLAGS = ["--expose-gc", "--max-semi-space-size=2"] as const;

function releaseMemory(): void {
  const gc = (globalThis as { gc?: unknown }).gc;
  if (typeof gc === "function") (gc as () => void)();
  // What the GC freed outside V8's heap (Buffers of the state file and of the kernel's batches)
  // stays in glibc's heaps until trimmed: ~3 MB of settled RSS at 100 000 routes, for ~3 ms once.
  // Imported here, not above: the launchers that read DAEMON_NODE_FLAGS need no koffi.
  void import("../kernel/libc.js").then(({ sys }) => sys.mallocTrim(0), () => undefined);
}

/**
 * Calls releaseMemory once, `delayMs` after the last of a burst of large work (a restore, a
 * 100 000-route SHOW that builds ~15 MB of JSON); a full GC then costs tens of milliseconds, once.
 * A burst that never pauses (large SHOWs every second) postpones it by `maxDelayMs` at most.
 */
export class MemoryHygiene {
  private timer: NodeJS.Timeout | undefined;
  /** When the pending GC was first asked for (clock()). */
  private pendingSince: number | undefined;

  constructor(
    private readonly delayMs = 2_000,
    private readonly maxDelayMs = 10_000,
    private readonly release: () => void = releaseMemory,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  largeWorkDone(): void {
    const now = this.clock();
    this.pendingSince ??= now;
    clearTimeout(this.timer);
    const delay = Math.max(0, Math.min(this.delayMs, this.pendingSince + this.maxDelayMs - now));
    this.timer = setTimeout(() => {
      this.pendingSince = undefined;
      this.release();
    }, delay);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.pendingSince = undefined;
  }
}
