import type { LinkResolver } from "../kernel/port.js";

/**
 * One transaction's view of the interface table: each name is looked up once. An APPLY of 100 000
 * routes named the same few interfaces 200 000 times, a system call each (then libc's
 * if_nametoindex, a socket each, which measured as half of its time). A transaction (a group of
 * them, up to its save) is synchronous, so the table cannot change inside it.
 */
export class CachedLinks implements LinkResolver {
  private readonly byName = new Map<string, number | undefined>();
  private readonly byIndex = new Map<number, string | undefined>();

  constructor(private readonly links: LinkResolver) {}

  indexOf(ifname: string): number | undefined {
    if (this.byName.has(ifname)) return this.byName.get(ifname);
    const index = this.links.indexOf(ifname);
    this.byName.set(ifname, index);
    return index;
  }

  nameOf(ifindex: number): string | undefined {
    if (this.byIndex.has(ifindex)) return this.byIndex.get(ifindex);
    const name = this.links.nameOf(ifindex);
    this.byIndex.set(ifindex, name);
    return name;
  }
}
