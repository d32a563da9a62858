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

if (process.argv[3] === "batch") {
  const tables = new KernelTables();
  try {
    tables.addVif({ family: 4, vifi: 0, ifindex: up, threshold: 1 });
    tables.addVif({ family: 4, vifi: 1, ifindex: dn, threshold: 1 });
    const batch = entries.map((e) => ({ ...e, iifIndex: up }));
    const t0 = process.hrtime.bigint();
    const refused = tables.addMfcs(batch).filter((r) => r !== undefined).length;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (refused > 0) throw new Error(`floor.ts: ${refused} entries refused`);
    const c0 = process.hrtime.bigint();
    tables.close();
    const closeMs = Number(process.hrtime.bigint() - c0) / 1e6;
    process.stdout.write(JSON.stringify({ n, ms, perSec: Math.round(n / (ms / 1000)), closeMs }) + "\n");
  } finally {
    tables.close();
  }
  process.exit(0);
}

const sock = new Mroute4Table();
try {
  sock.addVif({ vifi: 0, ifindex: up, threshold: 1 });
  sock.addVif({ vifi: 1, ifindex: dn, threshold: 1 });
  const t0 = process.hrtime.bigint();
  for (const e of entries) sock.addMfc(e);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const c0 = process.hrtime.bigint();
  sock.close();
  const closeMs = Number(process.hrtime.bigint() - c0) / 1e6;
  process.stdout.write(JSON.stringify({ n, ms, perSec: Math.round(n / (ms / 1000)), closeMs }) + "\n");
} finally {
  sock.close();
}
