// The built `mfc` CLI against a running built daemon: exit codes, output modes and commands of
// SPEC §4. Needs root (network namespaces) and a build. Run:
//   npm run build && node --import tsx --test test/e2e/cli.test.ts
import { after, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Socket, createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab } from "../lab/lab.js";
import { CLI_JS, kernelTables, runCli, startDaemon } from "../lab/daemon.js";

interface VifJson {
  vifi: number | null; ifname: string; ifindex: number | null; threshold: number; pinned?: boolean;
  pkts_in: number; bytes_in: number; pkts_out: number; bytes_out: number;
}
interface RouteJson {
  source: string | null; group: string; iif: string; oifs: { ifname: string; ttl: number }[];
  packets: number; bytes: number; wrong_if: number; state: string; reason?: string;
}
interface ShowJson { vifs: VifJson[]; routes: RouteJson[] }
interface OkJson { status: "ok"; dry_run: boolean; changes: Record<string, unknown>[]; result: Record<string, unknown> }
interface ErrJson { status: "error"; error_code: string; message: string }

const PKG_VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

const lab = await createLab();
after(() => lab.destroy());
const d = await startDaemon(lab);
after(() => d.cleanup());

const S = lab.addr.sender;
const ADD_SG = ["add", "from", S, "to", "239.20.0.1", "iif", "up0", "oif", "dn1"];
const ADD_STAR = ["add", "to", "239.20.0.2", "iif", "up0", "oif", "dn1", "dn2"];

const ok = (args: string[]): Promise<string> => d.mfcOk(args);

async function show(): Promise<ShowJson> {
  return JSON.parse(await ok(["show", "-j"])) as ShowJson;
}

function stateFile(): string | undefined {
  return existsSync(d.stateFile) ? readFileSync(d.stateFile, "utf8") : undefined;
}

/** Exactly one line on stderr: `mfc: E_CODE: message`. */
function assertOneLineError(stderr: string, code: string): void {
  assert.match(stderr, new RegExp(`^mfc: ${code}: \\S.*\\n$`), `stderr: ${JSON.stringify(stderr)}`);
}

beforeEach(async () => {
  await ok(["flush"]);
});

