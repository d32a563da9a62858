/**
 * Durable state (SPEC §6.2): a snapshot (`state.json`, replaced atomically: new temp file in the
 * same directory, write, fsync, rename, fsync the directory) plus a journal
 * (`state.json.journal`, one fdatasync'd line per transaction). Small tables are rewritten whole;
 * once a table is big, a transaction appends one line, and the journal is folded into a new
 * snapshot when it grows as large as the snapshot (amortised O(change)).
 *
 * Correct by construction under failing calls:
 * - Every save takes the next sequence number; it is given again only when nothing of the failed
 *   save can be read back, so a number that may be on disk never names two records (load() skips
 *   journal lines at or below the snapshot's, and refuses a gap).
 * - A failure before the rename leaves the files as they were. A journal append that fails is
 *   cut off again (truncate + fdatasync). Where that is impossible, or the failure came at or after
 *   the rename, the files may hold the refused change: `needsRepair` is set and the next save
 *   (the engine makes one at once with the acknowledged config) is a whole snapshot, which
 *   supersedes everything before it.
 * All file access goes through StateFs, so tests can fail any call and simulate power loss.
 */
import { basename, dirname, join } from "node:path";
import type { Config, MapConfig } from "../model/types.js";
import { emptyConfig } from "../model/types.js";
import { OifLists } from "../model/oif_lists.js";
import { applyRecord, configFromJson, journalRecord, parseRecord, snapshotText, type Delta } from "./format.js";
import { configFromCanonicalSnapshot } from "./canonical_snapshot.js";
import type { StateFileHandle, StateFs } from "./fs_port.js";
import { nodeFs } from "./node_fs.js";

export type { Delta } from "./format.js";

export interface StateStore {
  /**
   * undefined when there is no state yet (first start). Throws StateFileError if unusable. The
   * config returned is the caller's: the store keeps no reference to it.
   */
  load(): Promise<MapConfig | undefined>;
  /**
   * Makes `config` durable. `delta` says what this transaction touched; without it, all of it.
   * `routesText`: config's routes array (between its brackets) exactly as the snapshot writes it,
   * where the caller has it (a whole-state APPLY read as written: engine.ts wholeRoutesText).
   */
  save(config: Config, delta?: Delta, routesText?: Uint8Array): Promise<void>;
  /** A failed save may have left a refused change in the files: save the acknowledged config again. */
  readonly needsRepair: boolean;
  readonly path: string;
}

export class StateFileError extends Error {}

export class FileStateStore implements StateStore {
  readonly journalPath: string;
  /** What load() and removeLeftovers() noticed and tolerated, for the daemon's log. */
  readonly notes: string[] = [];
  /** The highest sequence number used so far, by an acknowledged save or a failed one. */
  private seq = 0;
  private snapshotBytes = 0;
  /** Length of the journal's valid records (stale ones below the snapshot's seq included). */
  private journalBytes = 0;
  private journal: StateFileHandle | undefined;
  /** The journal file's length is exactly journalBytes (else it is truncated before an append). */
  private journalExact = true;
  /** The journal's directory entry is durable (synced after the file was opened, maybe created). */
  private journalEntrySynced = false;
  private dirty = false;
  /** The save in progress failed after something of it may have become readable. */
  private landed = false;

  constructor(readonly path: string, private readonly fs: StateFs = nodeFs) {
    this.journalPath = `${path}.journal`;
  }

  get needsRepair(): boolean {
    return this.dirty;
  }

  async load(): Promise<MapConfig | undefined> {
    const snap = await this.read(this.path);
    const journal = await this.read(this.journalPath);
    // One pool for the snapshot and every record: a route the journal changed shares its list too.
    const lists = new OifLists();
    let config: MapConfig;
    let snapSeq = 0;
    if (snap === undefined) {
      config = emptyConfig();
    } else {
      try {
        ({ config, seq: snapSeq } = configFromCanonicalSnapshot(snap, lists) ?? configFromJson(JSON.parse(snap.toString("utf8")) as unknown, lists));
      } catch (err) {
        throw this.unusable(this.path, (err as Error).message);
      }
    }
    const replayed = this.replay(config, snapSeq, journal ?? Buffer.alloc(0), lists);
    if (snap === undefined && replayed.records > 0) {
      throw this.unusable(this.journalPath, "it has records but the snapshot it continues is missing");
    }
    this.seq = replayed.seq;
    this.snapshotBytes = snap?.length ?? 0;
    this.journalBytes = replayed.validBytes;
    this.journalExact = replayed.validBytes === (journal?.length ?? 0);
    if (snap === undefined) return undefined;
    return config;
  }

