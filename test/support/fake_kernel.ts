/**
 * An in-memory IPMR table with the real kernel's observable rules (STACK.md), for fault injection:
 * `failAt(k)` makes the k-th mutating call (1-based, counted from the last `resetCalls`) fail.
 * Tests run the same scenarios against the real kernel so this fake stays honest.
 */
import { KernelError, errnoOf } from "../../src/kernel/errors.js";
import { MAXVIFS, familyOf, type Family, type KernelPort, type LinkResolver, type Membership, type MfcEntry, type SgCounters, type VifCounters, type VifSpec } from "../../src/kernel/port.js";

export interface FakeFault {
  /** 1-based index of the mutating call that fails. */
  at: number;
  /** Keep failing every call from `at` on (otherwise only that one call fails). */
  persistent?: boolean;
  errno?: string;
}

export class FakeLinks implements LinkResolver {
  private readonly byName = new Map<string, number>();
  private nextIndex = 2;

  constructor(names: string[] = []) {
    for (const n of names) this.add(n);
  }

  add(name: string): number {
    const idx = this.nextIndex++;
    this.byName.set(name, idx);
    return idx;
  }

  /** A name with a given index (e.g. mirroring the real links, to compare fake and kernel). */
  set(name: string, ifindex: number): void {
    this.byName.set(name, ifindex);
    this.nextIndex = Math.max(this.nextIndex, ifindex + 1);
  }

  /** Links with the same names and indexes as `from` has for `names` now. */
  static mirror(names: readonly string[], from: LinkResolver): FakeLinks {
    const m = new FakeLinks();
    for (const n of names) {
      const idx = from.indexOf(n);
      if (idx !== undefined) m.set(n, idx);
    }
    return m;
  }

  remove(name: string): void {
    this.byName.delete(name);
  }

  indexOf(ifname: string): number | undefined {
    return this.byName.get(ifname);
  }

  nameOf(ifindex: number): string | undefined {
    for (const [n, i] of this.byName) if (i === ifindex) return n;
    return undefined;
  }
}

export class FakeKernel implements KernelPort {
  /** VIFs of the IPv4 table, by number. */
  readonly vifs = new Map<number, VifSpec>();
  /** MIFs of the IPv6 table, by number (numbered apart, like the kernel's two tables). */
  readonly mifs = new Map<number, VifSpec>();
  readonly mfcs = new Map<string, MfcEntry>();
  calls = 0;
  closed = false;
  private faults: FakeFault[] = [];
  /** Devices the kernel will not take as a VIF (as when one has no IPv4: EADDRNOTAVAIL). */
  readonly refusedIfindexes = new Set<number>();

  /**
   * Another process (pim6sd, a second daemon) owns the IPv6 table: until this fake has taken it,
   * each IPv6 change fails as KernelTables fails it, with MRT6_INIT EADDRINUSE, and is counted.
   */
  ipv6TableBusy = false;
  ipv6TableOpen = false;
  ipv6InitRefusals = 0;

  constructor(private readonly links: LinkResolver) {}

  /** KernelTables takes the IPv6 table lazily, on the first IPv6 change. */
  private openIpv6(): void {
    if (this.ipv6TableOpen) return;
    if (this.ipv6TableBusy) {
      this.ipv6InitRefusals++;
      throw new KernelError("MRT6_INIT", errnoOf("EADDRINUSE"), "another process owns the IPv6 table");
    }
    this.ipv6TableOpen = true;
  }

  failAt(fault: FakeFault): void {
    this.faults.push(fault);
  }

  clearFaults(): void {
    this.faults = [];
  }

  resetCalls(): void {
    this.calls = 0;
  }

  private mutate(call: string): void {
    this.calls++;
    for (const f of this.faults) {
      if (this.calls === f.at || (f.persistent && this.calls > f.at)) {
        throw new KernelError(call, errnoOf((f.errno ?? "EIO") as Parameters<typeof errnoOf>[0]));
      }
    }
  }

  private table(family: Family): Map<number, VifSpec> {
    return family === 6 ? this.mifs : this.vifs;
  }

  addVif(vif: VifSpec): void {
    const call = vif.family === 6 ? "MRT6_ADD_MIF" : "MRT_ADD_VIF";
    if (vif.family === 6) this.openIpv6();
    this.mutate(call);
    const table = this.table(vif.family);
    if (vif.vifi >= MAXVIFS) throw new KernelError(call, errnoOf("ENFILE"));
    if (table.has(vif.vifi)) throw new KernelError(call, errnoOf("EADDRINUSE"));
    if (this.links.nameOf(vif.ifindex) === undefined || this.refusedIfindexes.has(vif.ifindex)) throw new KernelError(call, errnoOf("EADDRNOTAVAIL"));
    table.set(vif.vifi, { ...vif });
  }

  delVif(vif: VifSpec): void {
    const call = vif.family === 6 ? "MRT6_DEL_MIF" : "MRT_DEL_VIF";
    this.mutate(call);
    if (!this.table(vif.family).delete(vif.vifi)) throw new KernelError(call, errnoOf("EADDRNOTAVAIL"));
  }

