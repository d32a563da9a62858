/**
 * The kernel's IPv6 multicast routing table (net/ipv6/ip6mr.c): a raw ICMPv6 socket that owns one
 * IP6MR table (MRT6_INIT). Closing it — MRT6_DONE, exit or SIGKILL (rawv6_close calls
 * ip6mr_sk_done) — makes the kernel drop every MIF and MFC entry we added.
 */
import { AF_INET6, IPPROTO_ICMPV6, IPPROTO_IPV6, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW } from "./abi.js";
import { KernelError, TableBusyError, errnoOf } from "./errors.js";
import { lastErrno, sys } from "./libc.js";
import { watchReadable, type Watch } from "./poll.js";
import type { MfcEntry, NoCache, SgCounters, VifCounters, VifSpec } from "./port.js";
import {
  MAX_PIFI, MF6CCTL_SIZE, MIF6CTL_SIZE, SIOC_MIF_REQ6_SIZE, SIOC_SG_REQ6_SIZE,
  decodeMifReq6, decodeMrt6msg, decodeSgReq6, encodeMf6cctl, encodeMif6ctl, encodeMifReq6, encodeSgReq6,
} from "./structs6.js";

// linux/mroute6.h: MRT6_BASE 200, options at level IPPROTO_IPV6.
const MRT6_INIT = 200;
const MRT6_DONE = 201;
const MRT6_ADD_MIF = 202;
const MRT6_DEL_MIF = 203;
const MRT6_ADD_MFC = 204;
const MRT6_DEL_MFC = 205;
const MRT6_TABLE = 209;
const MRT6_FLUSH = 212;
// MRT6_FLUSH_MFC | MRT6_FLUSH_MFC_STATIC | MRT6_FLUSH_MIFS | MRT6_FLUSH_MIFS_STATIC
const MRT6_FLUSH_ALL = 1 | 2 | 4 | 8;
// SIOCPROTOPRIVATE and SIOCPROTOPRIVATE + 1 (the same numbers as IPv4's SIOCGETVIFCNT/SIOCGETSGCNT).
const SIOCGETMIFCNT_IN6 = 0x89e0;
const SIOCGETSGCNT_IN6 = 0x89e1;

/** netinet/icmp6.h: struct icmp6_filter is 8 u32 words, a set bit blocks that ICMPv6 type. */
const ICMP6_FILTER = 1;
const ICMP6_FILTER_SIZE = 32;

export class Mroute6Table {
  private fd: number;
  private readonly mifBuf = Buffer.alloc(MIF6CTL_SIZE);
  private readonly mfcBuf = Buffer.alloc(MF6CCTL_SIZE);
  private readonly sgBuf = Buffer.alloc(SIOC_SG_REQ6_SIZE);
  private readonly mifReqBuf = Buffer.alloc(SIOC_MIF_REQ6_SIZE);
  private readonly intBuf = Buffer.alloc(4);

