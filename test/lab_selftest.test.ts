// Self-test of the netns lab (test/lab/lab.ts). Needs root. Run:
//   node --import tsx --test test/lab_selftest.test.ts
import { after, before, describe, it, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createLab, isAlive, removeStaleLabs, type Lab } from "./lab/lab.js";

const GROUP = "239.1.2.3";
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const netnsList = (): string[] =>
  execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter(Boolean);
const hasCmd = (cmd: string): boolean => {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};
async function waitGone(pid: number, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isAlive(pid) && Date.now() < deadline) await sleep(20);
  return !isAlive(pid);
}

void describe("lab topology", () => {
  let lab: Lab;
  before(async () => {
    lab = await createLab();
  });
  // The recommended pattern: teardown in after() runs even if a test fails.
  after(() => lab.destroy());

  void it("creates four mfct- namespaces", () => {
    const names = Object.values(lab.ns);
    assert.equal(new Set(names).size, 4);
    for (const n of names) assert.match(n, /^mfct-/);
    const listed = netnsList();
    for (const n of names) assert.ok(listed.includes(n), `${n} missing from ip netns list`);
  });

  void it("router has up0/dn1/dn2 with addresses, multicast on, forwarding and rp_filter=0", async () => {
    const want: [string, string][] = [
      [lab.routerIf.up, lab.addr.routerUp],
      [lab.routerIf.dn1, lab.addr.routerDn1],
      [lab.routerIf.dn2, lab.addr.routerDn2],
    ];
    const addrs = (await lab.exec(lab.ns.router, ["ip", "-o", "-4", "addr", "show"])).stdout;
    for (const [ifname, a] of want) {
      assert.match(addrs, new RegExp(`^\\d+: ${ifname}\\s+inet ${a.replaceAll(".", "\\.")}/24 `, "m"));
      const link = (await lab.exec(lab.ns.router, ["ip", "-o", "link", "show", "dev", ifname])).stdout;
      assert.match(link, /<[^>]*MULTICAST[^>]*UP[^>]*>/, link);
    }
    for (const [role, a] of [["sender", lab.addr.sender], ["recv1", lab.addr.recv1], ["recv2", lab.addr.recv2]] as const) {
      const out = (await lab.exec(lab.ns[role], ["ip", "-o", "-4", "addr", "show", "dev", "eth0"])).stdout;
      assert.ok(out.includes(`inet ${a}/24`), `${role}: ${out}`);
      const routes = (await lab.exec(lab.ns[role], ["ip", "route", "show"])).stdout;
      assert.match(routes, /^224\.0\.0\.0\/4 dev eth0/m);
    }
    const sys = await lab.exec(lab.ns.router, ["sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.dn1.rp_filter"]);
    assert.deepEqual(sys.stdout.trim().split("\n"), ["1", "0", "0"]);
  });

  void it("without multicast routing the router does not forward, though the receiver works", async () => {
    const rx = await lab.listen("recv1", GROUP, 5001);
    // The router itself joins on up0, proving the sender's datagrams really reached it.
    const atRouter = await lab.listen("router", GROUP, 5001);
    try {
      await lab.send(GROUP, 5001, 3, { payload: "from-sender" });
      assert.ok(await atRouter.waitFor(3), "datagrams did not reach the router's up0");
      await sleep(500);
      assert.equal(rx.count(), 0, `recv1 got unrouted traffic: ${rx.payloads().join(",")}`);

      // Positive control: the same receiver does get traffic sent on its own link (router dn1).
      await lab.send(GROUP, 5001, 3, { fromNs: lab.ns.router, localAddr: lab.addr.routerDn1, payload: "on-link" });
      assert.ok(await rx.waitFor(3), `recv1 got ${rx.count()} of 3`);
      assert.deepEqual(rx.payloads(), ["on-link", "on-link", "on-link"]);
    } finally {
      await rx.stop();
      await atRouter.stop();
    }
  });

  void it("unicast: ping sender -> router", { skip: hasCmd("ping") ? false : "ping not installed" }, async () => {
    await lab.exec(lab.ns.sender, ["ping", "-c1", "-W1", lab.addr.routerUp]);
  });

  void it("unicast: UDP sender -> recv1 is routed through the router", async () => {
    const rx = await lab.listen("recv1", "-", 5003); // "-" = no group join
    try {
      await lab.send(lab.addr.recv1, 5003, 2, { payload: "uni" });
      assert.ok(await rx.waitFor(2), `recv1 got ${rx.count()} of 2`);
    } finally {
      await rx.stop();
    }
  });

  void it("addDummy/delLink manage extra router interfaces", async () => {
    await lab.addDummy("xvif0");
    const link = (await lab.exec(lab.ns.router, ["ip", "-o", "link", "show", "dev", "xvif0"])).stdout;
    assert.match(link, /<[^>]*MULTICAST[^>]*UP[^>]*>/);
    await lab.delLink("xvif0");
    const r = await lab.exec(lab.ns.router, ["ip", "link", "show", "dev", "xvif0"], { allowFail: true });
    assert.notEqual(r.code, 0);
  });

  void it("destroy kills lab processes, removes namespaces and is idempotent", async () => {
    const rx = await lab.listen("recv2", GROUP, 5004);
    await lab.destroy();
    assert.ok(await waitGone(rx.pid), "receiver survived destroy()");
    const listed = netnsList();
    for (const n of Object.values(lab.ns)) assert.ok(!listed.includes(n), `${n} still exists`);
    await lab.destroy(); // second call is a no-op
  });
});