  addMfc(entry: MfcEntry): void {
    const family = familyOf(entry.group);
    const call = family === 6 ? "MRT6_ADD_MFC" : "MRT_ADD_MFC";
    if (family === 6) this.openIpv6();
    this.mutate(call);
    if (entry.parent >= MAXVIFS) throw new KernelError(call, errnoOf("ENFILE"));
    // Silent replace by (origin, group), like the kernel; OIFs naming missing VIFs are dropped.
    const table = this.table(family);
    // IPv6 (ip6mr_mfc_add): a set of MIFs, each member forwarding hop limit > 1, i.e. ttl 1.
    const ttls = entry.ttls.map((t, v) => (!table.has(v) || t === 0 ? 0 : family === 6 ? 1 : t));
    this.mfcs.set(`${entry.origin},${entry.group}`, { ...entry, ttls });
  }

  /**
   * addMfc of each, in order, each a mutating call of its own (so failAt counts them one by one,
   * and a fault refuses that entry alone). The real kernel names the parent by its device in a
   * batch (mfc_netlink.ts): an `iifIndex` that is not the device of the VIF at `parent` is a bug
   * upstream, which would program another parent there, so it throws here (0 names none: the
   * kernel refuses the message and MRT_ADD_MFC decides, as addMfc here).
   */
  addMfcs(entries: readonly (MfcEntry & { iifIndex: number })[]): (KernelError | undefined)[] {
    return entries.map((e) => {
      const vif = this.table(familyOf(e.group)).get(e.parent);
      if (vif && e.iifIndex !== 0 && vif.ifindex !== e.iifIndex) throw new Error(`addMfcs: iifIndex ${e.iifIndex} is not the device of VIF ${e.parent} (${vif.ifindex})`);
      try {
        this.addMfc(e);
        return undefined;
      } catch (err) {
        if (err instanceof KernelError) return err;
        throw err;
      }
    });
  }

  delMfc(entry: Pick<MfcEntry, "origin" | "group" | "parent">): void {
    const call = familyOf(entry.group) === 6 ? "MRT6_DEL_MFC" : "MRT_DEL_MFC";
    this.mutate(call);
    if (!this.mfcs.delete(`${entry.origin},${entry.group}`)) throw new KernelError(call, errnoOf("ENOENT"));
  }

  /** Memberships by "ifindex/group/source" (source "*" = any). */
  readonly memberships = new Set<string>();

  join(m: Membership): void {
    const call = m.source === null ? "MCAST_JOIN_GROUP" : "MCAST_JOIN_SOURCE_GROUP";
    this.mutate(call);
    // Like ip_mc_find_dev: joining on an index no device has is ENODEV.
    if (this.links.nameOf(m.ifindex) === undefined) throw new KernelError(call, errnoOf("ENODEV"));
    const key = `${m.ifindex}/${m.group}/${m.source ?? "*"}`;
    if (this.memberships.has(key)) throw new KernelError(call, errnoOf("EADDRINUSE"));
    this.memberships.add(key);
  }

  leave(m: Membership): void {
    this.mutate(m.source === null ? "MCAST_LEAVE_GROUP" : "MCAST_LEAVE_SOURCE_GROUP");
    // Leaving what is not held is done already (the real pool answers the same).
    this.memberships.delete(`${m.ifindex}/${m.group}/${m.source ?? "*"}`);
  }

  flushAll(): void {
    // MRT_FLUSH is about the routing table: memberships stay.
    this.vifs.clear();
    this.mifs.clear();
    this.mfcs.clear();
  }

  /**
   * What a device removal does in the kernel: its VIF goes, MFC entries keep the stale index, and
   * the device's memberships go (the sockets' lists keep them until left: our leave is idempotent).
   */
  dropVifOfIfindex(ifindex: number): void {
    for (const table of [this.vifs, this.mifs]) for (const [vifi, v] of table) if (v.ifindex === ifindex) table.delete(vifi);
    for (const key of this.memberships) if (key.startsWith(`${ifindex}/`)) this.memberships.delete(key);
  }

  sgCounters(origin: string, group: string): SgCounters | undefined {
    return this.mfcs.has(`${origin},${group}`) ? { packets: 0, bytes: 0, wrongIf: 0 } : undefined;
  }

  vifCounters(family: Family, vifi: number): VifCounters | undefined {
    return this.table(family).has(vifi) ? { pktsIn: 0, bytesIn: 0, pktsOut: 0, bytesOut: 0 } : undefined;
  }

  close(): void {
    this.closed = true;
    this.vifs.clear();
    this.mifs.clear();
    this.mfcs.clear();
    this.memberships.clear();
  }

  /** A comparable dump: VIFs by index and MFC entries by (origin, group), trailing zero TTLs trimmed. */
  dump(): { vifs: [number, number, number][]; mifs: [number, number, number][]; mfcs: [string, number, number[]][] } {
    const rows = (t: Map<number, VifSpec>): [number, number, number][] =>
      [...t.values()].map((v) => [v.vifi, v.ifindex, v.threshold] as [number, number, number]).sort((a, b) => a[0] - b[0]);
    return {
      vifs: rows(this.vifs), mifs: rows(this.mifs),
      mfcs: [...this.mfcs.entries()].map(([k, m]) => {
        const t = [...m.ttls];
        while (t.length && t[t.length - 1] === 0) t.pop();
        return [k, m.parent, t] as [string, number, number[]];
      }).sort((a, b) => a[0].localeCompare(b[0])),
    };
  }
}
