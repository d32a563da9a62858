/**
 * The kernel's IPv4 multicast routing table: a raw IGMP socket that owns one IPMR table (MRT_INIT).
 * Closing it — MRT_DONE, exit or SIGKILL — makes the kernel drop every VIF and MFC entry we added.
 * tables.ts puts it together with the IPv6 table (mroute6.ts) and the joins behind the KernelPort.
 */
import { AF_INET, IPPROTO_IGMP, IPPROTO_IP } from "./abi.js";
import { interfaceIndex, interfaceName } from "./ifreq.js";
import { MRT_ADD_IF, MRT_ADD_MFC, MRT_DEL_IF, MRT_DEL_MFC, MrouteSocket, SIOC_GET_IF_COUNT, SIOC_GET_SG_COUNT, type TableFamily } from "./mroute_socket.js";
import type { Watch } from "./poll.js";
import type { LinkResolver, MfcEntry, NoCache, SgCounters, VifCounters, VifSpec } from "./port.js";
import {
  MFCCTL_SIZE, SIOC_SG_REQ_SIZE, SIOC_VIF_REQ_SIZE, VIFCTL_SIZE,
  decodeIgmpmsg, decodeSgReq, decodeVifReq, encodeMfcctl, encodeSgReq, encodeVifReq, encodeVifctl,
} from "./structs.js";

export const IPV4: TableFamily = {
  domain: AF_INET, protocol: IPPROTO_IGMP, socketCall: "socket(AF_INET, SOCK_RAW, IPPROTO_IGMP)",
  level: IPPROTO_IP, prefix: "MRT", label: "IPv4", owners: "smcroute, pimd",
  config: { routing: "CONFIG_IP_MROUTE", tables: "CONFIG_IP_MROUTE_MULTIPLE_TABLES" },
};

export class Mroute4Table extends MrouteSocket {
  private readonly vifBuf = Buffer.alloc(VIFCTL_SIZE);
  private readonly mfcBuf = Buffer.alloc(MFCCTL_SIZE);
  private readonly sgBuf = Buffer.alloc(SIOC_SG_REQ_SIZE);
  private readonly vifReqBuf = Buffer.alloc(SIOC_VIF_REQ_SIZE);

  /** table: MRT_TABLE id, or undefined for the kernel's default table (253). */
  constructor(table?: number) {
    super(IPV4, table);
  }

  addVif(vif: Pick<VifSpec, "vifi" | "ifindex" | "threshold">): void {
    this.set(MRT_ADD_IF, encodeVifctl(this.vifBuf, vif), VIFCTL_SIZE, "ADD_VIF");
  }

  delVif(vif: Pick<VifSpec, "vifi" | "ifindex" | "threshold">): void {
    // MRT_DEL_VIF takes a full vifctl (kernel reads sizeof(struct vifctl)).
    this.set(MRT_DEL_IF, encodeVifctl(this.vifBuf, vif), VIFCTL_SIZE, "DEL_VIF");
  }

  addMfc(entry: MfcEntry): void {
    this.set(MRT_ADD_MFC, encodeMfcctl(this.mfcBuf, entry), MFCCTL_SIZE, "ADD_MFC");
  }

  delMfc(entry: Pick<MfcEntry, "origin" | "group" | "parent">): void {
    this.set(MRT_DEL_MFC, encodeMfcctl(this.mfcBuf, entry), MFCCTL_SIZE, "DEL_MFC");
  }

  /**
   * Reports the table's IGMPMSG_NOCACHE upcalls (decodeIgmpmsg). The same raw IGMP socket also
   * receives real IGMP packets, which decodeIgmpmsg tells apart.
   */
  watchUpcalls(onNoCache: (u: NoCache) => void): Watch {
    return this.watch(decodeIgmpmsg, onNoCache);
  }

  /** SIOCGETSGCNT; undefined when the kernel has no such (S,G) (EADDRNOTAVAIL). */
  sgCounters(origin: string, group: string): SgCounters | undefined {
    if (group.includes("/")) return undefined; // a template: it has no entry of its own
    const b = encodeSgReq(this.sgBuf, origin, group);
    return this.query(SIOC_GET_SG_COUNT, b) ? decodeSgReq(b) : undefined;
  }

  /** SIOCGETVIFCNT. */
  vifCounters(vifi: number): VifCounters | undefined {
    const b = encodeVifReq(this.vifReqBuf, vifi);
    return this.query(SIOC_GET_IF_COUNT, b) ? decodeVifReq(b) : undefined;
  }
}

/** Name <-> index of interfaces: ioctls answered in the daemon's network namespace (ifreq.ts). */
export class SystemLinks implements LinkResolver {
  indexOf(ifname: string): number | undefined {
    return interfaceIndex(ifname);
  }
  nameOf(ifindex: number): string | undefined {
    return interfaceName(ifindex);
  }
}
