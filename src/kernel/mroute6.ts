/**
 * The kernel's IPv6 multicast routing table (net/ipv6/ip6mr.c): a raw ICMPv6 socket that owns one
 * IP6MR table (MRT6_INIT). Closing it — MRT6_DONE, exit or SIGKILL (rawv6_close calls
 * ip6mr_sk_done) — makes the kernel drop every MIF and MFC entry we added.
 */
import { AF_INET6, IPPROTO_ICMPV6, IPPROTO_IPV6 } from "./abi.js";
import { KernelError, errnoOf } from "./errors.js";
import { lastErrno, sys } from "./libc.js";
import { MRT_ADD_IF, MRT_ADD_MFC, MRT_DEL_IF, MRT_DEL_MFC, MrouteSocket, SIOC_GET_IF_COUNT, SIOC_GET_SG_COUNT, type TableFamily } from "./mroute_socket.js";
import type { Watch } from "./poll.js";
import type { MfcEntry, NoCache, SgCounters, VifCounters, VifSpec } from "./port.js";
import {
  MAX_PIFI, MF6CCTL_SIZE, MIF6CTL_SIZE, SIOC_MIF_REQ6_SIZE, SIOC_SG_REQ6_SIZE,
  decodeMifReq6, decodeMrt6msg, decodeSgReq6, encodeMf6cctl, encodeMif6ctl, encodeMifReq6, encodeSgReq6,
} from "./structs6.js";

export const IPV6: TableFamily = {
  domain: AF_INET6, protocol: IPPROTO_ICMPV6, socketCall: "socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)",
  level: IPPROTO_IPV6, prefix: "MRT6", label: "IPv6", owners: "smcroute, pim6sd",
  config: { routing: "CONFIG_IPV6_MROUTE", tables: "CONFIG_IPV6_MROUTE_MULTIPLE_TABLES" },
};

/** netinet/icmp6.h: struct icmp6_filter is 8 u32 words, a set bit blocks that ICMPv6 type. */
const ICMP6_FILTER = 1;
const ICMP6_FILTER_SIZE = 32;

/**
 * A raw ICMPv6 socket gets a copy of every ICMPv6 packet (MLD, neighbour discovery, pings) unless
 * filtered. Upcalls bypass the filter: ip6mr_cache_report queues them with sock_queue_rcv_skb.
 */
function blockAllIcmp6(fd: number): void {
  const filter = Buffer.alloc(ICMP6_FILTER_SIZE, 0xff);
  if (sys.setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, filter, ICMP6_FILTER_SIZE) !== 0) throw new KernelError("ICMP6_FILTER", lastErrno());
}

export class Mroute6Table extends MrouteSocket {
  private readonly mifBuf = Buffer.alloc(MIF6CTL_SIZE);
  private readonly mfcBuf = Buffer.alloc(MF6CCTL_SIZE);
  private readonly sgBuf = Buffer.alloc(SIOC_SG_REQ6_SIZE);
  private readonly mifReqBuf = Buffer.alloc(SIOC_MIF_REQ6_SIZE);

  /** table: MRT6_TABLE id, or undefined for the kernel's default IPv6 table (254, RT6_TABLE_DFLT). */
  constructor(table?: number) {
    super(IPV6, table, blockAllIcmp6);
  }

  addMif(mif: Pick<VifSpec, "vifi" | "ifindex" | "threshold">): void {
    // mif6c_pifi is a u16: a larger ifindex would silently name another interface.
    if (mif.ifindex > MAX_PIFI) {
      throw new KernelError("MRT6_ADD_MIF", errnoOf("EOVERFLOW"), `ifindex ${mif.ifindex} does not fit mif6ctl's 16-bit mif6c_pifi`);
    }
    this.set(MRT_ADD_IF, encodeMif6ctl(this.mifBuf, mif), MIF6CTL_SIZE, "ADD_MIF");
  }

  delMif(mif: Pick<VifSpec, "vifi">): void {
    // MRT6_DEL_MIF reads only the mifi_t (unlike MRT_DEL_VIF's full vifctl).
    this.mifBuf.writeUInt16LE(mif.vifi, 0);
    this.set(MRT_DEL_IF, this.mifBuf, 2, "DEL_MIF");
  }

  addMfc(entry: MfcEntry): void {
    this.set(MRT_ADD_MFC, encodeMf6cctl(this.mfcBuf, entry), MF6CCTL_SIZE, "ADD_MFC");
  }

  delMfc(entry: Pick<MfcEntry, "origin" | "group" | "parent">): void {
    this.set(MRT_DEL_MFC, encodeMf6cctl(this.mfcBuf, entry), MF6CCTL_SIZE, "DEL_MFC");
  }

  /** Reports the table's MRT6MSG_NOCACHE upcalls (decodeMrt6msg). */
  watchUpcalls(onNoCache: (u: NoCache) => void): Watch {
    return this.watch(decodeMrt6msg, onNoCache);
  }

  /** SIOCGETSGCNT_IN6; undefined when the kernel has no such (S,G) (EADDRNOTAVAIL). */
  sgCounters(origin: string, group: string): SgCounters | undefined {
    if (group.includes("/")) return undefined; // a template: it has no entry of its own
    const b = encodeSgReq6(this.sgBuf, origin, group);
    return this.query(SIOC_GET_SG_COUNT, b) ? decodeSgReq6(b) : undefined;
  }

  /** SIOCGETMIFCNT_IN6; undefined when the MIF does not exist (EINVAL past the highest, else EADDRNOTAVAIL). */
  mifCounters(mifi: number): VifCounters | undefined {
    const b = encodeMifReq6(this.mifReqBuf, mifi);
    return this.query(SIOC_GET_IF_COUNT, b) ? decodeMifReq6(b) : undefined;
  }
}
