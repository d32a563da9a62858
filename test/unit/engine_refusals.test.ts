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
