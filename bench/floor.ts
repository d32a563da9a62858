/**
 * The binding floor: a tight loop of MRT_ADD_MFC through Mroute4Table (the daemon's koffi binding),
 * N distinct (S,G) entries, iif VIF 0 (up0) + one oif VIF 1 (dn1); with `batch`, the same entries
 * in one KernelTables.addMfcs (rtnetlink batches: what the daemon does for a run of adds). Run
 * inside a lab router namespace:
 *   ip netns exec NS node --import tsx bench/floor.ts N [batch]
 * Prints one JSON line: {"n", "ms", "perSec", "closeMs"}; only the adds are timed (entries are built
 * before, as the daemon has them in memory; MRT_DONE afterwards is timed separately).
 */
import { Mroute4Table, SystemLinks } from "../src/kernel/mroute.js";
import { KernelTables } from "../src/kernel/tables.js";
import type { MfcEntry } from "../src/kernel/port.js";
import { addrOf, BASE_GROUP } from "./routes.js";

const n = Number(process.argv[2]);
if (!Number.isInteger(n) || n <= 0 || n >= 1 << 24) {
  process.stderr.write("usage: floor.ts N\n");
  process.exit(2);
}
const links = new SystemLinks();
const up = links.indexOf("up0");
const dn = links.indexOf("dn1");
if (up === undefined || dn === undefined) {
  process.stderr.write("floor.ts: interfaces up0/dn1 not found (run inside the lab's router namespace)\n");
  process.exit(2);
}
const entries: MfcEntry[] = [];
for (let i = 0; i < n; i++) entries.push({ origin: "10.1.1.2", group: addrOf(BASE_GROUP, i), parent: 0, ttls: [0, 1] });

const msSince = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

/** Times `add` (the adds) and `close` (MRT_DONE) apart, on a table whose two VIFs `vif` added; prints the JSON line. */
function measure(table: { close(): void }, vif: (vifi: number, ifindex: number) => void, add: () => void): void {
  try {
    vif(0, up as number);
    vif(1, dn as number);
    const t0 = process.hrtime.bigint();
    add();
    const ms = msSince(t0);
    const c0 = process.hrtime.bigint();
    table.close();
    process.stdout.write(JSON.stringify({ n, ms, perSec: Math.round(n / (ms / 1000)), closeMs: msSince(c0) }) + "\n");
  } finally {
    table.close();
  }
}

if (process.argv[3] === "batch") {
  const tables = new KernelTables();
  const batch = entries.map((e) => ({ ...e, iifIndex: up }));
  measure(tables, (vifi, ifindex) => tables.addVif({ family: 4, vifi, ifindex, threshold: 1 }), () => {
    const refused = tables.addMfcs(batch).filter((r) => r !== undefined).length;
    if (refused > 0) throw new Error(`floor.ts: ${refused} entries refused`);
  });
} else {
  const sock = new Mroute4Table();
  measure(sock, (vifi, ifindex) => sock.addVif({ vifi, ifindex, threshold: 1 }), () => {
    for (const e of entries) sock.addMfc(e);
  });
}
