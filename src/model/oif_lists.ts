/**
 * One copy of each distinct oif list within one pass (a state file with its journal, a request):
 * fan-outs repeat a few lists over many groups, and at 100 000 routes one list with its objects per
 * route held ~8 MB that nothing needs. Routes never change a list in place (Route.oifs is
 * readonly; the shared copies are frozen, so a slip would throw rather than change other routes).
 */
import type { Oif } from "./types.js";

/**
 * A text equal for equal lists only (names and TTLs, in order). Interface names hold no whitespace
 * (ifname.ts, the kernel's dev_valid_name): a space cannot be forged by a name.
 */
export function oifListKey(list: readonly Readonly<Oif>[]): string {
  let id = "";
  for (const o of list) id += `${o.ifname} ${o.ttl} `;
  return id;
}

export class OifLists {
  private readonly pool = new Map<string, readonly Readonly<Oif>[]>();

  intern(list: readonly Readonly<Oif>[]): readonly Readonly<Oif>[] {
    const id = oifListKey(list);
    const known = this.pool.get(id);
    if (known) return known;
    const own = Object.freeze(list.map((o) => Object.freeze({ ifname: o.ifname, ttl: o.ttl })));
    this.pool.set(id, own);
    return own;
  }
}
