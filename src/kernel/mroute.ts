/**
 * The kernel's IPv4 multicast routing table: a raw IGMP socket that owns one IPMR table (MRT_INIT).
 * Closing it — MRT_DONE, exit or SIGKILL — makes the kernel drop every VIF and MFC entry we added.
 * tables.ts puts it together with the IPv6 table (mroute6.ts) and the joins behind the KernelPort.
 */
import { AF_INET, IPPROTO_IGMP, IPPROTO_IP, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW } from "./abi.js";
import { KernelError, TableBusyError, errnoOf } from "./errors.js";
import { lastErrno, sys } from "./libc.js";
import { watchReadable, type Watch } from "./poll.js";
import type { LinkResolver, MfcEntry, NoCache, SgCounters, VifCounters, VifSpec } from "./port.js";
import {
  MFCCTL_SIZE, SIOC_SG_REQ_SIZE, SIOC_VIF_REQ_SIZE, VIFCTL_SIZE,
  decodeIgmpmsg, decodeSgReq, decodeVifReq, encodeMfcctl, encodeSgReq, encodeVifReq, encodeVifctl,
} from "./structs.js";

const MRT_INIT = 200;
const MRT_DONE = 201;
const MRT_ADD_VIF = 202;
const MRT_DEL_VIF = 203;
const MRT_ADD_MFC = 204;
const MRT_DEL_MFC = 205;
const MRT_TABLE = 209;
const MRT_FLUSH = 212;
// MRT_FLUSH_MFC | MRT_FLUSH_MFC_STATIC | MRT_FLUSH_VIFS | MRT_FLUSH_VIFS_STATIC
const MRT_FLUSH_ALL = 1 | 2 | 4 | 8;
const SIOCGETVIFCNT = 0x89e0;
const SIOCGETSGCNT = 0x89e1;

export class Mroute4Table {
  private fd: number;
  private readonly vifBuf = Buffer.alloc(VIFCTL_SIZE);
  private readonly mfcBuf = Buffer.alloc(MFCCTL_SIZE);
  private readonly sgBuf = Buffer.alloc(SIOC_SG_REQ_SIZE);
  private readonly vifReqBuf = Buffer.alloc(SIOC_VIF_REQ_SIZE);
  private readonly intBuf = Buffer.alloc(4);

