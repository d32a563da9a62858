/** StateFs on the real file system (node:fs): every open with O_NOFOLLOW (libuv adds O_CLOEXEC itself). */
import { constants } from "node:fs";
import { open, readdir, rename, unlink, type FileHandle } from "node:fs/promises";
import { allocLarge } from "../kernel/huge_pages.js";
import type { StateFileHandle, StateFs } from "./fs_port.js";

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = constants;
const FILE_MODE = 0o640;

async function handle(path: string, flags: number): Promise<StateFileHandle> {
  const fh = await open(path, flags, FILE_MODE);
  return {
    write: async (data, offset, length, position) => (await fh.write(data, offset, length, position)).bytesWritten,
    sync: () => fh.sync(),
    datasync: () => fh.datasync(),
    truncate: (length) => fh.truncate(length),
    close: () => fh.close(),
  };
}

/** Node reads at most this much at once, and refuses a larger file in readFile() (kIoMaxLength). */
const MAX_FILE_BYTES = 2 ** 31 - 1;

/**
 * The whole file in as few reads as its size allows. `FileHandle.readFile()` reads 512 KiB per
 * thread-pool trip: ~18 trips and ~25 ms of waiting for a 9 MB snapshot at start-up. The file may
 * still change after the stat (it should not: the daemon holds the state lock), so reading goes on
 * to the end of the file whatever the stat said. Beyond 2 GiB it fails as readFile() did (a read
 * of more would abort Node: its length must be a 32-bit integer). The buffer is huge-page backed
 * where possible: its pages are all fresh (kernel/huge_pages.ts).
 */
async function readAll(fh: FileHandle): Promise<Buffer> {
  let buf = allocLarge(capacityFor((await fh.stat()).size + 1));
  let length = 0;
  for (;;) {
    if (length === buf.length) {
      const bigger = allocLarge(capacityFor(buf.length * 2));
      buf.copy(bigger, 0, 0, length);
      buf = bigger;
    }
    const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
    if (bytesRead === 0) return buf.subarray(0, length);
    length += bytesRead;
  }
}

function capacityFor(bytes: number): number {
  if (bytes <= MAX_FILE_BYTES) return bytes;
  throw Object.assign(new RangeError("File size is greater than 2 GiB"), { code: "ERR_FS_FILE_TOO_LARGE" });
}

export const nodeFs: StateFs = {
  async readFile(path) {
    let fh;
    try {
      // A root daemon must not read (or later replace) a file some other user pointed it to.
      fh = await open(path, O_RDONLY | O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    try {
      return await readAll(fh);
    } finally {
      await fh.close();
    }
  },
  openForWrite: (path) => handle(path, O_WRONLY | O_CREAT | O_NOFOLLOW),
  createExclusive: (path) => handle(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW),
  rename: (from, to) => rename(from, to),
  async syncDir(dir) {
    const dh = await open(dir, O_RDONLY | O_DIRECTORY);
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  },
  unlink: (path) => unlink(path),
  async list(dir) {
    try {
      return await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
  },
};