  /** table: MRT6_TABLE id, or undefined for the kernel's default IPv6 table (254, RT6_TABLE_DFLT). */
  constructor(table?: number) {
    // CLOEXEC: a child that inherited this fd would keep the table owned after we exit.
    const fd = sys.socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
    if (fd < 0) throw new KernelError("socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)", lastErrno());
    this.fd = fd;
    try {
      // A raw ICMPv6 socket gets a copy of every ICMPv6 packet (MLD, neighbour discovery, pings)
      // unless filtered. Upcalls bypass the filter: ip6mr_cache_report queues them with
      // sock_queue_rcv_skb directly.
      const filter = Buffer.alloc(ICMP6_FILTER_SIZE, 0xff);
      if (sys.setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, filter, ICMP6_FILTER_SIZE) !== 0) {
        throw new KernelError("ICMP6_FILTER", lastErrno());
      }
      // MRT6_TABLE must come before MRT6_INIT (EBUSY afterwards) and needs CAP_NET_ADMIN.
      if (table !== undefined) this.setInt(MRT6_TABLE, table, "MRT6_TABLE");
      this.setInt(MRT6_INIT, 1, "MRT6_INIT");
    } catch (err) {
      sys.close(fd);
      this.fd = -1;
      if (err instanceof KernelError && err.errno === errnoOf("EADDRINUSE")) throw new TableBusyError(busyMessage(table));
      throw err;
    }
  }

  private setInt(opt: number, value: number, name: string): void {
    this.intBuf.writeInt32LE(value, 0);
    this.set(opt, this.intBuf, 4, name);
  }

  private set(opt: number, buf: Buffer, len: number, name: string): void {
    if (sys.setsockopt(this.fd, IPPROTO_IPV6, opt, buf, len) !== 0) throw new KernelError(name, lastErrno());
  }

  addMif(mif: Pick<VifSpec, "vifi" | "ifindex" | "threshold">): void {
    // mif6c_pifi is a u16: a larger ifindex would silently name another interface.
    if (mif.ifindex > MAX_PIFI) {
      throw new KernelError("MRT6_ADD_MIF", errnoOf("EOVERFLOW"), `ifindex ${mif.ifindex} does not fit mif6ctl's 16-bit mif6c_pifi`);
    }
    this.set(MRT6_ADD_MIF, encodeMif6ctl(this.mifBuf, mif), MIF6CTL_SIZE, "MRT6_ADD_MIF");
  }

  delMif(mif: Pick<VifSpec, "vifi">): void {
    // MRT6_DEL_MIF reads only the mifi_t (unlike MRT_DEL_VIF's full vifctl).
    this.mifBuf.writeUInt16LE(mif.vifi, 0);
    this.set(MRT6_DEL_MIF, this.mifBuf, 2, "MRT6_DEL_MIF");
  }

  addMfc(entry: MfcEntry): void {
    this.set(MRT6_ADD_MFC, encodeMf6cctl(this.mfcBuf, entry), MF6CCTL_SIZE, "MRT6_ADD_MFC");
  }

  delMfc(entry: Pick<MfcEntry, "origin" | "group" | "parent">): void {
    this.set(MRT6_DEL_MFC, encodeMf6cctl(this.mfcBuf, entry), MF6CCTL_SIZE, "MRT6_DEL_MFC");
  }

  /** Every MIF and MFC entry of the table, static ones included. */
  flush(): void {
    this.setInt(MRT6_FLUSH, MRT6_FLUSH_ALL, "MRT6_FLUSH");
  }

  /** Reads the table's upcalls and reports MRT6MSG_NOCACHE (decodeMrt6msg). */
  watchUpcalls(onNoCache: (u: NoCache) => void): Watch {
    const buf = Buffer.alloc(2048);
    const fd = this.fd;
    return watchReadable(fd, () => {
      for (;;) {
        const n = sys.recv(fd, buf, buf.length, 0);
        if (n < 0) {
          if (lastErrno() === errnoOf("EINTR")) continue;
          return; // EAGAIN: drained (any other error: nothing to read now either)
        }
        const u = decodeMrt6msg(buf, n);
        if (u) onNoCache(u);
      }
    });
  }

  /** SIOCGETSGCNT_IN6; undefined when the kernel has no such (S,G) (EADDRNOTAVAIL). */
  sgCounters(origin: string, group: string): SgCounters | undefined {
    if (group.includes("/")) return undefined; // a template: it has no entry of its own
    const b = encodeSgReq6(this.sgBuf, origin, group);
    if (sys.ioctl(this.fd, SIOCGETSGCNT_IN6, b) !== 0) return undefined;
    return decodeSgReq6(b);
  }

  /** SIOCGETMIFCNT_IN6; undefined when the MIF does not exist (EINVAL past the highest, else EADDRNOTAVAIL). */
  mifCounters(mifi: number): VifCounters | undefined {
    const b = encodeMifReq6(this.mifReqBuf, mifi);
    if (sys.ioctl(this.fd, SIOCGETMIFCNT_IN6, b) !== 0) return undefined;
    return decodeMifReq6(b);
  }

  close(): void {
    if (this.fd < 0) return;
    // As for IPv4: the close releases the table whatever MRT6_DONE answers; a failure is reported.
    const done = sys.setsockopt(this.fd, IPPROTO_IPV6, MRT6_DONE, this.intBuf, 0);
    const errno = done === 0 ? 0 : lastErrno();
    sys.close(this.fd);
    this.fd = -1;
    if (done !== 0) throw new KernelError("MRT6_DONE", errno);
  }
}

/** Why a table could not be taken: it names the IPv6 table, so the operator knows which one. */
export function busyMessage(table: number | undefined): string {
  return `IPv6 multicast routing table ${table ?? "default"} is already owned by another process ` +
    "(smcroute, pim6sd, another mfc_daemon?); stop it or configure another 'table'";
}
