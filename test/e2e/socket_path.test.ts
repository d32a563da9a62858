// Issue 11 items 7 and 8 on the built daemon and CLI: safe socket creation, a CLI that sends
// nothing to a socket that may not be the daemon's, and config ranges.
// - Daemon: anything at socket_path that is not a socket (a regular file — the config file
//   itself —, a symlink, a directory) is left alone and the start refused; a stale socket is still
//   replaced. A socket directory others can write to (0777, sticky 1777, group 0775), one owned by
//   another user, or a writable directory on the way to it is refused. socket_path must fit
//   sun_path (107 bytes; 108 refused, in the config and with --socket). socket_path must not be
//   the state file, its journal or its lock.
// - CLI: exit 3 and no byte sent when the socket's directory is writable by others, when the
//   socket is owned by a user nobody vouches for, or when its directory was made by a user in a
//   world-writable directory; it does send to a socket owned by the user root gave the directory
//   to (the packages' /run/mfc_daemon), also through a symlink.
// - table / --table: 0-999999999 (the kernel's MRT_TABLE limit); 999999999 is taken for real.
// Needs root and a built dist/. Run: node --import tsx --test test/e2e/socket_path.test.ts
import { after, before, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { createLab, type Lab } from "../lab/lab.js";
import { DAEMON_JS, runCli } from "../lab/daemon.js";
import { tempDir } from "../lab/temp_dir.js";
import { exchange } from "../support/raw_client.js";

const NOBODY = 65534;

function writeConfig(dir: string, settings: Record<string, string>): string {
  const conf = join(dir, "mfc_daemon.conf");
  const all = { socket_path: join(dir, "mfc.sock"), state_file: join(dir, "state", "state.json"), socket_group: "", ...settings };
  writeFileSync(conf, `[daemon]\n${Object.entries(all).map(([k, v]) => `${k} = ${v}`).join("\n")}\n`);
  return conf;
}

interface Run { proc: ChildProcess; log(): string; exited: Promise<number | null> }

function spawnDaemon(lab: Lab, args: string[]): Run {
  const proc = lab.spawn(lab.ns.router, [process.execPath, DAEMON_JS, ...args]);
  let log = "";
  proc.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  proc.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((res) => proc.once("exit", (c) => res(c)));
  return { proc, log: () => log, exited };
}

/** A daemon that must refuse to start: its exit status and log. */
async function refusedStart(lab: Lab, args: string[]): Promise<{ code: number | null; log: string }> {
  const run = spawnDaemon(lab, args);
  const timer = setTimeout(() => run.proc.kill("SIGKILL"), 15_000);
  const code = await run.exited;
  clearTimeout(timer);
  return { code, log: run.log() };
}

/** A daemon that must start: resolves once `socket` answers PING; stopped (SIGTERM) by t.after. */
async function startedDaemon(t: TestContext, lab: Lab, args: string[], socket: string): Promise<Run> {
  const run = spawnDaemon(lab, args);
  let exit: number | null | undefined;
  void run.exited.then((c) => { exit = c; });
  t.after(async () => {
    if (exit === undefined) { run.proc.kill("SIGTERM"); await run.exited; }
  });
  for (let i = 0; i < 600; i++) {
    if (exit !== undefined) assert.fail(`daemon exited with ${exit} during start-up:\n${run.log()}`);
    if (existsSync(socket) && (await exchange(socket, '{"action":"PING"}\n', 1, 1_000).then(() => true, () => false))) return run;
    await new Promise((r) => setTimeout(r, 25));
  }
  run.proc.kill("SIGKILL");
  return assert.fail(`daemon did not become ready on ${socket}:\n${run.log()}`);
}

/** A stand-in for the daemon: records every byte it gets and answers each line with a refusal. */
interface Fake { server: Server; received(): string; connections(): number }
async function fakeDaemon(t: TestContext, path: string): Promise<Fake> {
  let received = "";
  let connections = 0;
  const server = createServer((s) => {
    connections++;
    s.on("data", (d: Buffer) => {
      received += d.toString();
      if (received.includes("\n")) s.end('{"status":"error","error_code":"E_MFC_NOT_FOUND","message":"answered by the fake daemon"}\n');
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((res) => server.listen(path, res));
  t.after(() => new Promise<void>((res) => server.close(() => res())));
  return { server, received: () => received, connections: () => connections };
}

const ADD = ["add", "from", "192.0.2.1", "to", "239.1.1.1", "iif", "up0", "oif", "dn1"];

/** The CLI refuses: exit 3, E_UNREACHABLE naming `why`, and the fake got not a byte. */
async function cliRefuses(fake: Fake, socket: string, why: RegExp): Promise<void> {
  const r = await runCli(["-s", socket, ...ADD]);
  assert.equal(r.code, 3, `exit ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^mfc: E_UNREACHABLE: not sending to /);
  assert.match(r.stderr, why);
  assert.equal(fake.received(), "", "the request reached the impostor");
  assert.equal(fake.connections(), 0, "the CLI connected to the impostor");
}

/** The CLI sends: the fake's answer comes back (exit 1 with its message) and it got the request. */
async function cliSends(fake: Fake, socket: string): Promise<void> {
  const r = await runCli(["-s", socket, ...ADD]);
  assert.equal(r.code, 1, `exit ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /E_MFC_NOT_FOUND: answered by the fake daemon/);
  assert.match(fake.received(), /"action":"ADD_MFC"/);
}

void describe("socket path and config ranges (issue 11 items 7, 8)", () => {
  let lab: Lab;
  before(async () => { lab = await createLab(); });
  after(async () => { await lab?.destroy(); });

  void describe("the daemon leaves what is not its socket alone", () => {
    void it("a regular file at socket_path (here the config file itself) is not removed; the start is refused", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const conf = join(dir, "mfc_daemon.conf");
      writeFileSync(conf, `[daemon]\nsocket_path = ${conf}\nstate_file = ${join(dir, "state", "state.json")}\nsocket_group =\n`);
      const before = readFileSync(conf);
      const r = await refusedStart(lab, ["--config", conf]);
      assert.equal(r.code, 1, r.log);
      assert.match(r.log, new RegExp(`socket_path ${conf} exists and is a regular file, not a socket: refusing to remove it`));
      assert.deepEqual(readFileSync(conf), before, "the config file was touched");
    });

    void it("a symlink at socket_path is not removed and not followed", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const victim = join(dir, "victim");
      writeFileSync(victim, "precious\n");
      const sock = join(dir, "mfc.sock");
      symlinkSync(victim, sock);
      const r = await refusedStart(lab, ["--config", writeConfig(dir, { socket_path: sock })]);
      assert.equal(r.code, 1, r.log);
      assert.match(r.log, /exists and is a symbolic link, not a socket/);
      assert.equal(readlinkSync(sock), victim);
      assert.equal(readFileSync(victim, "utf8"), "precious\n");
      // A dangling one too (the old code unlinked it and bound in its place).
      const dangling = join(dir, "dangling.sock");
      symlinkSync(join(dir, "nothing-here"), dangling);
      const r2 = await refusedStart(lab, ["--config", writeConfig(dir, { socket_path: dangling })]);
      assert.equal(r2.code, 1, r2.log);
      assert.match(r2.log, /symbolic link, not a socket/);
      assert.ok(lstatSync(dangling).isSymbolicLink());
    });

    void it("a directory at socket_path is not removed", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const sock = join(dir, "mfc.sock");
      mkdirSync(sock);
      writeFileSync(join(sock, "keep"), "x");
      const r = await refusedStart(lab, ["--config", writeConfig(dir, { socket_path: sock })]);
      assert.equal(r.code, 1, r.log);
      assert.match(r.log, /exists and is a directory, not a socket/);
      assert.equal(readFileSync(join(sock, "keep"), "utf8"), "x");
    });

    void it("a stale socket left by SIGKILL is still replaced", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const conf = writeConfig(dir, {});
      const sock = join(dir, "mfc.sock");
      const first = await startedDaemon(t, lab, ["--config", conf], sock);
      first.proc.kill("SIGKILL");
      await first.exited;
      assert.ok(lstatSync(sock).isSocket(), "SIGKILL leaves the socket file");
      await startedDaemon(t, lab, ["--config", conf], sock);
    });
  });

  void describe("the daemon refuses a socket directory others can change", () => {
    for (const [mode, by] of [[0o777, "everyone"], [0o1777, "everyone"], [0o775, "its group"]] as const) {
      void it(`mode ${mode.toString(8)}: refused, naming the directory and who can write`, async (t) => {
        const dir = tempDir(t, "mfct-sp-");
        const sockDir = join(dir, "run");
        mkdirSync(sockDir);
        chmodSync(sockDir, mode);
        const r = await refusedStart(lab, ["--config", writeConfig(dir, { socket_path: join(sockDir, "mfc.sock") })]);
        assert.equal(r.code, 1, r.log);
        assert.match(r.log, new RegExp(`socket directory ${sockDir} is writable by ${by} \\(mode 0?${mode.toString(8)}\\).*chmod go-w ${sockDir}`));
        assert.ok(!existsSync(join(sockDir, "mfc.sock")), "the socket was created");
      });
    }

    void it("a socket directory owned by another user is refused", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const sockDir = join(dir, "run");
      mkdirSync(sockDir, { mode: 0o755 });
      chownSync(sockDir, NOBODY, NOBODY);
      const r = await refusedStart(lab, ["--config", writeConfig(dir, { socket_path: join(sockDir, "mfc.sock") })]);
      assert.equal(r.code, 1, r.log);
      assert.match(r.log, new RegExp(`socket directory ${sockDir} belongs to uid ${NOBODY}, not to root or this daemon's user`));
    });

    void it("a writable directory on the way (not sticky) is refused; a sticky one (/tmp) is not", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const open = join(dir, "open");
      mkdirSync(join(open, "run"), { recursive: true, mode: 0o755 });
      chmodSync(open, 0o777);
      const r = await refusedStart(lab, ["--config", writeConfig(dir, { socket_path: join(open, "run", "mfc.sock") })]);
      assert.equal(r.code, 1, r.log);
      assert.match(r.log, new RegExp(`${open} \\(on the way to .*\\) is writable by everyone`));
      // Sticky: others cannot rename root's run/ away. Every other test here lives under /tmp too.
      chmodSync(open, 0o1777);
      await startedDaemon(t, lab, ["--config", writeConfig(dir, { socket_path: join(open, "run", "mfc.sock") })], join(open, "run", "mfc.sock"));
    });
  });

  void describe("socket_path length (sun_path)", () => {
    const pathOf = (dir: string, bytes: number): string => {
      const p = join(dir, "s".repeat(bytes - dir.length - 1));
      assert.equal(Buffer.byteLength(p), bytes);
      return p;
    };

    void it("108 bytes is refused with its length, in the config and with --socket", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const long = pathOf(dir, 108);
      const r = await refusedStart(lab, ["--config", writeConfig(dir, { socket_path: long })]);
      assert.equal(r.code, 2, r.log);
      assert.match(r.log, /mfc_daemon\.conf:\d+: socket_path .* is 108 bytes long; a Unix socket path may have at most 107/);
      const r2 = await refusedStart(lab, ["--config", writeConfig(dir, {}), "--socket", long]);
      assert.equal(r2.code, 2, r2.log);
      assert.match(r2.log, /is 108 bytes long; a Unix socket path may have at most 107/);
      assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith("sss")), [], "a truncated socket was created");
    });

    void it("107 bytes works, and the socket has exactly that name", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const p = pathOf(dir, 107);
      await startedDaemon(t, lab, ["--config", writeConfig(dir, { socket_path: p })], p);
      assert.ok(lstatSync(p).isSocket());
      assert.equal((await runCli(["-s", p, "status"])).code, 0);
    });
  });

  void describe("socket_path must not be a state file", () => {
    for (const [what, suffix] of [["the state file", ""], ["its journal", ".journal"], ["its lock file", ".lock"]] as const) {
      void it(`socket_path = ${what} is refused at config load`, async (t) => {
        const dir = tempDir(t, "mfct-sp-");
        const state = join(dir, "state.json");
        const r = await refusedStart(lab, ["--config", writeConfig(dir, { state_file: state, socket_path: state + suffix })]);
        assert.equal(r.code, 2, r.log);
        assert.match(r.log, /socket_path and state_file clash/);
        assert.ok(!existsSync(state + suffix), "something was created at the clashing path");
      });
    }

    void it("--socket and --state-file are checked too", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const conf = writeConfig(dir, {});
      const r = await refusedStart(lab, ["--config", conf, "--socket", join(dir, "x.json"), "--state-file", join(dir, "x.json")]);
      assert.equal(r.code, 2, r.log);
      assert.match(r.log, /socket_path and state_file clash/);
    });
  });

  void describe("table range: what the kernel accepts for MRT_TABLE", () => {
    void it("--table 1000000000 and table = 2147483648 are refused naming the range", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const r = await refusedStart(lab, ["--config", writeConfig(dir, {}), "--table", "1000000000"]);
      assert.equal(r.code, 2, r.log);
      assert.match(r.log, /--table must be an integer 0-999999999 .*\(got '1000000000'\)/);
      const r2 = await refusedStart(lab, ["--config", writeConfig(dir, { table: "2147483648" })]);
      assert.equal(r2.code, 2, r2.log);
      assert.match(r2.log, /mfc_daemon\.conf:\d+: table must be an integer 0-999999999/);
      const r3 = await refusedStart(lab, ["--config", writeConfig(dir, {}), "--table", "1e3"]);
      assert.equal(r3.code, 2, r3.log);
    });

    void it("--table 999999999, the largest, is taken by the kernel", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const sock = join(dir, "mfc.sock");
      await startedDaemon(t, lab, ["--config", writeConfig(dir, {}), "--table", "999999999"], sock);
      const status = JSON.parse((await runCli(["-s", sock, "-j", "status"])).stdout) as { result?: { table?: unknown }; table?: unknown };
      assert.equal(String(status.result?.table ?? status.table), "999999999");
    });
  });

  void describe("the CLI sends nothing to a socket that may not be the daemon's", () => {
    void it("a socket in a world-writable directory (sticky or not): exit 3, no byte sent", async (t) => {
      for (const mode of [0o777, 0o1777]) {
        const dir = tempDir(t, "mfct-sp-");
        const open = join(dir, "open");
        mkdirSync(open);
        chmodSync(open, mode);
        const sock = join(open, "mfc.sock");
        const fake = await fakeDaemon(t, sock);
        await cliRefuses(fake, sock, /its directory .*open is writable by everyone/);
      }
    });

    void it("a socket owned by a user nobody vouches for: exit 3, no byte sent", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      chmodSync(dir, 0o755);
      const sock = join(dir, "mfc.sock");
      const fake = await fakeDaemon(t, sock);
      lchownSync(sock, NOBODY, NOBODY);
      await cliRefuses(fake, sock, new RegExp(`the socket belongs to uid ${NOBODY}, not to root, you, or the owner of`));
    });

    void it("a directory another user made in a sticky world-writable directory: exit 3", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const tmp = join(dir, "tmp");
      mkdirSync(tmp);
      chmodSync(tmp, 0o1777);
      const theirs = join(tmp, "evil");
      mkdirSync(theirs, { mode: 0o755 });
      chownSync(theirs, NOBODY, NOBODY);
      const sock = join(theirs, "mfc.sock");
      const fake = await fakeDaemon(t, sock);
      lchownSync(sock, NOBODY, NOBODY);
      await cliRefuses(fake, sock, /tmp \(on the way to .*\) is writable by everyone/);
    });

    void it("sends to the socket of the user root gave the directory to (the packages' layout), also through a symlink", async (t) => {
      // root: <dir> 0755 (like /run) -> run/ owned by the daemon's user (RuntimeDirectory) -> socket.
      const dir = tempDir(t, "mfct-sp-");
      chmodSync(dir, 0o755);
      const run = join(dir, "run");
      mkdirSync(run, { mode: 0o755 });
      chownSync(run, NOBODY, NOBODY);
      const sock = join(run, "mfc.sock");
      const fake = await fakeDaemon(t, sock);
      lchownSync(sock, NOBODY, NOBODY);
      await cliSends(fake, sock);
      // /var/run/mfc_daemon.sock -> mfc_daemon/mfc_daemon.sock, as tmpfiles.d sets it up.
      const link = join(dir, "mfc_daemon.sock");
      symlinkSync("run/mfc.sock", link);
      await cliSends(fake, link);
    });

    void it("a real daemon's socket (root, private directory) is used as before", async (t) => {
      const dir = tempDir(t, "mfct-sp-");
      const sock = join(dir, "mfc.sock");
      await startedDaemon(t, lab, ["--config", writeConfig(dir, {})], sock);
      const r = await runCli(["-s", sock, "status"]);
      assert.equal(r.code, 0, r.stderr);
    });
  });
});

