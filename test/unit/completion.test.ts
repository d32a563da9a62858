/**
 * completion/mfc.bash and the man pages, against the code they describe: the completion is run in
 * bash with COMP_WORDS/COMP_CWORD set by hand, and the grammar (COMMANDS), the global options, the
 * error registry (ERROR_CODES), the daemon's options and the config keys must all appear in the
 * completion and the man pages.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { COMMANDS, GLOBAL_SYNOPSIS } from "../../src/cli/grammar.js";
import { CONFIG_KEYS, DEFAULTS } from "../../src/config/config.js";
import { ERROR_CODES, type ErrorCode } from "../../src/errors/codes.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SCRIPT = join(ROOT, "completion", "mfc.bash");
const read = (rel: string): string => readFileSync(join(ROOT, rel), "utf8");

/** Runs _mfc for the command line `words` (the last one is the word being completed). */
function complete(words: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): string[] {
  const program = [
    'source "$1"; shift',
    'COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}',
    '_mfc mfc "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join("\n");
  const r = spawnSync("bash", ["--norc", "--noprofile", "-c", program, "bash", SCRIPT, ...words], {
    encoding: "utf8", cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env },
  });
  assert.equal(r.error, undefined);
  assert.equal(r.stderr, "", `stderr for ${JSON.stringify(words)}`);
  assert.equal(r.status, 0);
  return r.stdout.split("\n").filter((w) => w !== "");
}

const sorted = (xs: Iterable<string>): string[] => [...xs].sort();
const same = (got: string[], want: Iterable<string>, why?: string): void => assert.deepEqual(sorted(got), sorted(new Set(want)), why);

