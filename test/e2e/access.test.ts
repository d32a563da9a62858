// Who may talk to the daemon (SPEC §6.6): the socket is 0660 group socket_group, and every peer is
// also checked with SO_PEERCRED/SO_PEERGROUPS (root, the daemon's user, or a member of the group).
// Uses real users: a group and three users with unique names are created here and removed in
// after(), also when a test fails. Needs root and a build (tests run dist/; the users run a copy
// they can read when the checkout is not readable to them, e.g. in /root: test/lab/readable_dist.ts). Run:
//   node --import tsx --test test/e2e/access.test.ts
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, statSync } from "node:fs";
import { createLab, type Lab } from "../lab/lab.js";
import { CLI_JS, kernelTables, startDaemon, type DaemonHandle } from "../lab/daemon.js";
import { readableDist, type ReadableDist } from "../lab/readable_dist.js";
import type { ExecResult } from "../lab/lab.js";

const tag = `${process.pid.toString(36)}${randomBytes(2).toString("hex")}`;
const GROUP = `mfctg${tag}`;
const MEMBER = `mfctmember${tag}`; // primary group = GROUP
const SUPP = `mfctsupp${tag}`; // primary group "users", GROUP only as a supplementary group
const OUTSIDER = `mfctoutsider${tag}`;
const USERS = [MEMBER, SUPP, OUTSIDER];

const created = { users: [] as string[], group: false };
/** The CLI and node where the test users can read them (the checkout's own, or a temp copy). */
let dist: ReadableDist | undefined;
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

function removeAccounts(): void {
  for (const u of created.users.splice(0)) {
    try { sh("userdel", [u]); } catch { /* already gone */ }
  }
  if (created.group) {
    created.group = false;
    try { sh("groupdel", [GROUP]); } catch { /* already gone */ }
  }
  dist?.cleanup();
}
// Safety net if the runner dies between before() and after().
process.once("exit", removeAccounts);

const idOf = (user: string): { uid: number; gid: number; groups: number[] } => ({
  uid: Number(sh("id", ["-u", user]).trim()),
  gid: Number(sh("id", ["-g", user]).trim()),
  groups: sh("id", ["-G", user]).trim().split(/\s+/).map(Number),
});
const groupOf = (gid: number): string => sh("getent", ["group", String(gid)]).split(":")[0] ?? "";