void test("concurrent labs get distinct names and subnets", async () => {
  const labs = await Promise.all([createLab(), createLab()]);
  try {
    const [a, b] = labs;
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.addr.routerUp, b.addr.routerUp);
  } finally {
    await Promise.all(labs.map((l) => l.destroy()));
  }
});

void test("destroy() still runs when the test body throws (try/finally)", async () => {
  let names: string[] = [];
  await assert.rejects(async () => {
    const lab = await createLab();
    names = Object.values(lab.ns);
    try {
      await lab.listen("recv1", GROUP, 5005);
      throw new Error("boom");
    } finally {
      await lab.destroy();
    }
  }, /boom/);
  const listed = netnsList();
  for (const n of names) assert.ok(!listed.includes(n), `${n} leaked`);
});

// Safety net: a child process creates a lab and then exits / gets signalled without destroy().
const LAB_URL = new URL("./lab/lab.ts", import.meta.url).href;
const CHILD = `
const { createLab } = await import(${JSON.stringify(LAB_URL)});
const lab = await createLab();
const rx = await lab.listen("recv1", "${GROUP}", 5006);
console.log(JSON.stringify({ ns: Object.values(lab.ns), rxPid: rx.pid }));
if (process.argv[1] === "exit") process.exit(0);
setInterval(() => {}, 1000);
`;
async function runChild(mode: "exit" | "SIGTERM" | "SIGKILL"): Promise<{ ns: string[]; rxPid: number }> {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", CHILD, mode], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const closed = new Promise<void>((r) => child.once("close", () => r()));
  const info = await new Promise<{ ns: string[]; rxPid: number }>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line) as { ns: string[]; rxPid: number });
    });
    void closed.then(() => reject(new Error(`child exited early: ${err}`)));
  });
  if (mode !== "exit") child.kill(mode);
  await closed;
  return info;
}

for (const mode of ["exit", "SIGTERM"] as const) {
  void test(`process ${mode} without destroy() still removes the lab`, async () => {
    const { ns, rxPid } = await runChild(mode);
    const listed = netnsList();
    for (const n of ns) assert.ok(!listed.includes(n), `${n} leaked after ${mode}`);
    assert.ok(await waitGone(rxPid), "receiver outlived its lab");
  });
}

void test("SIGKILLed owner: receiver exits on its own, removeStaleLabs() cleans the namespaces", async () => {
  const { ns, rxPid } = await runChild("SIGKILL");
  assert.ok(await waitGone(rxPid), "receiver outlived its SIGKILLed owner");
  assert.ok(ns.every((n) => netnsList().includes(n)), "expected leftovers after SIGKILL");
  assert.ok((await removeStaleLabs()) >= 4);
  const listed = netnsList();
  for (const n of ns) assert.ok(!listed.includes(n), `${n} not removed`);
});
