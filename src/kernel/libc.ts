/**
 * libc through koffi. This folder is the only importer of koffi (STACK.md); every function is
 * wrapped with a precise TypeScript type, because koffi's own functions are typed `any`.
 */
import koffi from "./koffi.js";

const libc = koffi.load("libc.so.6");

type Fn<A extends unknown[], R> = (...args: A) => R;
function fn<A extends unknown[], R>(decl: string): Fn<A, R> {
  return libc.func(decl) as Fn<A, R>;
}

export const sys = {
  socket: fn<[number, number, number], number>("int socket(int, int, int)"),
  close: fn<[number], number>("int close(int)"),
  bind: fn<[number, Buffer, number], number>("int bind(int, const void *, uint32_t)"),
  // ssize_t is `long` on Linux LP64.
  recv: fn<[number, Buffer, number, number], number>("long recv(int, void *, size_t, int)"),
  setsockopt: fn<[number, number, number, Buffer, number], number>(
    "int setsockopt(int, int, int, const void *, uint32_t)",
  ),
  getsockopt: fn<[number, number, number, Buffer, [number]], number>(
    "int getsockopt(int, int, int, void *, _Inout_ uint32_t *)",
  ),
  // ioctl is variadic in C; on x86_64/aarch64 a fixed third pointer argument is ABI-compatible.
  ioctl: fn<[number, number, Buffer], number>("int ioctl(int, unsigned long, void *)"),
  sendto: fn<[number, Buffer, number, number, Buffer, number], number>(
    "intptr_t sendto(int, const void *, size_t, int, const void *, uint32_t)",
  ),
  send: fn<[number, Buffer, number, number], number>("intptr_t send(int, const void *, size_t, int)"),
  flock: fn<[number, number], number>("int flock(int, int)"),
  // An address as a number (koffi gives no Buffer's address): memset of 0 bytes returns its first argument.
  addressOf: fn<[Buffer, number, number], number>("uintptr_t memset(void *, int, size_t)"),
  madvise: fn<[number, number, number], number>("int madvise(uintptr_t, size_t, int)"),
  /** glibc: gives the free memory at the top of malloc's heaps back to the kernel; a libc without it trims nothing. */
  mallocTrim: ((): Fn<[number], number> => {
    try {
      return fn<[number], number>("int malloc_trim(size_t)");
    } catch {
      return () => 0;
    }
  })(),
  getgrnamGid: ((): ((name: string) => number | undefined) => {
    const group = koffi.struct("mfc_group", { gr_name: "char *", gr_passwd: "char *", gr_gid: "uint32_t", gr_mem: "void *" });
    const getgrnam = libc.func("getgrnam", koffi.pointer(group), ["const char *"]) as Fn<[string], unknown>;
    return (name: string) => {
      const p = getgrnam(name);
      if (p === null) return undefined;
      const g = koffi.decode(p, group) as { gr_gid: number };
      return g.gr_gid;
    };
  })(),
};

export function lastErrno(): number {
  return koffi.errno();
}