/** Runs argv as `user` (primary group and supplementary groups from the account database). */
function runAs(user: string, argv: string[]): Promise<ExecResult> {
  const { gid } = idOf(user);
  return new Promise((res) => {
    execFile("setpriv", [`--reuid=${user}`, `--regid=${gid}`, "--init-groups", ...argv], { timeout: 20_000 }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}
const nodeForUsers = (): string => dist?.node ?? process.execPath;
const cliAs = (user: string, sock: string, args: string[]): Promise<ExecResult> => runAs(user, [nodeForUsers(), dist?.cliJs ?? CLI_JS, "-s", sock, ...args]);

/** A raw client run as `user`: sends `lines`, prints {lines, closed, error} once closed or after 3 s. */
const RAW_CLIENT = `
const net = require("node:net");
const [sock, data] = process.argv.slice(1);
const out = { lines: [], closed: false, error: null };
let buf = "";
const done = () => { process.stdout.write(JSON.stringify(out)); process.exit(0); };
const s = net.createConnection(sock);
s.on("connect", () => s.write(data));
s.on("data", (d) => { buf += d; let i; while ((i = buf.indexOf("\\n")) >= 0) { out.lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); } });
s.on("error", (e) => { out.error = e.code || e.message; });
s.on("close", () => { out.closed = true; done(); });
setTimeout(done, 3000);
`;
async function rawAs(user: string, sock: string, data: string): Promise<{ lines: string[]; closed: boolean; error: string | null }> {
  const r = await runAs(user, [nodeForUsers(), "-e", RAW_CLIENT, sock, data]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { lines: string[]; closed: boolean; error: string | null };
}

void describe("socket access", () => {
  let lab: Lab;
  let d: DaemonHandle;
  let gid: number;

  before(async () => {
    dist = readableDist();
    if (dist.copied) process.stderr.write(`the test users run a readable copy of dist/ in ${dist.root}: ${dist.reason}\n`);
    sh("groupadd", [GROUP]);
    created.group = true;
    const base = ["-M", "-N", "-s", "/usr/sbin/nologin"];
    for (const [user, extra] of [[MEMBER, ["-g", GROUP]], [SUPP, ["-G", GROUP]], [OUTSIDER, []]] as const) {
      sh("useradd", [...base, ...extra, user]);
      created.users.push(user);
    }
    gid = Number(sh("getent", ["group", GROUP]).split(":")[2]);
    // The accounts are what the tests assume.
    assert.equal(idOf(MEMBER).gid, gid);
    assert.notEqual(idOf(SUPP).gid, gid, `${SUPP} should not have ${GROUP} as primary group`);
    assert.ok(idOf(SUPP).groups.includes(gid));
    assert.ok(!idOf(OUTSIDER).groups.includes(gid));

    lab = await createLab();
    d = await startDaemon(lab, { extraConfig: `socket_group = ${GROUP}` });
    chmodSync(d.dir, 0o755); // mkdtemp made it 0700: let the users reach the socket inside
    const r = await d.mfc(["add", "from", lab.addr.sender, "to", "239.1.1.1", "iif", "up0", "oif", "dn1"]);
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    try {
      await d?.cleanup();
      await lab?.destroy();
    } finally {
      removeAccounts();
    }
  });

  void it(`the socket is mode 0660, group socket_group`, () => {
    const st = statSync(d.socket);
    assert.ok(st.isSocket());
    assert.equal((st.mode & 0o7777).toString(8), "660");
    assert.equal(st.gid, gid, `socket group is ${st.gid} (${groupOf(st.gid)}), want ${gid} (${GROUP})`);
  });

  void it("a member of socket_group (primary group) is served", async () => {
    const r = await cliAs(MEMBER, d.socket, ["status"]);
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stdout, /pid: \d+/);
  });

  void it("a member's change is in the audit trail with its uid, action and outcome", async () => {
    const uid = idOf(MEMBER).uid;
    const r = await cliAs(MEMBER, d.socket, ["vif", "add", "dev", "dn2"]);
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    const bad = await cliAs(MEMBER, d.socket, ["vif", "add", "dev", "nosuchif0"]);
    assert.equal(bad.code, 1);
    assert.match(d.logs(), new RegExp(`audit: uid ${uid} pid \\d+ ADD_VIF: ok, 1 kernel step`));
    assert.match(d.logs(), new RegExp(`audit: uid ${uid} pid \\d+ ADD_VIF: E_IF_NOT_FOUND`));
    assert.equal((await cliAs(MEMBER, d.socket, ["vif", "del", "dev", "dn2"])).code, 0);
  });

  void it("a member of socket_group as supplementary group only is served (SO_PEERGROUPS)", async () => {
    const r = await cliAs(SUPP, d.socket, ["status"]);
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stdout, /pid: \d+/);
  });

  void it("an outsider is refused by the socket mode (EACCES, exit 3)", async () => {
    const r = await cliAs(OUTSIDER, d.socket, ["status"]);
    assert.equal(r.code, 3, `exit ${r.code}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /permission denied/i);
    const raw = await rawAs(OUTSIDER, d.socket, '{"action":"PING"}\n');
    assert.equal(raw.error, "EACCES");
    assert.deepEqual(raw.lines, []);
  });

  void describe("with the socket mode opened to everyone (0666), the peer check alone", () => {
    before(() => chmodSync(d.socket, 0o666));
    after(() => chmodSync(d.socket, 0o660));

    void it("refuses an outsider with E_PERMISSION_DENIED (exit 3) and logs the uid", async () => {
      const r = await cliAs(OUTSIDER, d.socket, ["status"]);
      assert.equal(r.code, 3, `exit ${r.code}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^mfc: E_PERMISSION_DENIED: .*permission denied/im);
      const uid = idOf(OUTSIDER).uid;
      assert.match(d.logs(), new RegExp(`refused connection from uid ${uid}\\b`));
    });

    void it("disconnects the outsider without reading its requests", async () => {
      const tables = await kernelTables(lab);
      assert.equal(tables.cache.length, 1);
      // Pipelined: a FLUSH that would empty the table, then a PING. Neither may be answered or run.
      const raw = await rawAs(OUTSIDER, d.socket, '{"action":"FLUSH","payload":{}}\n{"action":"PING","id":1}\n');
      assert.equal(raw.closed, true, "outsider still connected after 3 s");
      assert.equal(raw.lines.length, 1, `answers: ${raw.lines.join(" | ")}`);
      const res = JSON.parse(raw.lines[0] ?? "{}") as { status?: string; error_code?: string };
      assert.equal(res.status, "error");
      assert.equal(res.error_code, "E_PERMISSION_DENIED");
      assert.deepEqual(await kernelTables(lab), tables, "the outsider's FLUSH was executed");
      const show = await d.mfc(["-j", "show", "routes"]);
      assert.equal((JSON.parse(show.stdout) as { routes: unknown[] }).routes.length, 1);
    });

    void it("still serves members (primary and supplementary) and root", async () => {
      for (const user of [MEMBER, SUPP]) {
        const r = await cliAs(user, d.socket, ["-j", "show"]);
        assert.equal(r.code, 0, `${user}: exit ${r.code}: ${r.stderr}`);
        assert.equal((JSON.parse(r.stdout) as { routes: unknown[] }).routes.length, 1);
      }
      const r = await d.mfc(["status"]);
      assert.equal(r.code, 0, r.stderr);
    });
  });

  void it("after all of it the daemon is alive and the route is intact", async () => {
    assert.equal(d.proc.exitCode, null, d.logs());
    assert.equal((await kernelTables(lab)).cache.length, 1);
  });
});

void it("test accounts are removed", () => {
  // Runs after the suite above (and its after() hook): nothing may be left behind.
  for (const u of USERS) assert.throws(() => sh("id", ["-u", u]), `user ${u} still exists`);
  if (dist?.copied) assert.ok(!existsSync(dist.root), `${dist.root} left behind`);
  assert.throws(() => sh("getent", ["group", GROUP]), `group ${GROUP} still exists`);
});
