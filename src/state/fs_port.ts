/**
 * The state store's only way to the disk. The real implementation is node_fs.ts; tests put a
 * simulated file system behind the same port to fail any call and to enumerate what a power loss
 * may leave (test/support/sim_fs.ts). Kept to the calls whose durability rules the store relies on.
 */
export interface StateFileHandle {
  /** One write(2) at `position`; may write fewer bytes than asked (a nearly full file system). */
  write(data: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** fsync(2): data and metadata. */
  sync(): Promise<void>;
  /** fdatasync(2): data, and the size when it changed. */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export interface StateFs {
  /** The whole file, or undefined when it does not exist. Never follows a symlink (ELOOP). */
  readFile(path: string): Promise<Buffer | undefined>;
  /** Opens for positional writes, creating it (0640) if missing. Never follows a symlink. */
  openForWrite(path: string): Promise<StateFileHandle>;
  /** Creates a new file (0640); fails with EEXIST if anything, a symlink included, has the name. */
  createExclusive(path: string): Promise<StateFileHandle>;
  /** rename(2): atomic replacement of `to`. */
  rename(from: string, to: string): Promise<void>;
  /** fsync(2) of a directory: makes creations, renames and removals in it durable. */
  syncDir(dir: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Names in a directory ([] when it does not exist). */
  list(dir: string): Promise<string[]>;
}