  /**
   * Applies the journal's records newer than the snapshot, strictly in sequence. Only the last
   * line may be incomplete (no newline: a write cut short by a crash, never acknowledged).
   */
  private replay(config: Config, snapSeq: number, text: Buffer, lists: OifLists): { seq: number; validBytes: number; records: number } {
    let seq = snapSeq;
    let offset = 0;
    let lineNo = 0;
    let records = 0;
    let applied = false;
    while (offset < text.length) {
      const nl = text.indexOf(0x0a, offset);
      lineNo++;
      if (nl < 0) {
        this.notes.push(`${this.journalPath}: line ${lineNo} is an incomplete record (${text.length - offset} bytes, a transaction that was never acknowledged): ignored`);
        break;
      }
      const where = `line ${lineNo}`;
      let record;
      try {
        record = parseRecord(JSON.parse(text.toString("utf8", offset, nl)) as unknown, lists);
      } catch (err) {
        throw this.unusable(this.journalPath, `${where}: ${(err as Error).message}`);
      }
      records++;
      if (record.seq <= snapSeq && !applied) {
        // Folded into the snapshot already (or a record of a save that failed before it).
      } else if (record.seq === seq + 1) {
        applyRecord(config, record);
        seq = record.seq;
        applied = true;
      } else {
        throw this.unusable(this.journalPath, `${where}: sequence ${record.seq} does not follow ${seq}`);
      }
      offset = nl + 1;
    }
    return { seq, validBytes: offset, records };
  }

  private async read(file: string): Promise<Buffer | undefined> {
    try {
      return await this.fs.readFile(file);
    } catch (err) {
      throw new StateFileError(`cannot read state file ${file}: ${(err as Error).message}`);
    }
  }

  private unusable(file: string, problem: string): StateFileError {
    return new StateFileError(`state file ${file} is not usable (${problem}); it was left untouched — fix or move it away, then start again`);
  }

  async save(config: Config, delta?: Delta, routesText?: Uint8Array): Promise<void> {
    const previous = this.seq;
    const seq = ++this.seq;
    this.landed = false;
    try {
      if (delta && !this.dirty) {
        const line = Buffer.from(JSON.stringify(journalRecord(seq, config, delta)) + "\n", "utf8");
        if (this.journalBytes + line.length <= this.snapshotBytes) return await this.append(line);
      }
      return await this.writeSnapshot(config, seq, routesText);
    } catch (err) {
      // Nothing of this save can be read back: its number may be used again, which keeps the
      // journal's numbers contiguous (load() refuses a gap: a record lost in the middle).
      if (!this.landed) this.seq = previous;
      throw err;
    }
  }

  /** A failed save may have left its record or snapshot where load() reads it. */
  private markLanded(): void {
    this.landed = true;
    this.dirty = true;
  }

  private async append(line: Buffer): Promise<void> {
    try {
      this.journal ??= await this.fs.openForWrite(this.journalPath);
      if (!this.journalExact) {
        // A torn record left by a crash, or stale records below the snapshot's seq: cut them
        // off durably first, so the new record follows the last valid one.
        await this.journal.truncate(this.journalBytes);
        await this.journal.datasync();
        this.journalExact = true;
      }
      if (!this.journalEntrySynced) {
        // The open may have created the file: it survives a crash only once its directory is synced.
        await this.fs.syncDir(dirname(this.journalPath));
        this.journalEntrySynced = true;
      }
      await writeAll(this.journal, line, this.journalBytes);
      await this.journal.datasync();
      this.journalBytes += line.length;
    } catch (err) {
      await this.cutRefusedRecord();
      throw err;
    }
  }

  /** After a failed append: remove whatever part of the record reached the file, durably. */
  private async cutRefusedRecord(): Promise<void> {
    this.journalExact = false;
    if (!this.journal) return; // the open failed: nothing was written
    try {
      await this.journal.truncate(this.journalBytes);
      await this.journal.datasync();
      this.journalExact = true;
    } catch {
      this.markLanded();
      // A handle that failed may stay failed (a later fsync can even report success after data
      // was dropped); open the file afresh next time.
      const old = this.journal;
      this.journal = undefined;
      this.journalEntrySynced = false;
      await old.close().catch(() => undefined);
    }
  }

