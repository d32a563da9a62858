/**
 * A route the kernel refuses at start stays pending with the errno (SPEC §6.3) and never makes a
 * later change fail: an APPLY that keeps it as it is succeeds and leaves it waiting; only a change
 * to that route itself tries it again (and gets E_KERNEL if the kernel still refuses).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Engine } from "../../src/engine/engine.js";
import { pendingReason } from "../../src/engine/realize.js";
import { MfcError } from "../../src/errors/codes.js";
import { KernelError, errnoOf } from "../../src/kernel/errors.js";
import type { MfcEntry } from "../../src/kernel/port.js";
import { emptyConfig, routeKey, type Route } from "../../src/model/types.js";
import { parseOp } from "../../src/protocol/schema.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore } from "../support/memory_store.js";

const REFUSED_GROUP = "239.9.9.9";

/** A kernel that will not take one group (as it might for want of memory: ENOBUFS). */
class PickyKernel extends FakeKernel {
  override addMfc(entry: MfcEntry): void {
    if (entry.group === REFUSED_GROUP) throw new KernelError("MRT_ADD_MFC", errnoOf("ENOBUFS"));
    super.addMfc(entry);
  }
}

const route = (group: string, oif: string): Route => ({ source: null, group, iif: "e0", oifs: [{ ifname: oif, ttl: 1 }] });

void test("a route the kernel refuses at start waits with the errno, and only a change to it is refused", async () => {
  const links = new FakeLinks(["e0", "e1", "e2"]);
  const a = route("239.1.1.1", "e1");
  const b = route(REFUSED_GROUP, "e2");
  const initial = emptyConfig();
  for (const r of [a, b]) initial.routes.set(routeKey(r.source, r.group), r);
  const store = new MemoryStore(undefined, initial);
  const kernel = new PickyKernel(links);
  const engine = new Engine(kernel, links, store);

  const restored = await engine.restore();
  assert.deepEqual(restored, { routes: 2, installed: 1 }, "the start does not fail: one installed, one pending");
  const keyB = routeKey(null, REFUSED_GROUP);
  assert.equal(pendingReason(keyB, b, engine.snapshot().image), "kernel refused route: ENOBUFS");

  // An APPLY that keeps b as it is (and adds c) is not failed by b.
  const c = route("239.3.3.3", "e1");
  await engine.transact([parseOp("APPLY", { state: { vifs: [], routes: [a, b, c] } })], false);
  const { config, image } = engine.snapshot();
  assert.equal(config.routes.size, 3);
  assert.ok(image.mfcs.has(routeKey(null, "239.3.3.3")), "c installed");
  assert.equal(pendingReason(keyB, b, image), "kernel refused route: ENOBUFS", "b still waits, with its reason");

  // Changing b itself tries it again: the kernel's answer is the change's answer.
  await assert.rejects(engine.transact([parseOp("REPLACE_MFC", { ...b, oifs: ["e1"] })], false), (err: unknown) => {
    assert.ok(err instanceof MfcError);
    assert.equal(err.code, "E_KERNEL");
    return true;
  });
  assert.equal(store.last?.routes.size, 3, "nothing of the refused change was saved");
});

/** Two routes on e0, one of them only over e2 (its entry must go when e2 goes). */
async function twoRoutes(): Promise<{ links: FakeLinks; kernel: FakeKernel; engine: Engine; keyQ: string }> {
  const links = new FakeLinks(["e0", "e1", "e2"]);
  const kernel = new FakeKernel(links);
  const engine = new Engine(kernel, links, new MemoryStore());
  await engine.transact([parseOp("ADD_MFC", route("239.1.1.1", "e1")), parseOp("ADD_MFC", route("239.2.2.2", "e2"))], false);
  // The device goes: the kernel drops its VIF by itself, the entry keeps the stale index.
  const ifindex = links.indexOf("e2") as number;
  links.remove("e2");
  kernel.dropVifOfIfindex(ifindex);
  return { links, kernel, engine, keyQ: "0.0.0.0,239.2.2.2" };
}

void test("reconcile: a removal the kernel refuses stays in the image (kernel = memory), is reported, and is retried", async () => {
  const { kernel, engine, keyQ } = await twoRoutes();
  kernel.resetCalls();
  kernel.failAt({ at: 1, errno: "EIO" }); // the first call of the reconcile: MRT_DEL_MFC of the stale entry
  await engine.reconcile();
  assert.match(engine.degraded ?? "", /could not converge: del_mfc/);
  assert.equal(engine.waitingInterfaces().get("e2"), "interface missing", "what waits, and why, is still known");
  assert.ok(kernel.mfcs.has(keyQ), "the kernel still holds the entry");
  assert.ok([...engine.snapshot().image.mfcs.values()].some((m) => `${m.source ?? "0.0.0.0"},${m.group}` === keyQ), "and so does the image: memory tells the truth");
  kernel.clearFaults();
  await engine.reconcile(); // what the daemon's retry timer does while degraded
  assert.equal(kernel.mfcs.has(keyQ), false, "the retry removed it");
  assert.equal(engine.degraded, undefined);
});

void test("reconcile: deleting an entry the kernel no longer has (ENOENT) reaches the goal and is no problem", async () => {
  const { kernel, engine, keyQ } = await twoRoutes();
  kernel.mfcs.delete(keyQ); // already gone: MRT_DEL_MFC answers ENOENT
  await engine.reconcile();
  assert.equal(engine.degraded, undefined);
  assert.equal(engine.snapshot().image.mfcs.size, 1);
});

void test("restore while another process owns the IPv6 table: IPv4 installs, every MIF waits with MRT6_INIT, asked once", async () => {
  const names = Array.from({ length: 12 }, (_, i) => `e${i}`);
  const links = new FakeLinks(names);
  const initial = emptyConfig();
  const v4 = route("239.1.1.1", "e1");
  initial.routes.set(routeKey(null, v4.group), v4);
  // 12 MIFs wanted (e0-e11), over 10 IPv6 routes.
  for (let i = 1; i <= 10; i++) {
    const r: Route = { source: null, group: `ff3e::${i}`, iif: "e0", oifs: [{ ifname: `e${i}`, ttl: 1 }, { ifname: `e${i + 1}`, ttl: 1 }] };
    initial.routes.set(routeKey(null, r.group), r);
  }
  const kernel = new FakeKernel(links);
  kernel.ipv6TableBusy = true;
  const engine = new Engine(kernel, links, new MemoryStore(undefined, initial));

  assert.deepEqual(await engine.restore(), { routes: 11, installed: 1 }, "the start does not fail; the IPv4 route is installed");
  // One refusal names the table for all: not one more round over the config per MIF.
  assert.equal(kernel.ipv6InitRefusals, 1);
  const { image } = engine.snapshot();
  const r = initial.routes.get(routeKey(null, "ff3e::5")) as Route;
  assert.match(pendingReason(routeKey(null, "ff3e::5"), r, image) ?? "", /kernel refused MIF: EADDRINUSE \(another process owns the IPv6 table\)/);
  assert.deepEqual(kernel.dump().mifs, []);
});
