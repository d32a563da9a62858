/**
 * Durable state: a snapshot (`state.json`, replaced atomically: temp file in the same directory,
 * write, fsync, rename, fsync the directory) plus an append-only journal (`state.json.journal`, one
 * fdatasync'd line per transaction). Small tables are rewritten whole every time; once a table is
 * big, a transaction appends one line instead of re-serialising everything, and the journal is
 * folded into a new snapshot when it grows as large as the snapshot (amortised O(change)).
 * A crash at any instant leaves a readable snapshot and a journal whose only possible damage is a
 * torn last line — a transaction that was never acknowledged, which load() drops.
 */
import { mkdir, open, readFile, rename, truncate, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Config, MapConfig } from "../model/types.js";
import { configFromJson, configToJson, journalRecord, replayRecord, type Delta } from "./format.js";

export type { Delta } from "./format.js";

export interface StateStore {
  /**
   * undefined when there is no state yet (first start). Throws StateFileError if unusable. The
   * config returned is the caller's: the store keeps no reference to it.
   */
  load(): Promise<MapConfig | undefined>;
  /** Makes `config` durable. `delta` says what this transaction touched; without it, all of it. */
  save(config: Config, delta?: Delta): Promise<void>;
  readonly path: string;
}

export class StateFileError extends Error {}

export class FileStateStore implements StateStore {
  readonly journalPath: string;
  private seq = 0;
  private snapshotBytes = 0;
  private journalBytes = 0;
  private journal: FileHandle | undefined;
  /** After a failed append the journal's tail is unknown: the next save writes a snapshot. */
  private journalSuspect = false;
  private tornTail = false;

  constructor(readonly path: string) {
    this.journalPath = `${path}.journal`;
  }

  async load(): Promise<MapConfig | undefined> {
    const snapText = await this.read(this.path);
    const journalText = await this.read(this.journalPath);
    if (snapText === undefined && !journalText) return undefined;
    let config: MapConfig;
    try {
      ({ config, seq: this.seq } = snapText === undefined ? { config: configFromJson({ format: "mfc_daemon-state", version: 1, vifs: [], routes: [] }).config, seq: 0 } : configFromJson(JSON.parse(snapText) as unknown));
    } catch (err) {
      throw this.unusable(this.path, err);
    }
    this.snapshotBytes = snapText === undefined ? 0 : Buffer.byteLength(snapText);
    this.journalBytes = this.replay(config, journalText ?? "");
    return config;
  }

  /** Applies journal lines newer than the snapshot; returns the byte length of the valid part. */
  private replay(config: Config, text: string): number {
    let offset = 0;
    let lineNo = 0;
    while (offset < text.length) {
      const nl = text.indexOf("\n", offset);
      lineNo++;
      const line = nl < 0 ? text.slice(offset) : text.slice(offset, nl);
      const isLast = nl < 0 || nl === text.length - 1;
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch (err) {
        // A torn last line is a transaction that crashed before its fsync: never acknowledged.
        if (isLast) break;
        throw this.unusable(this.journalPath, new Error(`line ${lineNo}: ${(err as Error).message}`));
      }
      if (nl < 0) break; // complete JSON but no newline: the write was cut short, same as above
      const seq = typeof json === "object" && json !== null ? (json as { seq?: unknown }).seq : undefined;
      if (typeof seq === "number" && seq <= this.seq) { offset = nl + 1; continue; } // folded into the snapshot
      if (seq !== this.seq + 1) throw this.unusable(this.journalPath, new Error(`line ${lineNo}: sequence ${String(seq)} does not follow ${this.seq}`));
      try {
        this.seq = replayRecord(config, json);
      } catch (err) {
        throw this.unusable(this.journalPath, new Error(`line ${lineNo}: ${(err as Error).message}`));
      }
      offset = nl + 1;
    }
    const valid = Buffer.byteLength(text.slice(0, offset));
    // A torn tail is cut off before the next append (load() itself never writes: it also serves
    // `mfc_daemon --dump-state` while a daemon runs).
    this.tornTail = valid !== Buffer.byteLength(text);
    return valid;
  }

  private async read(file: string): Promise<string | undefined> {
    try {
      return await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new StateFileError(`cannot read state file ${file}: ${(err as Error).message}`);
    }
  }

  private unusable(file: string, err: unknown): StateFileError {
    return new StateFileError(`state file ${file} is not usable (${(err as Error).message}); it was left untouched — fix or move it away, then start again`);
  }

  async save(config: Config, delta?: Delta): Promise<void> {
    const seq = this.seq + 1;
    if (delta && !this.journalSuspect) {
      const line = JSON.stringify(journalRecord(seq, config, delta)) + "\n";
      const bytes = Buffer.byteLength(line);
      if (this.journalBytes + bytes <= this.snapshotBytes) {
        await this.append(line, bytes);
        this.seq = seq;
        return;
      }
    }
    await this.writeSnapshot(config, seq);
    this.seq = seq;
  }

  private async append(line: string, bytes: number): Promise<void> {
    try {
      if (this.tornTail) {
        await truncate(this.journalPath, this.journalBytes);
        this.tornTail = false;
      }
      if (!this.journal) {
        this.journal = await open(this.journalPath, "a", 0o640);
        // A file the open may just have created exists after a crash only once its directory is
        // synced: else an acknowledged first record could vanish with the file.
        await syncDir(dirname(this.journalPath));
      }
      // One write(2) may take only part of the line (a nearly full file system) and report no
      // error: loop, so the shortfall surfaces as ENOSPC instead of an acknowledged torn record.
      const buf = Buffer.from(line, "utf8");
      for (let off = 0; off < buf.length; ) {
        const { bytesWritten } = await this.journal.write(buf, off, buf.length - off);
        if (bytesWritten <= 0) throw new Error(`short write to ${this.journalPath}`);
        off += bytesWritten;
      }
      await this.journal.datasync();
      this.journalBytes += bytes;
    } catch (err) {
      // Cut off whatever part of the line reached the file; if even that fails, the next save
      // writes a snapshot, which makes the journal's content irrelevant.
      try {
        await truncate(this.journalPath, this.journalBytes);
      } catch {
        this.journalSuspect = true;
      }
      throw err;
    }
  }

  private async writeSnapshot(config: Config, seq: number): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const tmp = join(dir, `.${basename(this.path)}.${process.pid}.tmp`);
    const data = JSON.stringify(configToJson(config, seq)) + "\n";
    const fh = await open(tmp, "w", 0o640);
    try {
      await fh.writeFile(data, "utf8");
      await fh.sync(); // data on disk before the rename makes it visible
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    await rename(tmp, this.path);
    await syncDir(dir); // the rename itself is durable only once the directory is synced
    this.snapshotBytes = Buffer.byteLength(data);
    // Journal lines up to `seq` are now in the snapshot (load() skips them); empty it.
    if (this.journalBytes > 0 || this.journalSuspect) {
      try {
        await this.journal?.truncate(0);
        if (!this.journal) await truncate(this.journalPath, 0);
        this.journalBytes = 0;
        this.journalSuspect = false;
        this.tornTail = false;
      } catch {
        this.journalSuspect = true;
      }
    }
  }

  async close(): Promise<void> {
    await this.journal?.close();
    this.journal = undefined;
  }
}

async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
