/**
 * After a large restore, V8 keeps the heap it grew for parsing the state file (measured: RSS
 * ~190 MB at 100 000 routes for ~35 MB of live data) until a full GC followed by an idle period
 * lets its memory reducer return pages; a daemon that then sits idle never gets there. One full
 * GC right after the restore does it. `gc` exists only when Node was started with --expose-gc
 * (every launcher of the daemon passes it: the packaged wrapper, the shebang, run-dev.sh, the
 * tests); turning the flag on at run time is documented by Node as unsafe. Without it nothing is
 * lost but memory.
 */
export function releaseMemory(): void {
  const gc = (globalThis as { gc?: unknown }).gc;
  if (typeof gc === "function") (gc as () => void)();
}

/**
 * Calls releaseMemory once, `delayMs` after the last of a burst of large requests (a 100 000-route
 * SHOW builds ~15 MB of JSON); a full GC then costs tens of milliseconds, once.
 */
export class MemoryHygiene {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly delayMs = 2_000) {}

  largeWorkDone(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(releaseMemory, this.delayMs);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
