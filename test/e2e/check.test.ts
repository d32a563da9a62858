/**
 * `mfc check` on the real kernel: rp_filter (strict) silently drops multicast from a source that is
 * not routed back via the input interface. check must name it, and its suggested fix must make
 * packets flow. Also: `mfc add` warns about it at once.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createLab } from "../lab/lab.js";
import { startDaemon } from "../lab/daemon.js";

const lab = await createLab();
after(() => lab.destroy());
const d = await startDaemon(lab);
after(() => d.cleanup());

void test("check finds strict rp_filter on the iif, and its fix makes packets flow", async () => {
  const src = `10.${lab.x}.9.2`; // not routed back via up0: strict rp_filter drops it
  await lab.exec(lab.ns.sender, ["ip", "addr", "add", `${src}/32`, "dev", "eth0"]);
  await lab.exec(lab.ns.router, ["sysctl", "-qw", "net.ipv4.conf.up0.rp_filter=1"]);
  const group = "239.77.1.1";
  const add = await d.mfc(["add", "from", src, "to", group, "iif", "up0", "oif", "dn1"]);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stderr, /^mfc: error: RP_FILTER_STRICT/m);

  const rx = await lab.listen("recv1", group, 5301);
  await lab.send(group, 5301, 3, { localAddr: src });
  assert.equal(await rx.waitFor(1, 700), false, "strict rp_filter must drop the traffic (else this test proves nothing)");

  const check = await d.mfc(["-j", "check"]);
  assert.equal(check.code, 0, check.stderr);
  const findings = (JSON.parse(check.stdout) as { result: { findings: { code: string; ifname?: string; fix?: string }[] } }).result.findings;
  const rp = findings.find((f) => f.code === "RP_FILTER_STRICT");
  assert.ok(rp, `no RP_FILTER_STRICT in ${check.stdout}`);
  assert.equal(rp.ifname, "up0");
  const text = await d.mfc(["check", "from", src, "to", group]);
  assert.match(text.stdout, /RP_FILTER_STRICT .*up0[\s\S]*fix: sysctl -w/);

  // Apply exactly the suggested fix, in the router's namespace.
  assert.ok(rp.fix?.startsWith("sysctl -w "));
  await lab.exec(lab.ns.router, (rp.fix ?? "").split(" "));
  const again = await d.mfc(["-j", "check", "from", src, "to", group]);
  const left = (JSON.parse(again.stdout) as { result: { findings: { code: string }[] } }).result.findings;
  assert.equal(left.filter((f) => f.code.startsWith("RP_FILTER")).length, 0);
  await lab.send(group, 5301, 3, { localAddr: src });
  assert.ok(await rx.waitFor(3, 3000), `after the fix packets must arrive (got ${rx.count()})`);
});

void test("check finds a down output interface", async () => {
  const add = await d.mfc(["add", "from", lab.addr.sender, "to", "239.77.2.1", "iif", "up0", "oif", "dn2"]);
  assert.equal(add.code, 0, add.stderr);
  await lab.exec(lab.ns.router, ["ip", "link", "set", "dn2", "down"]);
  try {
    const r = await d.mfc(["check", "to", "239.77.2.1", "from", lab.addr.sender]);
    assert.match(r.stdout, /IF_DOWN .*dn2 is down[\s\S]*fix: ip link set dn2 up/);
  } finally {
    await lab.exec(lab.ns.router, ["ip", "link", "set", "dn2", "up"]);
  }
  const unknown = await d.mfc(["check", "to", "239.77.9.9"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /E_MFC_NOT_FOUND/);
});

void test("check names multicast that arrives but matches no route (a wrong source, say)", async () => {
  const group = "239.77.3.3";
  // up0 is a VIF (the routes above use it), so the kernel notices the flow and queues it as unresolved.
  const add = await d.mfc(["add", "from", "10.254.254.254", "to", group, "iif", "up0", "oif", "dn1"]);
  assert.equal(add.code, 0, add.stderr);
  await lab.send(group, 5302, 2);
  const r = await d.mfc(["-j", "check"]);
  const findings = (JSON.parse(r.stdout) as { result: { findings: { code: string; route?: string; fix?: string }[] } }).result.findings;
  const unrouted = findings.find((f) => f.code === "UNROUTED_TRAFFIC");
  assert.ok(unrouted, `no UNROUTED_TRAFFIC in ${r.stdout}`);
  assert.equal(unrouted.route, `(${lab.addr.sender}, ${group})`, "names the real source, not the configured one");
  assert.match(unrouted.fix ?? "", new RegExp(`mfc add from ${lab.addr.sender.replace(/\./g, "\\.")} to ${group.replace(/\./g, "\\.")}`));
});