  /** table: MRT_TABLE id, or undefined for the kernel's default table (253). */
  constructor(table?: number) {
    // CLOEXEC: a child that inherited this fd would keep the table owned after we exit.
    const fd = sys.socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_IGMP);
    if (fd < 0) throw new KernelError("socket(AF_INET, SOCK_RAW, IPPROTO_IGMP)", lastErrno());
    this.fd = fd;
    try {
      // MRT_TABLE must come before MRT_INIT (EBUSY afterwards) and needs CAP_NET_ADMIN.
      if (table !== undefined) this.setInt(MRT_TABLE, table, "MRT_TABLE");
      this.setInt(MRT_INIT, 1, "MRT_INIT");
    } catch (err) {
      sys.close(fd);
      this.fd = -1;
      if (err instanceof KernelError && err.errno === errnoOf("EADDRINUSE")) {
        throw new TableBusyError(
          `IPv4 multicast routing table ${table ?? "default"} is already owned by another process ` +
            "(smcroute, pimd, another mfc_daemon?); stop it or configure another 'table'",
        );
      }
      throw err;
    }
  }

  private setInt(opt: number, value: number, name: string): void {
    this.intBuf.writeInt32LE(value, 0);
    this.set(opt, this.intBuf, 4, name);
  }

  private set(opt: number, buf: Buffer, len: number, name: string): void {
    if (sys.setsockopt(this.fd, IPPROTO_IP, opt, buf, len) !== 0) throw new KernelError(name, lastErrno());
  }

  addVif(vif: Pick<VifSpec, "vifi" | "ifindex" | "threshold">): void {
    this.set(MRT_ADD_VIF, encodeVifctl(this.vifBuf, vif), VIFCTL_SIZE, "MRT_ADD_VIF");
  }

  delVif(vif: Pick<VifSpec, "vifi" | "ifindex" | "threshold">): void {
    // MRT_DEL_VIF takes a full vifctl (kernel reads sizeof(struct vifctl)).
    this.set(MRT_DEL_VIF, encodeVifctl(this.vifBuf, vif), VIFCTL_SIZE, "MRT_DEL_VIF");
  }

  addMfc(entry: MfcEntry): void {
    this.set(MRT_ADD_MFC, encodeMfcctl(this.mfcBuf, entry), MFCCTL_SIZE, "MRT_ADD_MFC");
  }

  delMfc(entry: Pick<MfcEntry, "origin" | "group" | "parent">): void {
    this.set(MRT_DEL_MFC, encodeMfcctl(this.mfcBuf, entry), MFCCTL_SIZE, "MRT_DEL_MFC");
  }

  /**
   * Reads the table's upcalls and reports IGMPMSG_NOCACHE (decodeIgmpmsg). The same raw IGMP socket
   * also receives real IGMP packets: those are read and dropped, which also keeps the socket's
   * queue from filling up.
   */
  watchUpcalls(onNoCache: (u: NoCache) => void): Watch {
    const buf = Buffer.alloc(2048);
    const fd = this.fd;
    return watchReadable(fd, () => {
      for (;;) {
        const n = sys.recv(fd, buf, buf.length, 0);
        if (n < 0) {
          const errno = lastErrno();
          if (errno === errnoOf("EINTR")) continue;
          return; // EAGAIN: drained (any other error: nothing to read now either)
        }
        const u = decodeIgmpmsg(buf, n);
        if (u) onNoCache(u);
      }
    });
  }

  /** Every VIF and MFC entry of the table, static ones included. */
  flush(): void {
    this.setInt(MRT_FLUSH, MRT_FLUSH_ALL, "MRT_FLUSH");
  }

  sgCounters(origin: string, group: string): SgCounters | undefined {
    if (group.includes("/")) return undefined; // a template: it has no entry of its own
    const b = encodeSgReq(this.sgBuf, origin, group);
    if (sys.ioctl(this.fd, SIOCGETSGCNT, b) !== 0) return undefined; // EADDRNOTAVAIL: no such (S,G)
    return decodeSgReq(b);
  }

  vifCounters(vifi: number): VifCounters | undefined {
    const b = encodeVifReq(this.vifReqBuf, vifi);
    if (sys.ioctl(this.fd, SIOCGETVIFCNT, b) !== 0) return undefined;
    return decodeVifReq(b);
  }

  close(): void {
    if (this.fd < 0) return;
    // MRT_DONE tears the table down explicitly; close() alone would too (so the fd is closed
    // whatever MRT_DONE answers), but a failure is reported rather than hidden.
    const done = sys.setsockopt(this.fd, IPPROTO_IP, MRT_DONE, this.intBuf, 0);
    const errno = done === 0 ? 0 : lastErrno();
    sys.close(this.fd);
    this.fd = -1;
    if (done !== 0) throw new KernelError("MRT_DONE", errno);
  }
}

/** if_nametoindex/if_indextoname: ioctls answered in the caller's network namespace. */
export class SystemLinks implements LinkResolver {
  private readonly nameBuf = Buffer.alloc(16);
  indexOf(ifname: string): number | undefined {
    // IFNAMSIZ counts bytes (UTF-8, as the kernel stores a name), with the NUL: at most 15.
    const bytes = Buffer.byteLength(ifname);
    if (bytes === 0 || bytes > 15) return undefined;
    const idx = sys.ifNameToIndex(ifname);
    return idx === 0 ? undefined : idx;
  }
  nameOf(ifindex: number): string | undefined {
    this.nameBuf.fill(0);
    if (sys.ifIndexToName(ifindex, this.nameBuf) === null) return undefined;
    const end = this.nameBuf.indexOf(0);
    return this.nameBuf.toString("utf8", 0, end < 0 ? 16 : end);
  }
}
