// The practice lab (scripts/lab, scripts/run-dev.sh --lab): up, the dev daemon in its router, a
// route, real multicast from the sender to the receivers, status, down — and afterwards nothing is
// left and the host was never touched. Uses a lab of its own (MFC_LAB=mfct-labtest-<pid>) and a
// temp config, so a user's lab and dev daemon are not disturbed. Needs root and a build (dist/).
// Run: node --import tsx --test test/e2e/lab.test.ts
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const LAB = `mfct-labtest-${process.pid}`;
const NS = ["sender", "router", "recv1", "recv2"].map((r) => `${LAB}-${r}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Result { code: number; stdout: string; stderr: string }

void describe("practice lab", { skip: process.getuid?.() !== 0 ? "needs root (network namespaces)" : false }, () => {
  let dir = "";
  let env: NodeJS.ProcessEnv = {};
  let daemon: ChildProcess | undefined;
  let daemonOut = "";
  let daemonExit: Promise<number | null> = Promise.resolve(null);
  const hostLinks = (): string => execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).split("\n").map((l) => l.split(":")[1]?.trim()).sort().join(" ");
  const hostMroutes = (): string => execFileSync("ip", ["mroute", "show"], { encoding: "utf8" });
  const namespaces = (): string[] => execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").map((l) => l.split(" ")[0] ?? "").filter((n) => n.startsWith(`${LAB}-`)).sort();
  let linksBefore = "";
  let mroutesBefore = "";

  const tool = (file: string, args: string[], timeoutMs = 60_000): Promise<Result> => new Promise((res) => {
    execFile(join(ROOT, file), args, { env, timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
  const lab = (...args: string[]): Promise<Result> => tool("scripts/lab", args);
  const mfc = (...args: string[]): Promise<Result> => tool("scripts/mfc", args);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "mfct-labtest-"));
    writeFileSync(join(dir, "dev.conf"), `[daemon]\nsocket_path = ${dir}/mfc.sock\nstate_file = ${dir}/state.json\nsocket_group =\n`);
    env = { ...process.env, MFC_LAB: LAB, MFC_CONFIG: join(dir, "dev.conf"), MFC_BUILD: "0" };
    linksBefore = hostLinks();
    mroutesBefore = hostMroutes();
  });

  after(async () => {
    if (namespaces().length) await lab("down");
    if (daemon?.pid && daemon.exitCode === null) daemon.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  void it("up creates the four namespaces with the README's names and addresses, and is idempotent", async () => {
    const up = await lab("up");
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(namespaces(), [...NS].sort());
    const addrs = execFileSync("ip", ["-n", `${LAB}-router`, "-4", "-o", "addr", "show"], { encoding: "utf8" });
    for (const [ifname, addr] of [["eth0", "10.0.0.254/24"], ["eth1", "10.0.1.254/24"], ["eth2", "10.0.2.254/24"]] as const) {
      assert.ok(addrs.split("\n").some((l) => l.split(/\s+/)[1] === ifname && l.includes(`inet ${addr} `)), `router ${ifname} ${addr}:\n${addrs}`);
    }
    const sender = execFileSync("ip", ["-n", `${LAB}-sender`, "-4", "-o", "addr", "show", "dev", "eth0"], { encoding: "utf8" });
    assert.match(sender, /inet 10\.0\.0\.1\/24/);
    const again = await lab("up");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already up/);
    assert.equal(hostLinks(), linksBefore, "the lab created or changed links of the host");
  });

  void it("run-dev.sh --lab runs the dev daemon inside the router; status shows it", async () => {
    daemon = spawn(join(ROOT, "scripts/run-dev.sh"), ["--lab"], { env, stdio: ["ignore", "pipe", "pipe"] });
    daemon.stdout?.on("data", (d: Buffer) => (daemonOut += d.toString()));
    daemon.stderr?.on("data", (d: Buffer) => (daemonOut += d.toString()));
    const proc = daemon;
    daemonExit = new Promise((r) => proc.once("exit", (code) => r(code)));
    const deadline = Date.now() + 60_000;
    while (!existsSync(join(dir, "mfc.sock")) || (await mfc("status")).code !== 0) {
      assert.equal(daemon.exitCode, null, daemonOut);
      assert.ok(Date.now() < deadline, `daemon not ready:\n${daemonOut}`);
      await sleep(200);
    }
    const pids = execFileSync("ip", ["netns", "pids", `${LAB}-router`], { encoding: "utf8" }).split(/\s+/).filter(Boolean);
    assert.equal(pids.length, 1, `processes in the router: ${pids.join(" ")}`);
    const st = await lab("status");
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, new RegExp(`mfc_daemon in the router: pid ${pids[0]} `));
  });

  void it("a route from the CLI, then send: both receivers get every datagram, the host's table is untouched", async () => {
    const add = await mfc("add", "source", "10.0.0.1", "group", "239.1.1.1", "iif", "eth0", "oif", "eth1", "eth2");
    assert.equal(add.code, 0, add.stderr);
    const rx = spawn(join(ROOT, "scripts/lab"), ["recv", "239.1.1.1", "--seconds", "8"], { env, stdio: ["ignore", "pipe", "pipe"] });
    const recv: Result = { code: -1, stdout: "", stderr: "" };
    rx.stdout.on("data", (d: Buffer) => (recv.stdout += d.toString()));
    rx.stderr.on("data", (d: Buffer) => (recv.stderr += d.toString()));
    const rxExit = new Promise<void>((r) => rx.once("exit", (code) => { recv.code = code ?? -1; r(); }));
    const deadline = Date.now() + 20_000;
    while (!recv.stdout.includes("listening:")) { // printed once both receivers have joined
      assert.ok(Date.now() < deadline && rx.exitCode === null, `lab recv: ${recv.stdout}${recv.stderr}`);
      await sleep(50);
    }
    const send = await lab("send", "239.1.1.1", "--count", "3", "--interval", "100");
    assert.equal(send.code, 0, send.stderr);
    assert.match(send.stdout, /sent: hello 3\/3 from 10\.0\.0\.1/);
    const all = Date.now() + 5_000;
    while ((recv.stdout.match(/ got: /g) ?? []).length < 6 && Date.now() < all) await sleep(50);
    rx.kill("SIGINT"); // Ctrl-C: prints the counts and exits 0
    await rxExit;
    assert.equal(recv.code, 0, recv.stderr);
    assert.match(recv.stdout, /^listening: /m);
    for (const who of ["recv1 (behind eth1)", "recv2 (behind eth2)"]) {
      for (let i = 1; i <= 3; i++) assert.ok(recv.stdout.includes(`${who} got: hello ${i}/3 from 10.0.0.1`), recv.stdout);
    }
    assert.match(recv.stdout, /^received: recv1 \(behind eth1\) 3, recv2 \(behind eth2\) 3$/m);
    const show = await mfc("show", "routes");
    assert.match(show.stdout, /\(10\.0\.0\.1, 239\.1\.1\.1\)\s+iif eth0\s+oifs eth1 eth2\s+pkts 3 /);
    const st = await lab("status");
    assert.match(st.stdout, /\(10\.0\.0\.1,239\.1\.1\.1\)\s+Iif: eth0\s+Oifs: eth1 eth2/);
    assert.equal(hostMroutes(), mroutesBefore, "the host's multicast table changed");
  });

  void it("send and recv refuse bad input with a usage error", async () => {
    for (const args of [["send", "10.1.1.1"], ["send"], ["recv", "239.1.1.1", "--seconds", "x"], ["frob"]]) {
      const r = await lab(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^lab: .+\nusage: /);
    }
  });

  void it("down stops the daemon cleanly (state kept) and removes every namespace; nothing is left", async () => {
    const down = await lab("down");
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /stopping pid \d+ in router: .*daemon_main/);
    assert.equal(await Promise.race([daemonExit, sleep(10_000).then(() => "running")]), 0, daemonOut);
    assert.match(daemonOut, /state file kept/);
    assert.deepEqual(namespaces(), []);
    assert.ok(existsSync(join(dir, "state.json")) || existsSync(join(dir, "state.json.journal")), "the daemon's state was not kept");
    assert.equal(hostLinks(), linksBefore);
    const again = await lab("down");
    assert.equal(again.code, 0);
    assert.match(again.stdout, /not up: nothing to remove/);
    const send = await lab("send", "239.1.1.1");
    assert.equal(send.code, 2);
    assert.match(send.stderr, /is not up: run \.\/scripts\/lab up first/);
  });
});