void describe("exit status (SPEC §4)", () => {
  void it("0 on success, with nothing on stderr", async () => {
    const r = await d.mfc(ADD_SG);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
  });

  void it("1 when the daemon refuses: E_MFC_EXISTS, E_IF_NOT_FOUND, E_MFC_NOT_FOUND", async () => {
    await ok(ADD_SG);
    const before = await kernelTables(lab);
    const exists = await d.mfc(ADD_SG);
    assert.equal(exists.code, 1);
    assertOneLineError(exists.stderr, "E_MFC_EXISTS");
    assert.equal(exists.stdout, "");

    const noIf = await d.mfc(["add", "to", "239.20.0.3", "iif", "up0", "oif", "eth99"]);
    assert.equal(noIf.code, 1);
    assertOneLineError(noIf.stderr, "E_IF_NOT_FOUND");
    assert.match(noIf.stderr, /eth99/, "the message names the missing interface");

    const noRoute = await d.mfc(["del", "to", "239.20.0.99"]);
    assert.equal(noRoute.code, 1);
    assertOneLineError(noRoute.stderr, "E_MFC_NOT_FOUND");
    assert.deepEqual(await kernelTables(lab), before, "refused requests change nothing in the kernel");
  });

  void it("1 with the error as JSON on stdout under -j", async () => {
    await ok(ADD_SG);
    const r = await d.mfc(["-j", ...ADD_SG]);
    assert.equal(r.code, 1);
    const body = JSON.parse(r.stdout) as ErrJson;
    assert.equal(body.status, "error");
    assert.equal(body.error_code, "E_MFC_EXISTS");
    assertOneLineError(r.stderr, "E_MFC_EXISTS");
  });

  void it("2 on usage errors found by the CLI, without contacting the daemon", async () => {
    const cases = [["add", "group"], ["frobnicate"], ["add", "to", "239.1.1.1", "iif", "up0"], ["vif", "add"], ["show", "everything"], ["-o", "yaml", "show"], ["--bogus", "show"], []];
    // The socket does not exist: a usage error must be found before the connect (else it would be 3).
    const results = await Promise.all(cases.map((args) => runCli(["-s", "/nonexistent.sock", ...args])));
    for (const [i, r] of results.entries()) {
      const args = cases[i] ?? [];
      assert.equal(r.code, 2, `mfc ${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, "", `mfc ${args.join(" ")} printed on stdout`);
      assert.match(r.stderr, /^mfc: E_USAGE: \S/, `mfc ${args.join(" ")}: ${r.stderr}`);
    }
    const r = await d.mfc(["frobnicate"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^mfc: E_USAGE: unknown command 'frobnicate'\n/);
    // With JSON output asked for, the usage error is JSON on stdout too.
    const j = await runCli(["-s", "/nonexistent.sock", "-j", "frobnicate"]);
    assert.equal(j.code, 2);
    assert.equal((JSON.parse(j.stdout) as { error_code: string }).error_code, "E_USAGE");
  });

  void it("3 when the daemon cannot be reached", async () => {
    const missing = await runCli(["-s", "/nonexistent.sock", "status"]);
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /^mfc: E_UNREACHABLE: .*\/nonexistent\.sock.*\n$/);
    assert.equal(missing.stderr.split("\n").length, 2, "one line");
    // A path that exists but nobody listens on: connection refused.
    const refused = await runCli(["--socket", "/etc/hostname", "show"]);
    assert.equal(refused.code, 3, refused.stderr);
    // --socket after the command works too.
    const after = await runCli(["status", "--socket=/nonexistent.sock"]);
    assert.equal(after.code, 3, after.stderr);
  });

  void it("-c reads socket_path from a config file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mfct-cli-"));
    try {
      const conf = join(dir, "mfc.conf");
      writeFileSync(conf, `[daemon]\nsocket_path = ${d.socket}\n`);
      const r = await runCli(["-c", conf, "status"]);
      assert.equal(r.code, 0, r.stderr);
      writeFileSync(conf, `[daemon]\nsocket_path = ${join(dir, "nobody.sock")}\n`);
      assert.equal((await runCli(["--config", conf, "status"])).code, 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

void describe("output modes", () => {
  /**
   * `mfc show -j` of ~73 KB of JSON into a FIFO nobody reads yet: more than a pipe holds (64 KiB),
   * less than that plus the stream's own buffer (16 KiB), so the CLI has the whole answer and only
   * the pipe's reader keeps it waiting. Returns the child, the FIFO's read end and the answer's size.
   */
  async function showIntoFullPipe(dir: string): Promise<{ child: ReturnType<typeof spawn>; exited: Promise<number | null>; readFd: number; size: number }> {
    const routes = Array.from({ length: 500 }, (_, i) => ({ source: S, group: `239.21.${i >> 8}.${i & 255}`, iif: "up0", oifs: [{ ifname: "dn1", ttl: 1 }] }));
    writeFileSync(join(dir, "routes.json"), JSON.stringify({ vifs: [], routes }));
    await ok(["apply", join(dir, "routes.json")]);
    const size = Buffer.byteLength(await ok(["show", "-j"]));
    assert.ok(size > 65_536 && size < 65_536 + 16_384, `the answer is ${size} bytes: out of the window this test needs`);
    const fifo = join(dir, "out");
    execFileSync("mkfifo", [fifo]);
    const readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeFd = openSync(fifo, constants.O_WRONLY);
    const child = spawn(process.execPath, [CLI_JS, "-s", d.socket, "show", "-j"], { stdio: ["ignore", writeFd, "pipe"] });
    closeSync(writeFd);
    const exited = new Promise<number | null>((r) => child.once("exit", r));
    const early = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1500))]);
    assert.equal(early, false, "the CLI exited while its answer was still waiting for the pipe");
    return { child, exited, readFd, size };
  }

  // The CLI ends with process.exit() when nothing is left to write, else naturally (pipes are
  // written asynchronously on Linux: process.exit() would drop what a full pipe has not taken).
  void it("an answer larger than the pipe it goes to is written whole: the CLI waits for its reader", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mfc-pipe-"));
    try {
      const { exited, readFd, size } = await showIntoFullPipe(dir);
      const reader = new Socket({ fd: readFd, readable: true, writable: false });
      const chunks: Buffer[] = [];
      reader.on("data", (c: Buffer) => chunks.push(c));
      await new Promise((r) => reader.once("end", r));
      assert.equal(await exited, 0);
      assert.equal(Buffer.concat(chunks).length, size);
      assert.equal((JSON.parse(Buffer.concat(chunks).toString()) as ShowJson).routes.length, 500);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void it("a reader that goes away first (`mfc show -j | head`) ends the CLI quietly, as SIGPIPE ends other tools", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mfc-pipe-"));
    try {
      const { child, exited, readFd } = await showIntoFullPipe(dir);
      let stderr = "";
      child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
      closeSync(readFd);
      assert.equal(await exited, 141);
      assert.equal(stderr, "", "no stack trace, no message");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void it("-j / -o json / --output json work before and after the command", async () => {
    await ok(ADD_SG);
    await ok(ADD_STAR);
    const variants = [["-j", "show"], ["show", "-j"], ["-o", "json", "show"], ["show", "--output", "json"], ["--output=json", "show"], ["show", "-o", "json"]];
    const outputs = await Promise.all(variants.map((v) => ok(v)));
    const parsed = outputs.map((o) => JSON.parse(o) as ShowJson);
    for (const [i, p] of parsed.entries()) assert.deepEqual(p, parsed[0], `mfc ${variants[i]?.join(" ")}`);
    const view = parsed[0] as ShowJson;
    assert.deepEqual(view.routes.map((r) => [r.source, r.group, r.iif, r.oifs.map((o) => o.ifname)]), [
      [S, "239.20.0.1", "up0", ["dn1"]],
      [null, "239.20.0.2", "up0", ["dn1", "dn2"]],
    ]);
    assert.deepEqual(view.vifs.map((v) => v.ifname).sort(), ["dn1", "dn2", "up0"]);
    for (const v of view.vifs) {
      for (const k of ["vifi", "ifname", "ifindex", "threshold", "pkts_in", "bytes_in", "pkts_out", "bytes_out"]) {
        assert.ok(k in v, `vif field ${k}`);
      }
    }
    for (const r of view.routes) {
      for (const k of ["source", "group", "iif", "oifs", "packets", "bytes", "wrong_if", "state"]) assert.ok(k in r, `route field ${k}`);
      assert.equal(r.state, "installed");
    }
    // --output text (explicit) is the default text.
    assert.equal(await ok(["show", "--output", "text"]), await ok(["show"]));
  });

  void it("json output for commands other than show", async () => {
    const add = JSON.parse(await ok(["-j", ...ADD_SG])) as OkJson;
    assert.equal(add.status, "ok");
    assert.equal(add.dry_run, false);
    assert.deepEqual(add.changes.map((c) => c.action), ["add_vif", "add_vif", "add_mfc"]);
    const del = JSON.parse(await ok(["del", "from", S, "to", "239.20.0.1", "--output", "json"])) as OkJson;
    assert.deepEqual(del.changes.map((c) => c.action), ["del_mfc", "del_vif", "del_vif"]);
  });

  void it("show text lines follow the SPEC format", async () => {
    await ok(ADD_SG);
    await ok(ADD_STAR);
    await ok(["add", "to", "239.20.0.4", "iif", "up0", "oif", "dn1", "ttl", "5", "dn2"]);
    const routes = (await ok(["show", "routes"])).trimEnd().split("\n");
    assert.deepEqual(routes, [
      `(${S}, 239.20.0.1)  iif up0  oifs dn1  pkts 0  bytes 0  wrong 0  installed`,
      "(*, 239.20.0.2)  iif up0  oifs dn1 dn2  pkts 0  bytes 0  wrong 0  installed",
      // An oif TTL other than 1 is shown next to its interface.
      "(*, 239.20.0.4)  iif up0  oifs dn1(ttl 5) dn2  pkts 0  bytes 0  wrong 0  installed",
    ]);
    const line = /^\((\S+), (\S+)\) {2}iif (\S+) {2}oifs (.+?) {2}pkts (\d+) {2}bytes (\d+) {2}wrong (\d+) {2}(installed|pending.*)$/;
    const all = (await ok(["show"])).trimEnd().split("\n");
    for (const r of routes) assert.ok(all.includes(r), `'mfc show' includes ${r}`);
    for (const r of routes) assert.match(r, line);
    const vifs = await ok(["show", "vifs"]);
    assert.doesNotMatch(vifs, /iif/, "show vifs prints no routes");
  });

  void it("show on an empty table", async () => {
    assert.deepEqual(await show(), { vifs: [], joins: [], routes: [] });
    assert.equal((await ok(["show", "routes"])).trim(), "no routes");
  });
});

void describe("--dry-run", () => {
  void it("prints the planned kernel actions and changes nothing", async () => {
    await ok(ADD_SG); // so the state file exists
    const kBefore = await kernelTables(lab);
    const sBefore = stateFile();
    const vBefore = await show();
    assert.ok(sBefore !== undefined, "state file written after a change");

    const text = await ok(["--dry-run", "add", "to", "239.20.0.5", "iif", "up0", "oif", "dn2"]);
    assert.match(text, /^dry run: 2 kernel change\(s\) would be made:\n/);
    assert.match(text, /add vif \d+ dn2 /);
    assert.match(text, /add mfc \(\*, 239\.20\.0\.5\) iif up0 oifs dn2/);

    const json = JSON.parse(await ok(["add", "to", "239.20.0.5", "iif", "up0", "oif", "dn2", "-n", "-j"])) as OkJson;
    assert.equal(json.dry_run, true);
    assert.deepEqual(json.changes.map((c) => [c.action, c.ifname ?? c.group]), [["add_vif", "dn2"], ["add_mfc", "239.20.0.5"]]);

    const flush = await ok(["-n", "flush"]);
    assert.match(flush, /del mfc/);
    assert.match(flush, /del vif/);

    assert.deepEqual(await kernelTables(lab), kBefore, "kernel unchanged");
    assert.equal(stateFile(), sBefore, "state file unchanged");
    assert.deepEqual(await show(), vBefore, "daemon state unchanged");
    // A real add afterwards still works: the dry run left nothing behind.
    await ok(["add", "to", "239.20.0.5", "iif", "up0", "oif", "dn2"]);
  });

  void it("a dry run still validates fully (refusals exit 1)", async () => {
    await ok(ADD_SG);
    const r = await d.mfc(["-n", ...ADD_SG]);
    assert.equal(r.code, 1);
    assertOneLineError(r.stderr, "E_MFC_EXISTS");
    const r2 = await d.mfc(["-n", "add", "to", "239.20.0.6", "iif", "up0", "oif", "nosuch0"]);
    assert.equal(r2.code, 1);
    assertOneLineError(r2.stderr, "E_IF_NOT_FOUND");
  });

  void it("says so when nothing would change", async () => {
    assert.match(await ok(["-n", "flush"]), /no kernel changes/);
  });
});

void describe("--verbose", () => {
  void it("prints request and response JSON on stderr; stdout is unchanged", async () => {
    await ok(ADD_SG);
    for (const args of [["show"], ["show", "-j"], ["status", "-j"]]) {
      const plain = await d.mfc(args);
      const verbose = await d.mfc(["-v", ...args]);
      assert.equal(verbose.code, 0);
      if (args[0] === "status") {
        // uptime_s and rss_bytes move between the two calls; compare the rest.
        const strip = (s: string): unknown => ({ ...(JSON.parse(s) as OkJson).result, uptime_s: 0, rss_bytes: 0 });
        assert.deepEqual(strip(verbose.stdout), strip(plain.stdout));
      } else {
        assert.equal(verbose.stdout, plain.stdout, `stdout of mfc ${args.join(" ")}`);
      }
      assert.equal(plain.stderr, "");
      const lines = verbose.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 2, verbose.stderr);
      assert.match(lines[0] ?? "", /^> \{/);
      assert.match(lines[1] ?? "", /^< \{/);
      const req = JSON.parse((lines[0] ?? "").slice(2)) as { action: string };
      const res = JSON.parse((lines[1] ?? "").slice(2)) as OkJson;
      assert.equal(req.action, args[0] === "show" ? "SHOW" : "STATUS");
      assert.equal(res.status, "ok");
    }
    const add = await d.mfc(["add", "to", "239.20.0.7", "iif", "up0", "oif", "dn2", "--verbose"]);
    assert.equal(add.code, 0);
    assert.equal(add.stdout, "");
    const req = JSON.parse(add.stderr.split("\n")[0]?.slice(2) ?? "") as { action: string; dry_run: boolean; payload: Record<string, unknown> };
    assert.deepEqual(req, { action: "ADD_MFC", dry_run: false, payload: { source: null, group: "239.20.0.7", iif: "up0", oifs: ["dn2"] } });
  });
});

void describe("vif commands", () => {
  void it("vif add dev dn1 threshold 3 / vif show / vif del", async () => {
    await ok(["vif", "add", "dev", "dn1", "threshold", "3"]);
    const vifs = (await show()).vifs;
    assert.equal(vifs.length, 1);
    assert.equal(vifs[0]?.ifname, "dn1");
    assert.equal(vifs[0]?.threshold, 3);
    assert.equal(vifs[0]?.pinned, true);
    const k = await kernelTables(lab);
    assert.equal(k.vif.length, 1);
    assert.match(k.vif[0] ?? "", /^\d+ dn1 /);

    const text = (await ok(["vif", "show"])).trimEnd().split("\n");
    assert.match(text[0] ?? "", /^vif\s+ifname\s+ifindex\s+thresh\b/);
    assert.match(text[1] ?? "", /^\d+\s+dn1\s+\d+\s+3\s+pinned\b/);
    assert.equal(text.length, 2);
    const vj = JSON.parse(await ok(["vif", "show", "-j"])) as Partial<ShowJson>;
    assert.deepEqual(vj.vifs, vifs);

    const again = await d.mfc(["vif", "add", "dev", "dn1"]);
    assert.equal(again.code, 1);
    assertOneLineError(again.stderr, "E_VIF_EXISTS");
    const noDev = await d.mfc(["vif", "add", "dev", "nosuch0"]);
    assert.equal(noDev.code, 1);
    assertOneLineError(noDev.stderr, "E_IF_NOT_FOUND");

    await ok(["vif", "del", "dev", "dn1"]);
    assert.deepEqual((await show()).vifs, []);
    assert.deepEqual((await kernelTables(lab)).vif, []);
    const gone = await d.mfc(["vif", "del", "dev", "dn1"]);
    assert.equal(gone.code, 1);
    assertOneLineError(gone.stderr, "E_VIF_NOT_FOUND");
  });

  void it("a pinned VIF's threshold reaches the kernel entry; vif del of a VIF in use is refused", async () => {
    await ok(["vif", "add", "dev", "dn1", "threshold", "3"]);
    await ok(ADD_SG);
    // The kernel ignores the VIF threshold when forwarding; the daemon copies it into the entry.
    const m = JSON.parse((await lab.exec(lab.ns.router, ["ip", "-j", "mroute", "show"])).stdout) as { dst: string; multipath: { oif: string; ttl?: number }[] }[];
    const e = m.find((x) => x.dst === "239.20.0.1");
    assert.deepEqual(e?.multipath, [{ oif: "dn1", ttl: 3 }]);
    const inUse = await d.mfc(["vif", "del", "dev", "dn1"]);
    assert.equal(inUse.code, 1);
    assertOneLineError(inUse.stderr, "E_VIF_IN_USE");
    assert.equal((await kernelTables(lab)).vif.length, 2);
  });
});

void describe("flush and status", () => {
  void it("flush removes every route and VIF", async () => {
    await ok(ADD_SG);
    await ok(ADD_STAR);
    await ok(["vif", "add", "dev", "dn2", "threshold", "2"]);
    assert.equal((await kernelTables(lab)).cache.length, 2);
    assert.equal(await ok(["flush"]), "");
    assert.deepEqual(await show(), { vifs: [], joins: [], routes: [] });
    assert.deepEqual(await kernelTables(lab), { vif: [], cache: [] });
    const state = JSON.parse(readFileSync(d.stateFile, "utf8")) as { vifs: unknown[]; routes: unknown[] };
    assert.deepEqual([state.vifs, state.routes], [[], []], "the state file is emptied too");
  });

  void it("status in text and json: version, pid, route and VIF counts", async () => {
    await ok(ADD_SG);
    await ok(ADD_STAR);
    await ok(["add", "to", "239.20.0.8", "iif", "up0", "oif", "dn2"]);
    const j = (JSON.parse(await ok(["status", "-j"])) as OkJson).result;
    assert.equal(j.version, PKG_VERSION);
    assert.equal(j.pid, d.proc.pid, "pid of the daemon process");
    assert.equal(j.routes, 3);
    assert.equal(j.routes_installed, 3);
    assert.equal(j.routes_pending, 0);
    assert.equal(j.vifs, 3);
    assert.equal(j.state_file, d.stateFile);
    assert.equal(typeof j.uptime_s, "number");

    const text = await ok(["status"]);
    assert.match(text, new RegExp(`^version: ${PKG_VERSION.replaceAll(".", "\\.")}$`, "m"));
    assert.match(text, new RegExp(`^pid: ${d.proc.pid}$`, "m"));
    assert.match(text, /^routes: 3$/m);
    assert.match(text, /^vifs: 3$/m);
  });
});

void describe("--version and --help", () => {
  void it("--version / -V print the version and exit 0 without a daemon", async () => {
    for (const flag of ["--version", "-V"]) {
      const r = await runCli(["-s", "/nonexistent.sock", flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `mfc ${PKG_VERSION}\n`);
    }
  });

  void it("--help / -h list every command of SPEC §4 and the global options", async () => {
    const results = await Promise.all([["--help"], ["-h"], ["help"]].map((args) => runCli(["-s", "/nonexistent.sock", ...args])));
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^usage: mfc /);
      for (const cmd of ["add", "replace", "del", "show", "vif add", "vif del", "vif show", "flush", "batch", "apply", "status"]) {
        assert.match(r.stdout, new RegExp(`^\\s+mfc ${cmd}\\b`, "m"), `help lists '${cmd}'`);
      }
      for (const opt of ["--dry-run", "--verbose", "--output", "--socket", "--config", "--help", "--version"]) {
        assert.ok(r.stdout.includes(opt), `help mentions ${opt}`);
      }
    }
    const sub = await runCli(["vif", "--help"]);
    assert.equal(sub.code, 0);
    assert.match(sub.stdout, /mfc vif add dev IF/);
    assert.doesNotMatch(sub.stdout, /mfc flush/, "'mfc vif --help' is about vif only");
  });
});

/** One raw request line on the daemon's socket; the answer, parsed. */
function raw(line: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(d.socket);
    let buf = "";
    sock.on("connect", () => sock.write(`${line}\n`));
    sock.on("data", (chunk: Buffer) => {
      buf += chunk.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) { sock.destroy(); resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>); }
    });
    sock.on("error", reject);
  });
}

void describe("issue 11 item 9 / issue 12 item 6: CLI edges", () => {
  void it("`help` after oif is an interface name: the request goes to the daemon", async () => {
    const r = await d.mfc(["add", "to", "239.20.0.9", "iif", "up0", "oif", "dn1", "help"]);
    // Before: help was printed and nothing done, exit 0. Now the daemon is asked, and has no interface 'help'.
    assert.equal(r.code, 1, r.stderr + r.stdout);
    assertOneLineError(r.stderr, "E_IF_NOT_FOUND");
    assert.match(r.stderr, /'help'/);
    assert.doesNotMatch(r.stdout, /usage:/);
    const iif = await d.mfc(["add", "to", "239.20.0.9", "iif", "help", "oif", "dn1"]);
    assertOneLineError(iif.stderr, "E_IF_NOT_FOUND");
  });

  void it("help where a keyword is expected, -h/--help and `mfc help CMD` print help; help on a non-command is E_USAGE", async () => {
    const forms = [["help", "add"], ["add", "help"], ["add", "--help"], ["add", "to", "239.1.1.1", "-h"]];
    const results = await Promise.all(forms.map((args) => runCli(["-s", "/nonexistent.sock", ...args])));
    for (const [i, r] of results.entries()) {
      assert.equal(r.code, 0, `mfc ${forms[i]?.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, /^\s+mfc add \[source/m);
      assert.doesNotMatch(r.stdout, /mfc flush/, "only add's help");
    }
    for (const args of [["help", "frob"], ["help", "vif", "frob"], ["frob", "--help"]]) {
      const r = await runCli(["-s", "/nonexistent.sock", ...args]);
      assert.equal(r.code, 2, `mfc ${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, "");
      const [first, second] = r.stderr.split("\n");
      assert.match(first ?? "", /^mfc: E_USAGE: unknown (sub)?command 'frob'$/);
      assert.match(second ?? "", /^usage: mfc /, "the synopsis follows the one error line");
    }
  });

  void it("a repeated keyword is a usage error naming it; ttl 0 names the range 1-255", async () => {
    const twice = await runCli(["-s", "/nonexistent.sock", "add", "to", "239.20.0.1", "to", "239.20.0.2", "iif", "up0", "oif", "dn1"]);
    assert.equal(twice.code, 2, twice.stderr);
    assert.match(twice.stderr, /^mfc: E_USAGE: 'to' given twice/);
    const ttl = await runCli(["-s", "/nonexistent.sock", "add", "to", "239.20.0.1", "iif", "up0", "oif", "dn1", "ttl", "0"]);
    assert.equal(ttl.code, 2, ttl.stderr);
    assert.match(ttl.stderr, /^mfc: E_USAGE: 'ttl' must be a number 1-255, got '0'\n/);
  });

  void it("a warning of add prints once as 'mfc: warning: CODE', exit 0", async () => {
    const key = "net.ipv4.conf.up0.rp_filter";
    const before = (await lab.exec(lab.ns.router, ["sysctl", "-n", key])).stdout.trim();
    await lab.exec(lab.ns.router, ["sysctl", "-qw", `${key}=2`]);
    try {
      const r = await d.mfc(ADD_SG);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^mfc: warning: RP_FILTER_LOOSE \(/m);
      assert.doesNotMatch(r.stderr, /warning: warning:/);
    } finally {
      await lab.exec(lab.ns.router, ["sysctl", "-qw", `${key}=${before}`]);
    }
  });

  void it("a bad -c file with a progress display (stderr a terminal, 1000 entries): usage error, no dots, exits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mfct-cli-"));
    try {
      const batch = join(dir, "batch.txt");
      writeFileSync(batch, Array.from({ length: 1000 }, (_, i) => `add to 239.21.${i >> 8}.${i & 255} iif up0 oif dn1`).join("\n"));
      const conf = join(dir, "bad.conf");
      writeFileSync(conf, "[daemon]\nno_such_key = 1\n");
      // script(1) gives the CLI a terminal, so the progress display would start.
      const cmd = `${process.execPath} ${CLI_JS} -c ${conf} batch ${batch}`;
      const r = await new Promise<{ code: number; out: string }>((resolve) => {
        execFile("script", ["-qec", cmd, "/dev/null"], { timeout: 20_000 }, (err, stdout) => {
          resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, out: stdout });
        });
      });
      assert.equal(r.code, 2, `exit status (a timeout would be -1): ${r.out}`);
      assert.match(r.out, /mfc: E_USAGE: .*no_such_key/);
      assert.doesNotMatch(r.out, /validating|\.\.\.\./, "no progress display for a request that is never sent");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void it("-j: the daemon's response for every command but show and vif show, which print the view", async () => {
    await ok(ADD_SG);
    for (const args of [["vif", "show"], ["show", "routes"], ["show"]]) {
      const view = JSON.parse(await ok([...args, "-j"])) as Record<string, unknown>;
      assert.ok(!("status" in view), `mfc ${args.join(" ")} -j prints the view`);
    }
    for (const args of [["status"], ["check"], ["vif", "add", "dev", "dn2"], ["del", "from", S, "to", "239.20.0.1"], ["flush"]]) {
      const res = JSON.parse(await ok([...args, "-j"])) as OkJson;
      assert.equal(res.status, "ok", `mfc ${args.join(" ")} -j prints the response`);
      assert.ok(Array.isArray(res.changes) && typeof res.result === "object", `mfc ${args.join(" ")}`);
    }
    const stats = JSON.parse(await ok(["show", "stats", "-j"])) as Record<string, unknown>;
    assert.ok(!("status" in stats) && !("routes" in stats && Array.isArray(stats.routes)), "show stats -j prints its totals");
  });

  void it("an id JSON cannot carry back (1e400) is refused, not echoed as null; a finite id is echoed", async () => {
    const bad = await raw('{"action":"PING","id":1e400}');
    assert.equal(bad.status, "error");
    assert.equal(bad.error_code, "E_INVALID_ARGUMENT");
    assert.match(String(bad.message), /request\.id/);
    assert.ok(!("id" in bad), `no id echoed: ${JSON.stringify(bad)}`);
    const good = await raw('{"action":"PING","id":7}');
    assert.equal(good.status, "ok");
    assert.equal(good.id, 7);
  });
});
