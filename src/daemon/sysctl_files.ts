/**
 * Small /proc/sys files read again and again (the rp_filter of each interface a route names, for
 * the warnings of every `add`) through fds kept open: a pread(2) at offset 0 makes the kernel
 * format the value afresh (proc_sys_read), one system call instead of readFileSync's open, fstat,
 * read and close (~3 µs against ~17 µs). A file whose sysctl table went away with its interface
 * answers ENOENT from then on, even once an interface of that name is back: the fd is closed and
 * the path opened again. At most MAX_OPEN fds; the one opened first is closed first.
 */
import { closeSync, constants, openSync, readSync } from "node:fs";

const MAX_OPEN = 64;

export class SysctlFiles {
  private readonly fds = new Map<string, number>();
  private readonly buf = Buffer.alloc(64);

  /** The file's value as an integer; undefined when it cannot be read (no such interface). */
  readInt(path: string): number | undefined {
    const known = this.fds.get(path);
    if (known !== undefined) {
      const value = this.readFd(known);
      if (value !== undefined) return value;
      this.close(path); // stale: its interface went away (and may be back under the same name)
    }
    const fd = this.open(path);
    return fd === undefined ? undefined : this.readFd(fd);
  }

  private readFd(fd: number): number | undefined {
    try {
      const n = readSync(fd, this.buf, 0, this.buf.length, 0);
      const value = Number(this.buf.toString("latin1", 0, n).trim());
      return Number.isFinite(value) ? value : undefined;
    } catch {
      return undefined;
    }
  }

  private open(path: string): number | undefined {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return undefined;
    }
    if (this.fds.size >= MAX_OPEN) this.close(this.fds.keys().next().value as string);
    this.fds.set(path, fd);
    return fd;
  }

  private close(path: string): void {
    const fd = this.fds.get(path);
    if (fd === undefined) return;
    this.fds.delete(path);
    try {
      closeSync(fd);
    } catch {
      // already unusable; nothing to release
    }
  }
}
