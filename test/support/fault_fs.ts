/**
 * StateFs with faults: wraps another StateFs (normally SimFs) and fails a chosen call — the n-th
 * call of one kind, once or from then on for good — with an errno, or makes a write short.
 * Call kinds: open (openForWrite/createExclusive), write, fsync, fdatasync, truncate, close,
 * rename, syncDir, unlink, read, list.
 */
import type { StateFileHandle, StateFs } from "../../src/state/fs_port.js";

export const CALLS = ["open", "write", "short_write", "fsync", "fdatasync", "truncate", "close", "rename", "syncDir", "unlink"] as const;
export type Call = (typeof CALLS)[number];

export interface FsFault { call: Call; nth: number; forGood: boolean; errno?: "EIO" | "ENOSPC" }

export class FaultyFs implements StateFs {
  /** Calls made, by kind (short_write counts writes too). */
  readonly counts = new Map<Call, number>();
  fault: FsFault | undefined;
  /** How many calls the fault made fail (or cut short). */
  injected = 0;

  constructor(private readonly inner: StateFs) {}

  /** Counts the call; throws if the fault says it fails. */
  private hit(call: Call): void {
    const n = (this.counts.get(call) ?? 0) + 1;
    this.counts.set(call, n);
    const f = this.fault;
    if (!f || f.call !== call || call === "short_write") return;
    if (n === f.nth || (f.forGood && n > f.nth)) {
      this.injected++;
      const code = f.errno ?? "EIO";
      throw Object.assign(new Error(`${code}: injected ${call} failure`), { code });
    }
  }

  /** For a short-write fault: how many bytes this write may take (the rest is refused). */
  private writeLimit(length: number): number {
    const n = (this.counts.get("short_write") ?? 0) + 1;
    this.counts.set("short_write", n);
    const f = this.fault;
    if (!f || f.call !== "short_write" || !(n === f.nth || (f.forGood && n > f.nth))) return length;
    this.injected++;
    // Once: half of it goes through (the caller must loop). For good: the disk is full after that.
    return f.forGood && n > f.nth ? 0 : Math.floor(length / 2);
  }

  private wrap(h: StateFileHandle): StateFileHandle {
    return {
      write: async (data, offset, length, position) => {
        this.hit("write");
        const limit = this.writeLimit(length);
        if (limit === 0) return 0;
        return h.write(data, offset, limit, position);
      },
      sync: async () => { this.hit("fsync"); await h.sync(); },
      datasync: async () => { this.hit("fdatasync"); await h.datasync(); },
      truncate: async (length) => { this.hit("truncate"); await h.truncate(length); },
      close: async () => { this.hit("close"); await h.close(); },
    };
  }

  readFile(path: string): Promise<Buffer | undefined> {
    return this.inner.readFile(path);
  }

  async openForWrite(path: string): Promise<StateFileHandle> {
    this.hit("open");
    return this.wrap(await this.inner.openForWrite(path));
  }

  async createExclusive(path: string): Promise<StateFileHandle> {
    this.hit("open");
    return this.wrap(await this.inner.createExclusive(path));
  }

  async rename(from: string, to: string): Promise<void> {
    this.hit("rename");
    await this.inner.rename(from, to);
  }

  async syncDir(dir: string): Promise<void> {
    this.hit("syncDir");
    await this.inner.syncDir(dir);
  }

  async unlink(path: string): Promise<void> {
    this.hit("unlink");
    await this.inner.unlink(path);
  }

  list(dir: string): Promise<string[]> {
    return this.inner.list(dir);
  }
}