  private async writeSnapshot(config: Config, seq: number, routesText?: Uint8Array): Promise<void> {
    const dir = dirname(this.path);
    const tmp = this.tempPath();
    const fh = await this.createTemp(tmp);
    let size: number;
    try {
      size = await writeText(fh, snapshotText(config, seq, routesText));
      await fh.sync(); // data on disk before the rename makes it visible
    } catch (err) {
      await fh.close().catch(() => undefined);
      await this.fs.unlink(tmp).catch(() => undefined);
      throw err;
    }
    try {
      await fh.close();
    } catch (err) {
      await this.fs.unlink(tmp).catch(() => undefined);
      throw err;
    }
    try {
      await this.fs.rename(tmp, this.path);
      await this.fs.syncDir(dir); // the rename itself is durable only once the directory is synced
    } catch (err) {
      // The new snapshot may be what load() reads now (or after a crash): it is not acknowledged.
      this.markLanded();
      await this.fs.unlink(tmp).catch(() => undefined);
      throw err;
    }
    this.dirty = false;
    this.snapshotBytes = size;
    // Every journal record has a seq below this snapshot's now, so load() skips them; the file is
    // emptied before the next append instead of here, so that this save cannot fail after the fact.
    this.journalBytes = 0;
    this.journalExact = false;
  }

  private tempPath(): string {
    return join(dirname(this.path), `.${basename(this.path)}.${process.pid}.tmp`);
  }

  /** A temp file of ours left by a crash (same pid after a reboot or in a container) is replaced. */
  private async createTemp(tmp: string): Promise<StateFileHandle> {
    try {
      return await this.fs.createExclusive(tmp);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      await this.fs.unlink(tmp);
      return this.fs.createExclusive(tmp);
    }
  }

  /**
   * Removes temp files that a crash left between create and rename. Only for the daemon that holds
   * the state lock: another process's temp file may be in use.
   */
  async removeLeftovers(): Promise<string[]> {
    const prefix = `.${basename(this.path)}.`;
    const removed: string[] = [];
    for (const name of await this.fs.list(dirname(this.path))) {
      if (!name.startsWith(prefix) || !/^\d+\.tmp$/.test(name.slice(prefix.length))) continue;
      try {
        await this.fs.unlink(join(dirname(this.path), name));
        removed.push(name);
      } catch (err) {
        // Never read, so never a reason not to start: say so and go on.
        this.notes.push(`could not remove ${name}, a temp file left by a crash (${(err as Error).message}); it is never read — remove it by hand`);
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    const j = this.journal;
    this.journal = undefined;
    await j?.close();
  }
}

/** 1 MiB: the snapshot of 100 000 routes in ~9 writes. */
const WRITE_BUFFER_BYTES = 1 << 20;

/**
 * Writes `pieces` from offset 0 through one buffer of WRITE_BUFFER_BYTES, reused; returns the size.
 * One Buffer of the whole text (9 MB at 100 000 routes) cost its fresh pages' faults, ~2.5 ms a
 * megabyte on this kind of VM, on top of the copy.
 */
async function writeText(fh: StateFileHandle, pieces: Iterable<string | Uint8Array>): Promise<number> {
  let buf = Buffer.allocUnsafeSlow(WRITE_BUFFER_BYTES);
  let used = 0;
  let position = 0;
  const flush = async (): Promise<void> => {
    await writeAll(fh, buf.subarray(0, used), position);
    position += used;
    used = 0;
  };
  for (const piece of pieces) {
    if (typeof piece !== "string") {
      // Bytes as they are (a request's routes): written from where they are, not copied.
      await flush();
      await writeAll(fh, Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength), position);
      position += piece.byteLength;
      continue;
    }
    // At most 3 bytes of UTF-8 per UTF-16 unit: room for that needs no byteLength() pass.
    const most = 3 * piece.length;
    if (used + most > buf.length) await flush();
    if (most > buf.length) buf = Buffer.allocUnsafeSlow(most);
    used += buf.write(piece, used);
  }
  await flush();
  return position;
}

/** write(2) may take only part of the data and report no error: loop until all of it is written. */
async function writeAll(fh: StateFileHandle, data: Buffer, position: number): Promise<void> {
  for (let off = 0; off < data.length; ) {
    const n = await fh.write(data, off, data.length - off, position + off);
    if (n <= 0) throw Object.assign(new Error("short write: no space left"), { code: "ENOSPC" });
    off += n;
  }
}
