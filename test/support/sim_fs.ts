/**
 * A simulated file system behind the store's StateFs port, with POSIX's durability rules and
 * nothing more (the rules SQLite's crash-test VFS encodes):
 * - data written to a file survives a crash only once that file is fsync'd/fdatasync'd; until
 *   then any prefix of the writes since the last sync may survive, the last of them torn at any
 *   byte, or as zeros (the size reached the disk, the data did not);
 * - a creation, rename or removal survives only once its directory is fsync'd; until then any
 *   prefix of them (in order) may survive.
 * `crashStates()` enumerates the file systems a power loss right now may leave (bounded, see
 * TORN_CUTS). Faults are injected by `FaultyFs` (fault_fs.ts) wrapping this one.
 */
import { basename, dirname } from "node:path";
import type { StateFileHandle, StateFs } from "../../src/state/fs_port.js";

type FileOp = { kind: "write"; pos: number; bytes: Buffer } | { kind: "truncate"; length: number };
type DirOp = { kind: "link"; name: string; inode: Inode } | { kind: "unlink"; name: string } | { kind: "rename"; from: string; to: string };

interface Inode { data: Buffer; durable: Buffer; pending: FileOp[] }

/** A file system's contents: path -> bytes. */
export type Files = Map<string, Buffer>;

function errnoError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

function applyOp(data: Buffer, op: FileOp, tornAt?: number, zeros = false): Buffer {
  if (op.kind === "truncate") {
    return op.length <= data.length ? Buffer.from(data.subarray(0, op.length)) : Buffer.concat([data, Buffer.alloc(op.length - data.length)]);
  }
  const bytes = zeros ? Buffer.alloc(op.bytes.length) : op.bytes.subarray(0, tornAt ?? op.bytes.length);
  const end = Math.max(data.length, op.pos + bytes.length);
  const out = Buffer.alloc(end);
  data.copy(out);
  bytes.copy(out, op.pos);
  return out;
}

export class SimFs implements StateFs {
  private names = new Map<string, Inode>();
  private durableNames = new Map<string, Inode>();
  private dirPending: DirOp[] = [];
  /** rename() calls so far (a snapshot save renames; a journal append does not). */
  renames = 0;
  /** Called after every call that changes something (the crash test enumerates there). */
  afterChange: (() => void) | undefined;

  /** A file system holding exactly `files`, all durable. */
  constructor(files: Files = new Map()) {
    for (const [path, data] of files) {
      const inode: Inode = { data: Buffer.from(data), durable: Buffer.from(data), pending: [] };
      this.names.set(path, inode);
      this.durableNames.set(path, inode);
    }
  }

  /** What a reader sees now (no crash). */
  files(): Files {
    return new Map([...this.names].map(([p, i]) => [p, Buffer.from(i.data)]));
  }

  readFile(path: string): Promise<Buffer | undefined> {
    const inode = this.names.get(path);
    return Promise.resolve(inode ? Buffer.from(inode.data) : undefined);
  }

  openForWrite(path: string): Promise<StateFileHandle> {
    return Promise.resolve(this.handle(this.names.get(path) ?? this.create(path)));
  }

  createExclusive(path: string): Promise<StateFileHandle> {
    if (this.names.has(path)) return Promise.reject(errnoError("EEXIST", path));
    return Promise.resolve(this.handle(this.create(path)));
  }

  rename(from: string, to: string): Promise<void> {
    const inode = this.names.get(from);
    if (!inode) return Promise.reject(errnoError("ENOENT", from));
    this.renames++;
    this.names.delete(from);
    this.names.set(to, inode);
    this.dirPending.push({ kind: "rename", from, to });
    this.changed();
    return Promise.resolve();
  }

  syncDir(): Promise<void> {
    this.durableNames = new Map(this.names);
    this.dirPending = [];
    this.changed();
    return Promise.resolve();
  }

  unlink(path: string): Promise<void> {
    if (!this.names.delete(path)) return Promise.reject(errnoError("ENOENT", path));
    this.dirPending.push({ kind: "unlink", name: path });
    this.changed();
    return Promise.resolve();
  }

  list(dir: string): Promise<string[]> {
    return Promise.resolve([...this.names.keys()].filter((p) => dirname(p) === dir).map((p) => basename(p)));
  }

  private create(path: string): Inode {
    const inode: Inode = { data: Buffer.alloc(0), durable: Buffer.alloc(0), pending: [] };
    this.names.set(path, inode);
    this.dirPending.push({ kind: "link", name: path, inode });
    this.changed();
    return inode;
  }

  private changed(): void {
    this.afterChange?.();
  }

  private handle(inode: Inode): StateFileHandle {
    const sync = (): Promise<void> => {
      inode.durable = Buffer.from(inode.data);
      inode.pending = [];
      this.changed();
      return Promise.resolve();
    };
    return {
      write: (data, offset, length, position) => {
        const op: FileOp = { kind: "write", pos: position, bytes: Buffer.from(data.subarray(offset, offset + length)) };
        inode.data = applyOp(inode.data, op);
        inode.pending.push(op);
        this.changed();
        return Promise.resolve(length);
      },
      sync,
      datasync: sync,
      truncate: (length) => {
        const op: FileOp = { kind: "truncate", length };
        inode.data = applyOp(inode.data, op);
        inode.pending.push(op);
        this.changed();
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
  }

  /** Every file system a power loss at this instant may leave (each as path -> bytes). */
  crashStates(): Files[] {
    const dirs: Map<string, Inode>[] = [];
    let names = new Map(this.durableNames);
    dirs.push(new Map(names));
    for (const op of this.dirPending) {
      names = new Map(names);
      if (op.kind === "link") names.set(op.name, op.inode);
      else if (op.kind === "unlink") names.delete(op.name);
      else {
        const inode = names.get(op.from) ?? this.names.get(op.to);
        names.delete(op.from);
        if (inode) names.set(op.to, inode);
      }
      dirs.push(names);
    }
    const states: Files[] = [];
    const seen = new Set<string>();
    for (const dir of dirs) {
      // The product of each file's possible contents (only files with unsynced writes vary).
      let partial: Files[] = [new Map<string, Buffer>()];
      for (const [path, inode] of dir) {
        const options = contentOptions(inode);
        partial = partial.flatMap((files) => options.map((content) => new Map(files).set(path, content)));
      }
      for (const files of partial) {
        const key = [...files].map(([p, b]) => `${p}:${b.toString("base64")}`).sort().join("|");
        if (!seen.has(key)) {
          seen.add(key);
          states.push(files);
        }
      }
    }
    return states;
  }
}

/** Where a torn write is cut: its first byte, its middle, all but its last byte. */
const TORN_CUTS = (n: number): number[] => [...new Set([1, Math.floor(n / 2), n - 1])].filter((c) => c > 0 && c < n);

function contentOptions(inode: Inode): Buffer[] {
  const out: Buffer[] = [inode.durable];
  let data = inode.durable;
  for (const op of inode.pending) {
    if (op.kind === "write") {
      for (const cut of TORN_CUTS(op.bytes.length)) out.push(applyOp(data, op, cut));
      out.push(applyOp(data, op, undefined, true));
    }
    data = applyOp(data, op);
    out.push(data);
  }
  return out;
}
