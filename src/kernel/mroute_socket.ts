/**
 * The socket that owns one multicast routing table, for either family: ipmr (raw IGMP, level
 * IPPROTO_IP) and ip6mr (raw ICMPv6, level IPPROTO_IPV6) take the same option numbers (MRT_BASE
 * and MRT6_BASE are both 200) and the same counter ioctls (SIOCPROTOPRIVATE, +1), and both drop
 * every interface and entry we added when the socket closes (MRT_DONE / MRT6_DONE, exit, SIGKILL).
 * mroute.ts and mroute6.ts add what differs: the structs and the interface calls.
 */
import { SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW } from "./abi.js";
import { KernelError, TableBusyError, errnoOf } from "./errors.js";
import { lastErrno, sys } from "./libc.js";
import { watchReadable, type Watch } from "./poll.js";
import type { NoCache } from "./port.js";

// linux/mroute.h and linux/mroute6.h: the same numbers under the two prefixes.
export const MRT_INIT = 200;
const MRT_DONE = 201;
export const MRT_ADD_IF = 202;
export const MRT_DEL_IF = 203;
export const MRT_ADD_MFC = 204;
export const MRT_DEL_MFC = 205;
const MRT_TABLE = 209;
const MRT_FLUSH = 212;
// *_FLUSH_MFC | *_FLUSH_MFC_STATIC | *_FLUSH_VIFS (MIFS) | *_FLUSH_VIFS_STATIC (MIFS_STATIC)
const MRT_FLUSH_ALL = 1 | 2 | 4 | 8;
/** SIOCGETVIFCNT / SIOCGETMIFCNT_IN6 and SIOCGETSGCNT / SIOCGETSGCNT_IN6. */
export const SIOC_GET_IF_COUNT = 0x89e0;
export const SIOC_GET_SG_COUNT = 0x89e1;

/** What tells the two tables apart. */
export interface TableFamily {
  domain: number;
  protocol: number;
  /** The socket(2) call, as errors name it. */
  socketCall: string;
  /** The socket option level of the MRT options. */
  level: number;
  /** "MRT" or "MRT6": how calls are named in errors. */
  prefix: string;
  /** "IPv4" or "IPv6", in messages. */
  label: string;
  /** Who else takes such a table, for the busy message. */
  owners: string;
  /** The kernel options this family's table needs: multicast routing, and several tables. */
  config: { routing: string; tables: string };
}

/**
 * What ENOPROTOOPT on taking a table means: the kernel was built without the option. Without
 * CONFIG_IP(V6)_MROUTE there is no ipmr/ip6mr, and ip(v6)_setsockopt answers every MRT option
 * so (its default case); with it, only MRT_TABLE does, when CONFIG_IP(V6)_MROUTE_MULTIPLE_TABLES
 * is not set (that case is compiled out of ip_mroute_setsockopt / ip6_mroute_setsockopt).
 */
export function missingKernelOption(family: TableFamily, call: "INIT" | "TABLE"): string {
  return call === "INIT"
    ? `this kernel has no ${family.label} multicast routing: it was built without ${family.config.routing}`
    : `this kernel takes no ${family.label} multicast routing table but the default: it was built without ` +
      `${family.config.tables} (or ${family.config.routing}); leave 'table' empty`;
}

/** Why a table could not be taken, naming it, so the operator knows which one and who may hold it. */
export function busyMessage(family: TableFamily, table: number | undefined): string {
  return `${family.label} multicast routing table ${table ?? "default"} is already owned by another process ` +
    `(${family.owners}, another mfc_daemon?); stop it or configure another 'table'`;
}

export class MrouteSocket {
  protected fd: number;
  private readonly intBuf = Buffer.alloc(4);

  /**
   * Opens the socket and takes `table` (undefined: the family's default table); TableBusyError
   * when another process owns it. `prepare` runs on the socket before MRT_INIT.
   */
  constructor(protected readonly family: TableFamily, table: number | undefined, prepare: (fd: number) => void = () => undefined) {
    // CLOEXEC: a child that inherited this fd would keep the table owned after we exit.
    const fd = sys.socket(family.domain, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, family.protocol);
    if (fd < 0) throw new KernelError(family.socketCall, lastErrno());
    this.fd = fd;
    try {
      prepare(fd);
      // MRT_TABLE must come before MRT_INIT (EBUSY afterwards) and needs CAP_NET_ADMIN.
      if (table !== undefined) this.take(MRT_TABLE, table, "TABLE");
      this.take(MRT_INIT, 1, "INIT");
    } catch (err) {
      sys.close(fd);
      this.fd = -1;
      if (err instanceof KernelError && err.errno === errnoOf("EADDRINUSE")) throw new TableBusyError(busyMessage(family, table));
      throw err;
    }
  }

  /** setsockopt of option `opt`; `name` without the prefix ("ADD_MFC" is MRT_ADD_MFC or MRT6_ADD_MFC in errors). */
  protected set(opt: number, buf: Buffer, len: number, name: string): void {
    if (sys.setsockopt(this.fd, this.family.level, opt, buf, len) !== 0) throw new KernelError(`${this.family.prefix}_${name}`, lastErrno());
  }

  /** MRT_TABLE / MRT_INIT, with what ENOPROTOOPT means said in the error. */
  private take(opt: number, value: number, name: "INIT" | "TABLE"): void {
    try {
      this.setInt(opt, value, name);
    } catch (err) {
      if (err instanceof KernelError && err.errno === errnoOf("ENOPROTOOPT")) {
        throw new KernelError(err.call, err.errno, missingKernelOption(this.family, name));
      }
      throw err;
    }
  }

  private setInt(opt: number, value: number, name: string): void {
    this.intBuf.writeInt32LE(value, 0);
    this.set(opt, this.intBuf, 4, name);
  }

  /** A counter ioctl on `req`; false when the kernel has no such entry or interface. */
  protected query(request: number, req: Buffer): boolean {
    return sys.ioctl(this.fd, request, req) === 0;
  }

  /** Every interface and MFC entry of the table, static ones included. */
  flush(): void {
    this.setInt(MRT_FLUSH, MRT_FLUSH_ALL, "FLUSH");
  }

  /**
   * Reads the socket until it is drained and reports each NOCACHE upcall `decode` finds; anything
   * else that arrives on the raw socket is read and dropped, which keeps its queue from filling up.
   */
  protected watch(decode: (buf: Buffer, n: number) => NoCache | undefined, onNoCache: (u: NoCache) => void): Watch {
    const buf = Buffer.alloc(2048);
    const fd = this.fd;
    return watchReadable(fd, () => {
      for (;;) {
        const n = sys.recv(fd, buf, buf.length, 0);
        if (n < 0) {
          if (lastErrno() === errnoOf("EINTR")) continue;
          return; // EAGAIN: drained (any other error: nothing to read now either)
        }
        const u = decode(buf, n);
        if (u) onNoCache(u);
      }
    });
  }

  close(): void {
    if (this.fd < 0) return;
    // MRT_DONE tears the table down explicitly; close() alone would too (so the fd is closed
    // whatever MRT_DONE answers), but a failure is reported rather than hidden.
    const done = sys.setsockopt(this.fd, this.family.level, MRT_DONE, this.intBuf, 0);
    const errno = done === 0 ? 0 : lastErrno();
    sys.close(this.fd);
    this.fd = -1;
    if (done !== 0) throw new KernelError(`${this.family.prefix}_DONE`, errno);
  }
}
