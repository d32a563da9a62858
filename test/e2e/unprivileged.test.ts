// The daemon as it runs in production (SPEC §2): an unprivileged user holding only CAP_NET_RAW and
// CAP_NET_ADMIN programs the kernel and forwards; without the capabilities it refuses to start
// with a message naming what is missing. A group and a user with unique names are created here
// and removed in after(), also when a test fails. Needs root and a build (tests run dist/; from a
// copy that the user can read when the checkout is not, e.g. in /root: test/lab/readable_dist.ts). Run:
//   node --import tsx --test test/e2e/unprivileged.test.ts
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab, type Lab } from "../lab/lab.js";
import { DAEMON_JS, kernelTables, runCli } from "../lab/daemon.js";
import { readableDist, type ReadableDist } from "../lab/readable_dist.js";
import { exchange } from "../support/raw_client.js";

const tag = `${process.pid.toString(36)}${randomBytes(2).toString("hex")}`;
const USER = `mfctdaemon${tag}`;
const GROUP = `mfctdg${tag}`;
const GROUP_ADDR = "239.7.7.7";
const PORT = 5_077;

const created = { user: false, group: false, dirs: [] as string[] };
const allDirs: string[] = [];
/** dist/ where USER can read it (the checkout's own, or a temp copy). */
let dist: ReadableDist | undefined;
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
function removeAll(): void {
  if (created.user) { created.user = false; try { sh("userdel", [USER]); } catch { /* gone */ } }
  if (created.group) { created.group = false; try { sh("groupdel", [GROUP]); } catch { /* gone */ } }
  for (const dir of created.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  dist?.cleanup();
}
process.once("exit", removeAll);

interface Unpriv {
  proc: ChildProcess;
  dir: string;
  socket: string;
  stateFile: string;
  logs(): string;
  exited: Promise<number | null>;
}

/** Starts dist/daemon_main.js in the router namespace as USER with exactly `caps` (setpriv names). */
function spawnAs(lab: Lab, caps: string[], extraConfig = ""): Unpriv {
  // As in the packages (/run root 0755 -> /run/mfc_daemon owned by the daemon's user): root hands
  // the user a directory inside one only root can write to. The CLI trusts a socket owned by the
  // directory's owner only then (src/cli/socket_check.ts); a user's own directory directly in /tmp
  // could have been made by anyone.
  const top = mkdtempSync(join(tmpdir(), "mfct-u-"));
  created.dirs.push(top);
  allDirs.push(top);
  chmodSync(top, 0o755);
  const dir = join(top, "run");
  mkdirSync(dir);
  const socket = join(dir, "mfc.sock");
  const stateFile = join(dir, "state.json");
  const config = join(dir, "mfc_daemon.conf");
  writeFileSync(config, `[daemon]\nsocket_path = ${socket}\nstate_file = ${stateFile}\nsocket_group =\n${extraConfig}\n`);
  const { uid, gid } = ids();
  chownSync(dir, uid, gid);
  chownSync(config, uid, gid);
  chmodSync(dir, 0o755);
  const set = ["-all", ...caps.map((c) => `+${c}`)].join(",");
  const proc = lab.spawn(lab.ns.router, [
    "setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups",
    `--inh-caps=${set}`, `--ambient-caps=${set}`, `--bounding-set=${set}`,
    dist?.node ?? process.execPath, dist?.daemonJs ?? DAEMON_JS, "--config", config,
  ]);
  let out = "";
  proc.stdout?.on("data", (b: Buffer) => (out += b.toString()));
  proc.stderr?.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  return { proc, dir, socket, stateFile, logs: () => out, exited };
}

function ids(): { uid: number; gid: number } {
  return { uid: Number(sh("id", ["-u", USER]).trim()), gid: Number(sh("id", ["-g", USER]).trim()) };
}

async function waitReady(u: Unpriv, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (u.proc.exitCode !== null) throw new Error(`daemon exited ${u.proc.exitCode}:\n${u.logs()}`);
    if (existsSync(u.socket)) {
      const ok = await exchange(u.socket, '{"action":"PING"}\n', 1, 1_000).then(() => true, () => false);
      if (ok) return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`daemon not ready after ${ms} ms:\n${u.logs()}`);
}

async function expectExit(u: Unpriv, ms = 15_000): Promise<number | null> {
  const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms).unref());
  const code = await Promise.race([u.exited, timer]);
  if (code === "timeout") {
    u.proc.kill("SIGKILL");
    assert.fail(`daemon still running after ${ms} ms:\n${u.logs()}`);
  }
  return code;
}

function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

