/** Real multicast through the lab's router, for e2e forwarding checks. */
import assert from "node:assert/strict";
import type { Lab } from "./lab.js";

type Recv = "recv1" | "recv2";

/**
 * Sends n datagrams per flow from the sender (all flows at once, ttl 8); every receiver named in
 * a flow's `to` must get all n of them.
 */
export async function forwards(lab: Lab, flows: { group: string; port: number; to: Recv | Recv[] }[], n = 5): Promise<void> {
  const rxs = await Promise.all(flows.flatMap((f) => (Array.isArray(f.to) ? f.to : [f.to]).map(async (to) => ({ f, to, rx: await lab.listen(to, f.group, f.port) }))));
  try {
    await Promise.all(flows.map((f) => lab.send(f.group, f.port, n, { ttl: 8 })));
    for (const { f, to, rx } of rxs) {
      assert.ok(await rx.waitFor(n, 3_000), `${to} got ${rx.count()} of ${n} datagrams for ${f.group}`);
    }
  } finally {
    await Promise.all(rxs.map(({ rx }) => rx.stop()));
  }
}