/** A fake /sys/class/net with known interfaces, so the answers do not depend on the host. */
function fakeSysfs(names: string[]): { env: Record<string, string>; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "mfc-comp-"));
  for (const n of names) mkdirSync(join(dir, n));
  return { env: { MFC_COMPLETION_SYSFS_NET: dir }, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Whole-word tokens of a text; in roff source, `\-` is a hyphen. */
function tokens(text: string): Set<string> {
  return new Set(text.replace(/\\-/g, "-").split(/[^A-Za-z0-9_.-]+/).filter((t) => t !== ""));
}

/** The lowercase keywords of every synopsis (add, source, from, group, to, iif, oif, ttl, dev, ...). */
const KEYWORDS = new Set(COMMANDS.flatMap((c) => c.synopsis.split(/[\s|[\]]+/).filter((w) => /^[a-z]+$/.test(w))));
const FIRST_WORDS = new Set(COMMANDS.map((c) => c.words[0] as string));
const GLOBAL_OPTIONS = GLOBAL_SYNOPSIS.split(/[\s|]+/).filter((w) => w.startsWith("-"));

void describe("completion: commands and keywords", () => {
  void test("mfc v -> vif", () => {
    assert.deepEqual(complete(["mfc", "v"]), ["vif"]);
  });
  void test("the first word: every command of the grammar, and help", () => {
    same(complete(["mfc", ""]), [...FIRST_WORDS, "help"]);
  });
  void test("mfc vif -> the vif subcommands of the grammar", () => {
    const subs = COMMANDS.filter((c) => c.words[0] === "vif").map((c) => c.words[1] as string);
    same(complete(["mfc", "vif", ""]), subs);
    assert.deepEqual(sorted(subs), ["add", "del", "show"]);
  });
  void test("show -> routes vifs joins stats; commands without arguments -> nothing", () => {
    same(complete(["mfc", "show", ""]), ["routes", "vifs", "joins", "stats"]);
    assert.deepEqual(complete(["mfc", "show", "routes", ""]), []);
    assert.deepEqual(complete(["mfc", "flush", ""]), []);
    assert.deepEqual(complete(["mfc", "status", ""]), []);
    assert.deepEqual(complete(["mfc", "vif", "show", ""]), []);
  });
  void test("help -> the commands; help vif -> its subcommands", () => {
    same(complete(["mfc", "help", ""]), FIRST_WORDS);
    same(complete(["mfc", "help", "vif", ""]), ["add", "del", "show"]);
  });
  void test("route keywords are offered until used; none where a value goes", () => {
    same(complete(["mfc", "add", ""]), ["source", "from", "group", "to", "iif", "oif"]);
    same(complete(["mfc", "replace", "to", "239.1.1.1", ""]), ["source", "from", "iif", "oif"]);
    assert.deepEqual(complete(["mfc", "add", "from", ""]), []);
    assert.deepEqual(complete(["mfc", "add", "to", ""]), []);
    same(complete(["mfc", "del", ""]), ["source", "from", "group", "to"]);
    same(complete(["mfc", "del", "from", "10.0.0.1", ""]), ["group", "to"]);
    same(complete(["mfc", "check", ""]), ["source", "from", "group", "to"]);
    assert.deepEqual(complete(["mfc", "check", "to", ""]), []);
  });
  void test("join/leave: dev, group, source until used; none where a value goes", () => {
    for (const cmd of ["join", "leave"]) {
      same(complete(["mfc", cmd, ""]), ["dev", "group", "source"]);
      same(complete(["mfc", cmd, "dev", "lo", ""]), ["group", "source"]);
      same(complete(["mfc", cmd, "group", "239.1.1.1", "dev", "lo", ""]), ["source"]);
      assert.deepEqual(complete(["mfc", cmd, "dev", "lo", "group", "239.1.1.1", "source", "10.0.0.1", ""]), []);
      assert.deepEqual(complete(["mfc", cmd, "group", ""]), []);
      assert.deepEqual(complete(["mfc", cmd, "source", ""]), []);
    }
  });
  void test("import -> smcroute, then a file name or '-'", () => {
    const dir = mkdtempSync(join(tmpdir(), "mfc-comp-import-"));
    try {
      writeFileSync(join(dir, "smcroute.conf"), "");
      assert.deepEqual(complete(["mfc", "import", ""]), ["smcroute"]);
      same(complete(["mfc", "import", "smcroute", ""], { cwd: dir }), ["-", "smcroute.conf"]);
      assert.deepEqual(complete(["mfc", "import", "smcroute", "-"], { cwd: dir }), ["-"]);
      assert.deepEqual(complete(["mfc", "import", "smcroute", "smcroute.conf", ""], { cwd: dir }), []);
      assert.deepEqual(complete(["mfc", "help", "import", ""]), ["smcroute"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  void test("vif add/del: dev, then threshold (add only)", () => {
    same(complete(["mfc", "vif", "add", ""]), ["dev", "threshold"]);
    assert.deepEqual(complete(["mfc", "vif", "add", "dev", "lo", ""]), ["threshold"]);
    assert.deepEqual(complete(["mfc", "vif", "add", "dev", "lo", "threshold", ""]), []);
    assert.deepEqual(complete(["mfc", "vif", "del", ""]), ["dev"]);
    assert.deepEqual(complete(["mfc", "vif", "del", "dev", "lo", ""]), []);
  });
});

void describe("completion: global options", () => {
  void test("mfc -o -> text json, in every spelling", () => {
    same(complete(["mfc", "-o", ""]), ["text", "json"]);
    same(complete(["mfc", "--output", ""]), ["text", "json"]);
    assert.deepEqual(complete(["mfc", "--output=j"]), ["json"]);
    // readline splits "--output=j" at '=' when '=' is in COMP_WORDBREAKS (the default)
    same(complete(["mfc", "--output", "="]), ["text", "json"]);
    assert.deepEqual(complete(["mfc", "--output", "=", "t"]), ["text"]);
  });
  void test("a dash offers every global option of the grammar, before or after the command", () => {
    same(complete(["mfc", "-"]), [...GLOBAL_OPTIONS, "-j", "--json"]);
    same(complete(["mfc", "show", "-"]), [...GLOBAL_OPTIONS, "-j", "--json"]);
    assert.deepEqual(complete(["mfc", "--dr"]), ["--dry-run"]);
  });
  void test("global options and their values are skipped when finding the command", () => {
    same(complete(["mfc", "-j", "show", ""]), ["routes", "vifs", "joins", "stats"]);
    same(complete(["mfc", "show", "-j", ""]), ["routes", "vifs", "joins", "stats"]);
    same(complete(["mfc", "-n", "-s", "/run/x.sock", "--output", "json", "vif", ""]), ["add", "del", "show"]);
    same(complete(["mfc", "--config", "=", "/etc/x.conf", "vif", ""]), ["add", "del", "show"]);
  });
  void test("-s / -c / batch / apply complete file names; batch and apply also '-'", () => {
    const dir = mkdtempSync(join(tmpdir(), "mfc-comp-files-"));
    try {
      writeFileSync(join(dir, "routes.batch"), "");
      writeFileSync(join(dir, "routes.json"), "");
      writeFileSync(join(dir, "other.conf"), "");
      same(complete(["mfc", "batch", "ro"], { cwd: dir }), ["routes.batch", "routes.json"]);
      same(complete(["mfc", "apply", ""], { cwd: dir }), ["-", "routes.batch", "routes.json", "other.conf"]);
      assert.deepEqual(complete(["mfc", "batch", "-"], { cwd: dir }), ["-"]);
      assert.deepEqual(complete(["mfc", "-c", "ot"], { cwd: dir }), ["other.conf"]);
      assert.deepEqual(complete(["mfc", "--config=ot"], { cwd: dir }), ["other.conf"]);
      assert.deepEqual(complete(["mfc", "--socket", "=", "ot"], { cwd: dir }), ["other.conf"]);
      assert.deepEqual(complete(["mfc", "batch", "routes.batch", ""], { cwd: dir }), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

void describe("completion: interface names", () => {
  void test("mfc add to 239.1.1.1 iif -> includes lo (from /sys/class/net)", () => {
    const got = complete(["mfc", "add", "to", "239.1.1.1", "iif", ""]);
    assert.ok(got.includes("lo"), `got ${JSON.stringify(got)}`);
    if (existsSync("/sys/class/net")) same(got, readdirSync("/sys/class/net"));
  });
  void test("after iif, oif (and every later word of the oif list) and dev", () => {
    const fake = fakeSysfs(["eth0", "eth1", "eth2"]);
    try {
      const c = (...w: string[]): string[] => complete(["mfc", ...w], { env: fake.env });
      same(c("add", "to", "239.1.1.1", "iif", ""), ["eth0", "eth1", "eth2"]);
      same(c("add", "to", "239.1.1.1", "iif", "e"), ["eth0", "eth1", "eth2"]);
      // the input interface is not offered as an output, nor an output twice
      same(c("add", "to", "239.1.1.1", "iif", "eth0", "oif", ""), ["eth1", "eth2", "source", "from"]);
      same(c("add", "to", "239.1.1.1", "iif", "eth0", "oif", "eth1", ""), ["eth2", "ttl", "source", "from"]);
      assert.deepEqual(c("add", "to", "239.1.1.1", "iif", "eth0", "oif", "eth1", "ttl", ""), []);
      same(c("add", "to", "239.1.1.1", "iif", "eth0", "oif", "eth1", "ttl", "3", ""), ["eth2", "source", "from"]);
      same(c("replace", "oif", "eth1", "eth2", "iif", ""), ["eth0"]);
      same(c("vif", "add", "dev", ""), ["eth0", "eth1", "eth2"]);
      same(c("vif", "del", "dev", "eth"), ["eth0", "eth1", "eth2"]);
    } finally {
      fake.cleanup();
    }
  });
  void test("without /sys/class/net, names come from `ip -o link show`", () => {
    const bin = mkdtempSync(join(tmpdir(), "mfc-comp-ip-"));
    try {
      writeFileSync(join(bin, "ip"), [
        "#!/bin/sh",
        "echo '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00'",
        "echo '7: veth-a@if8: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff link-netnsid 0'",
        "",
      ].join("\n"));
      chmodSync(join(bin, "ip"), 0o755);
      const env = { MFC_COMPLETION_SYSFS_NET: join(bin, "no-such-dir"), PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` };
      same(complete(["mfc", "vif", "add", "dev", ""], { env }), ["lo", "veth-a"]);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});

void describe("completion and man pages agree with the code", () => {
  const script = read("completion/mfc.bash");
  const mfc8 = read("man/mfc.8");
  const daemon8 = read("man/mfc_daemon.8");
  const conf5 = read("man/mfc_daemon.conf.5");

  void test("every command word and synopsis keyword of COMMANDS is in the completion script", () => {
    const have = tokens(script);
    for (const c of COMMANDS) for (const w of c.words) assert.ok(have.has(w), `completion lacks command word '${w}'`);
    for (const k of KEYWORDS) assert.ok(have.has(k), `completion lacks keyword '${k}'`);
    for (const o of GLOBAL_OPTIONS) assert.ok(have.has(o), `completion lacks option '${o}'`);
  });

  void test("every command of COMMANDS, its keywords and the global options are in man/mfc.8", () => {
    const text = mfc8.replace(/\\-/g, "-").replace(/\\f[BIRP]/g, "");
    for (const c of COMMANDS) {
      const words = c.words.join(" ");
      assert.match(text, new RegExp(`(^|[\\s"])${words}($|[\\s"])`, "m"), `man/mfc.8 lacks command '${words}'`);
    }
    const have = tokens(text);
    for (const k of KEYWORDS) assert.ok(have.has(k), `man/mfc.8 lacks keyword '${k}'`);
    for (const o of [...GLOBAL_OPTIONS, "--json"]) assert.ok(have.has(o), `man/mfc.8 lacks option '${o}'`);
  });

  void test("every code of ERROR_CODES has an entry in the ERRORS section of man/mfc.8, with its exit status", () => {
    const section = /^\.SH ERRORS\n([\s\S]*?)^\.SH /m.exec(mfc8)?.[1];
    assert.ok(section, "man/mfc.8 has no ERRORS section");
    const entries = new Map(section.split("\n.TP\n").slice(1).map((e) => [/^\.B (\S+)/.exec(e)?.[1] ?? "", e]));
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const entry = entries.get(code);
      assert.ok(entry, `man/mfc.8 ERRORS lacks ${code}`);
      assert.match(entry, new RegExp(`Exit ${ERROR_CODES[code].exit}\\.`), `${code}: exit status should be ${ERROR_CODES[code].exit}`);
    }
    for (const code of entries.keys()) assert.ok(Object.hasOwn(ERROR_CODES, code), `man/mfc.8 documents unknown code ${code}`);
  });

  void test("every config key (CONFIG_KEYS of src/config/config.ts) is in man/mfc_daemon.conf.5, with its default", () => {
    const keys = Object.keys(CONFIG_KEYS);
    assert.ok(keys.length >= 7, `parsed only ${keys.length} keys: ${keys.join(", ")}`);
    const section = /^\.SH KEYS\n([\s\S]*?)^\.SH /m.exec(conf5)?.[1] ?? "";
    const entries = new Map(section.split("\n.TP\n").map((e) => [/^\.B (\S+)/.exec(e.replace(/^\.TP\n/, ""))?.[1] ?? "", e]));
    const defaults: Record<string, string> = {
      socket_path: DEFAULTS.socketPath, state_file: DEFAULTS.stateFile, socket_group: DEFAULTS.socketGroup,
      max_request_bytes: String(DEFAULTS.maxRequestBytes), max_connections: String(DEFAULTS.maxConnections),
      client_timeout_s: String(DEFAULTS.clientTimeoutMs / 1000),
    };
    for (const key of keys) {
      const entry = entries.get(key);
      assert.ok(entry, `man/mfc_daemon.conf.5 KEYS lacks '${key}'`);
      assert.match(entry, /Type:\s/, `${key}: no type`);
      assert.match(entry, /Default:\s/, `${key}: no default`);
      const want = defaults[key];
      if (want !== undefined) assert.ok(entry.includes(`Default:\n.BR ${want} .`) || entry.includes(`Default:\n.IR ${want} .`) || entry.includes(`Default: ${want}`), `${key}: default should be ${want}`);
    }
    for (const key of entries.keys()) if (key !== "") assert.ok(keys.includes(key), `man/mfc_daemon.conf.5 documents unknown key '${key}'`);
  });

  void test("every option of mfc_daemon (daemon_main.ts) is in man/mfc_daemon.8", () => {
    const src = read("src/daemon_main.ts");
    const block = /options:\s*\{([\s\S]*?)\n\s*\},\n/.exec(src)?.[1];
    assert.ok(block, "cannot find the parseArgs options in src/daemon_main.ts");
    const options = [...block.matchAll(/^\s*"?([a-z-]+)"?: \{ type:/gm)].map((m) => m[1] as string);
    assert.ok(options.length >= 5, `parsed only ${options.length} options`);
    const have = tokens(daemon8);
    for (const o of options) assert.ok(have.has(`--${o}`), `man/mfc_daemon.8 lacks --${o}`);
  });

  const lint = spawnSync("mandoc", ["-V"], { encoding: "utf8" }).error === undefined ? "mandoc"
    : spawnSync("groff", ["-v"], { encoding: "utf8" }).error === undefined ? "groff" : undefined;
  void test("the man pages lint clean", { skip: lint === undefined ? "neither mandoc nor groff is installed" : false }, () => {
    for (const page of ["man/mfc.8", "man/mfc_daemon.8", "man/mfc_daemon.conf.5"]) {
      const r = lint === "mandoc"
        ? spawnSync("mandoc", ["-T", "lint", "-W", "warning", join(ROOT, page)], { encoding: "utf8" })
        : spawnSync("groff", ["-man", "-Tutf8", "-ww", "-z", join(ROOT, page)], { encoding: "utf8" });
      assert.equal(`${r.stdout}${r.stderr}`, "", `${lint ?? ""} on ${page}`);
      assert.equal(r.status, 0, page);
    }
  });
});