void describe("unprivileged daemon", () => {
  let lab: Lab;

  before(async () => {
    dist = readableDist();
    if (dist.copied) {
      allDirs.push(dist.root);
      process.stderr.write(`running a readable copy of dist/ in ${dist.root}: ${dist.reason}\n`);
    }
    sh("groupadd", [GROUP]);
    created.group = true;
    sh("useradd", ["-M", "-N", "-g", GROUP, "-s", "/usr/sbin/nologin", USER]);
    created.user = true;
    lab = await createLab();
  });
  after(async () => {
    try {
      await lab?.destroy();
    } finally {
      removeAll();
    }
  });

  void it("with only CAP_NET_RAW + CAP_NET_ADMIN it programs the kernel and forwards", async () => {
    const u = spawnAs(lab, ["net_raw", "net_admin"]);
    try {
      await waitReady(u);
      // The process really is the unprivileged user with exactly those two capabilities.
      const st = procStatus(u.proc.pid ?? -1);
      const { uid, gid } = ids();
      assert.deepEqual(st.Uid?.split(/\s+/).map(Number), [uid, uid, uid, uid]);
      assert.deepEqual(st.Gid?.split(/\s+/).map(Number), [gid, gid, gid, gid]);
      assert.equal(st.Groups, "");
      assert.equal(BigInt(`0x${st.CapEff ?? ""}`), (1n << 12n) | (1n << 13n), `CapEff ${st.CapEff}`);
      assert.equal(BigInt(`0x${st.CapBnd ?? ""}`), (1n << 12n) | (1n << 13n), `CapBnd ${st.CapBnd}`);
      // The socket belongs to the daemon's user; root (the CLI here) is let in by the peer check.
      assert.equal(statSync(u.socket).uid, uid);
      assert.equal((statSync(u.socket).mode & 0o777).toString(8), "660");

      const add = await runCli(["-s", u.socket, "add", "from", lab.addr.sender, "to", GROUP_ADDR, "iif", "up0", "oif", "dn1"]);
      assert.equal(add.code, 0, `${add.stderr}\n${u.logs()}`);
      const t = await kernelTables(lab);
      assert.equal(t.cache.length, 1, JSON.stringify(t));
      assert.equal(t.vif.length, 2, JSON.stringify(t));

      const rx1 = await lab.listen("recv1", GROUP_ADDR, PORT);
      const rx2 = await lab.listen("recv2", GROUP_ADDR, PORT);
      try {
        await lab.send(GROUP_ADDR, PORT, 5, { payload: "unpriv" });
        assert.ok(await rx1.waitFor(5), `recv1 got ${rx1.count()} of 5`);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(rx2.count(), 0, "recv2 (not an oif) got traffic");
      } finally {
        await rx1.stop();
        await rx2.stop();
      }
      const show = await runCli(["-s", u.socket, "-j", "show", "routes"]);
      const route = (JSON.parse(show.stdout) as { routes: { packets: number; state: string }[] }).routes[0];
      assert.equal(route?.state, "installed");
      assert.ok((route?.packets ?? 0) >= 5, `packets ${route?.packets}`);
      // The state file was written by the unprivileged user.
      assert.equal(statSync(u.stateFile).uid, uid);

      // Clean stop: exit 0, table released.
      u.proc.kill("SIGTERM");
      assert.equal(await expectExit(u), 0, u.logs());
      assert.deepEqual(await kernelTables(lab), { vif: [], cache: [] });
    } finally {
      u.proc.kill("SIGKILL");
    }
  });

  void it("without capabilities it does not start, and says which capability is missing", async (t) => {
    const u = spawnAs(lab, []);
    const code = await expectExit(u);
    t.diagnostic(`exit ${code}: ${u.logs().trim()}`);
    assert.notEqual(code, 0, u.logs());
    assert.notEqual(code, null, "killed by a signal instead of exiting");
    assert.match(u.logs(), /CAP_NET_RAW/, u.logs());
    assert.match(u.logs(), /cannot start|missing capabilit|cannot take/i);
    assert.ok(!existsSync(u.socket), "socket created although start-up failed");
    assert.deepEqual(await kernelTables(lab), { vif: [], cache: [] });
  });

  void it("with CAP_NET_RAW but not CAP_NET_ADMIN, a non-default table is refused naming CAP_NET_ADMIN", async (t) => {
    const u = spawnAs(lab, ["net_raw"], "table = 7");
    const code = await expectExit(u);
    t.diagnostic(`exit ${code}: ${u.logs().trim()}`);
    assert.notEqual(code, 0, u.logs());
    assert.notEqual(code, null, "killed by a signal instead of exiting");
    assert.match(u.logs(), /CAP_NET_ADMIN/, u.logs());
    assert.ok(!existsSync(u.socket), "socket created although start-up failed");
  });
});

void it("test account and directories are removed", () => {
  assert.throws(() => sh("id", ["-u", USER]), `user ${USER} still exists`);
  assert.throws(() => sh("getent", ["group", GROUP]), `group ${GROUP} still exists`);
  for (const dir of allDirs) assert.ok(!existsSync(dir), `${dir} left behind`);
});
