/**
 * The real KernelPort: the IPv4 table (mroute.ts, taken in the constructor), the IPv6 table
 * (mroute6.ts, taken on the first IPv6 change or by ensureIpv6) and the joins (membership.ts).
 * Calls go to a table by the VIF's family or the entry's group. Both tables have the same id
 * (MRT_TABLE / MRT6_TABLE); with none, each family's default (IPv4 253, IPv6 254).
 */
import { KernelError, TableBusyError, errnoOf } from "./errors.js";
import { MembershipSockets } from "./membership.js";
import { MfcNetlinkAdds, type DeviceMfc } from "./mfc_netlink.js";
import { Mroute4Table } from "./mroute.js";
import { Mroute6Table } from "./mroute6.js";
import type { Watch } from "./poll.js";
import {
  familyOf, type Family, type KernelPort, type Membership, type MfcEntry, type NoCache, type SgCounters,
  type VifCounters, type VifSpec,
} from "./port.js";

interface Upcalls { onNoCache: (u: NoCache) => void; v4: Watch; v6: Watch | undefined }

export class KernelTables implements KernelPort {
  private readonly v4: Mroute4Table;
  private v6: Mroute6Table | undefined;
  private readonly memberships = new MembershipSockets();
  private readonly adds4: MfcNetlinkAdds;
  private upcalls: Upcalls | undefined;

  /** Takes the IPv4 table now (TableBusyError when another process owns it). */
  constructor(private readonly table?: number) {
    this.v4 = new Mroute4Table(table);
    this.adds4 = new MfcNetlinkAdds(table);
  }

  /** Takes the IPv6 table if not yet done (TableBusyError when another process owns it). */
  ensureIpv6(): void {
    if (this.v6) return;
    const v6 = new Mroute6Table(this.table);
    this.v6 = v6;
    if (this.upcalls) this.upcalls.v6 = v6.watchUpcalls(this.upcalls.onNoCache);
  }

  isIpv6Open(): boolean {
    return this.v6 !== undefined;
  }

  /** The IPv6 table for a change: taken now if need be; owned by another process = a refusal the engine reports. */
  private ipv6(): Mroute6Table {
    try {
      this.ensureIpv6();
    } catch (err) {
      if (err instanceof TableBusyError) throw new KernelError("MRT6_INIT", errnoOf("EADDRINUSE"), err.message);
      throw err;
    }
    return this.v6 as Mroute6Table;
  }

  addVif(vif: VifSpec): void {
    if (vif.family === 6) this.ipv6().addMif(vif);
    else this.v4.addVif(vif);
  }

  delVif(vif: VifSpec): void {
    if (vif.family === 4) return this.v4.delVif(vif);
    // No IPv6 table yet: no MIF either, and the kernel says so with EADDRNOTAVAIL (mif6_delete).
    if (!this.v6) throw new KernelError("MRT6_DEL_MIF", errnoOf("EADDRNOTAVAIL"));
    this.v6.delMif(vif);
  }

  addMfc(entry: MfcEntry): void {
    if (familyOf(entry.group) === 6) this.ipv6().addMfc(entry);
    else this.v4.addMfc(entry);
  }

  /**
   * IPv4 entries go through rtnetlink in one pass (mfc_netlink.ts); any it did not confirm are
   * added again with MRT_ADD_MFC, whose answer is the result, so every entry ends as addMfc would
   * have left it. IPv6 entries (ip6mr takes no RTM_NEWROUTE) are added one by one.
   */
  addMfcs(entries: readonly DeviceMfc[]): (KernelError | undefined)[] {
    const results: (KernelError | undefined)[] = new Array<KernelError | undefined>(entries.length).fill(undefined);
    const v4: number[] = [];
    for (let i = 0; i < entries.length; i++) {
      if (familyOf((entries[i] as DeviceMfc).group) === 4) v4.push(i);
      else results[i] = refusal(() => this.addMfc(entries[i] as DeviceMfc));
    }
    if (v4.length === 0) return results;
    let again: number[];
    try {
      again = this.adds4.add(v4.map((i) => entries[i] as DeviceMfc)).map((k) => v4[k] as number);
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      again = v4; // no rtnetlink socket: every entry the usual way
    }
    for (const i of again) results[i] = refusal(() => this.v4.addMfc(entries[i] as DeviceMfc));
    return results;
  }

  delMfc(entry: Pick<MfcEntry, "origin" | "group" | "parent">): void {
    if (familyOf(entry.group) === 4) return this.v4.delMfc(entry);
    if (!this.v6) throw new KernelError("MRT6_DEL_MFC", errnoOf("ENOENT"));
    this.v6.delMfc(entry);
  }

  /** Joins need no table: an IPv6 join works while another process (pim6sd) owns the IPv6 table. */
  join(m: Membership): void {
    this.memberships.join(m);
  }

  leave(m: Membership): void {
    this.memberships.leave(m);
  }

  /** MRT_FLUSH, and MRT6_FLUSH when the IPv6 table is ours; throws the first failure after both. */
  flushAll(): void {
    attempt([() => this.v4.flush(), () => this.v6?.flush()]);
  }

  sgCounters(origin: string, group: string): SgCounters | undefined {
    if (familyOf(group) === 4) return this.v4.sgCounters(origin, group);
    return this.v6?.sgCounters(origin, group);
  }

  vifCounters(family: Family, vifi: number): VifCounters | undefined {
    return family === 4 ? this.v4.vifCounters(vifi) : this.v6?.mifCounters(vifi);
  }

  /**
   * One watch over the upcalls of both tables: the IPv4 one now, the IPv6 one from when it is
   * taken. Only one at a time (libuv polls an fd once).
   */
  watchUpcalls(onNoCache: (u: NoCache) => void): Watch {
    if (this.upcalls) throw new Error("upcalls are already watched");
    const upcalls: Upcalls = { onNoCache, v4: this.v4.watchUpcalls(onNoCache), v6: this.v6?.watchUpcalls(onNoCache) };
    this.upcalls = upcalls;
    return {
      close: () => {
        if (this.upcalls !== upcalls) return;
        this.upcalls = undefined;
        upcalls.v4.close();
        upcalls.v6?.close();
      },
    };
  }

  /** Leaves every group and releases both tables (MRT_DONE, MRT6_DONE); throws the first failure after all. */
  close(): void {
    const upcalls = this.upcalls;
    this.upcalls = undefined;
    // libuv must forget the fds before the sockets close.
    upcalls?.v4.close();
    upcalls?.v6?.close();
    this.adds4.close();
    attempt([() => this.memberships.close(), () => this.v4.close(), () => this.v6?.close()]);
  }
}

/** The KernelError `call` throws, or undefined when it succeeds; anything else is rethrown. */
function refusal(call: () => void): KernelError | undefined {
  try {
    call();
    return undefined;
  } catch (err) {
    if (err instanceof KernelError) return err;
    throw err;
  }
}

/** Runs every step, whatever the others did, then throws the first failure. */
function attempt(steps: (() => void)[]): void {
  let first: { err: unknown } | undefined;
  for (const step of steps) {
    try {
      step();
    } catch (err) {
      first ??= { err };
    }
  }
  if (first) throw first.err;
}
