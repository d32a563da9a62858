/**
 * The docs cannot fall behind the code: every error code, CLI command, config key and protocol
 * action must be documented where an operator looks for it.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { COMMANDS } from "../../src/cli/grammar.js";
import { CONFIG_KEYS, ConfigError, DEFAULTS, parseConfig } from "../../src/config/config.js";
import { checkRoute } from "../../src/diagnostics/checks.js";
import { Engine } from "../../src/engine/engine.js";
import { ERROR_CODES, MfcError } from "../../src/errors/codes.js";
import { ACTIONS } from "../../src/protocol/messages.js";
import { parseOp } from "../../src/protocol/schema.js";
import { renderRoute } from "../../src/view/render.js";
import { FakeKernel, FakeLinks } from "../support/fake_kernel.js";
import { MemoryStore } from "../support/memory_store.js";

const read = (rel: string): string => readFileSync(new URL(`../../${rel}`, import.meta.url), "utf8");
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The config keys: the real table (CONFIG_KEYS), each one proved accepted by parseConfig. */
function configKeys(): string[] {
  const keys = Object.keys(CONFIG_KEYS);
  for (const key of keys) {
    try {
      parseConfig(`[daemon]\n${key} = 1\n`, "/etc/test.conf");
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      assert.doesNotMatch(err.message, /unknown key/, `parseConfig calls ${key} of CONFIG_KEYS unknown`);
    }
  }
  assert.throws(() => parseConfig("[daemon]\nno_such_key_x = 1\n", "/etc/test.conf"), /unknown key/, "unknown keys are refused, so the probe above means something");
  // Every setting has a key (client_timeout_s -> clientTimeoutMs, ...).
  const fields = new Set(Object.values(CONFIG_KEYS).map((k) => k.field));
  for (const field of Object.keys(DEFAULTS)) assert.ok(fields.has(field as keyof typeof DEFAULTS), `no config key sets ${field}`);
  return keys;
}

void describe("docs/error-codes.md", () => {
  const doc = read("docs/error-codes.md");
  for (const code of Object.keys(ERROR_CODES)) {
    void test(`documents ${code} (heading or table row)`, () => {
      const heading = new RegExp(`^#{2,4}\\s+\`?${code}\`?\\s*$`, "m");
      const row = new RegExp(`^\\|\\s*\`?${code}\`?\\s*\\|`, "m");
      assert.ok(heading.test(doc) || row.test(doc), `${code} has no heading or table row in docs/error-codes.md`);
    });
    void test(`gives the CLI exit status of ${code}`, () => {
      const exit = ERROR_CODES[code as keyof typeof ERROR_CODES].exit;
      const row = new RegExp(`^\\|\\s*\`?${code}\`?\\s*\\|\\s*${exit}\\s*\\|`, "m");
      assert.ok(row.test(doc), `docs/error-codes.md needs a row '| \`${code}\` | ${exit} |'`);
    });
  }
});

void describe("README.md", () => {
  const readme = read("README.md");
  for (const c of COMMANDS) {
    const words = c.words.join(" ");
    void test(`shows 'mfc ${words}' in its synopsis and in an example`, () => {
      const synopsis = new RegExp(`mfc \\[GLOBAL\\.\\.\\.\\] ${escape(words)}(\\s|$)`, "m");
      assert.ok(synopsis.test(readme), `README.md lacks the synopsis line 'mfc [GLOBAL...] ${words} ...'`);
      // An example: `mfc`, optional global options, then the command's words.
      const example = new RegExp(`(^|[\\s\`$])mfc( -[-\\w=]+( [\\w./-]+)?)* ${escape(words)}(\\s|$|\`)`, "m");
      const examples = readme.split("\n").filter((l) => !l.includes("[GLOBAL...]"));
      assert.ok(examples.some((l) => example.test(l)), `README.md has no example of 'mfc ${words}'`);
    });
  }
  void test("links every document of docs/", () => {
    for (const d of ["docs/operations.md", "docs/protocol.md", "docs/error-codes.md", "docs/architecture.md"]) {
      assert.ok(readme.includes(`](${d})`), `README.md does not link ${d}`);
      assert.ok(read(d).length > 0);
    }
  });
  void test("the quick start is run-dev.sh then test.sh, and .ci/run runs that test command", () => {
    assert.match(readme, /^\.\/scripts\/run-dev\.sh/m);
    assert.match(readme, /^\.\/scripts\/test\.sh/m);
    assert.match(read(".ci/run"), /\.\/scripts\/test\.sh/);
  });
  void test("the CLI is run with the checkout's wrapper (right Node, dev config), never with a bare `node`", () => {
    assert.match(readme, /^alias mfc="\$PWD\/scripts\/mfc"/m);
    assert.doesNotMatch(readme, /alias mfc="node /, "the alias would run whatever node is on PATH");
  });
  void test("names every Debian package set-up may install, and set-up installs no recommends", () => {
    // setup.sh queues packages with `setup_need COMMAND PACKAGE` (and curl/ca-certificates for the download).
    const setup = read("scripts/setup.sh");
    const pkgs = [...setup.matchAll(/^\s*setup_need \S+ (\S+)\s*$/gm)].map((m) => m[1] as string);
    for (const p of ["iproute2", "fiu-utils", "lintian", "rpm"]) assert.ok(pkgs.includes(p), `setup.sh does not queue ${p}`);
    for (const p of [...pkgs, "curl", "ca-certificates"]) assert.ok(readme.includes(`\`${p}\``), `README.md does not name the package ${p} that set-up may install`);
    assert.match(setup, /apt-get .*install --no-install-recommends/);
    assert.doesNotMatch(setup, /need\+?=\(npm\)|SETUP_PKGS\+=\(npm\)|install -y npm/, "Debian's npm pulls hundreds of packages");
  });
  void test("run-dev installs only what it needs: the test-only packages are queued for the test command only", () => {
    const setup = read("scripts/setup.sh");
    const testOnly = /if \[ "\$what" = test \]; then([\s\S]*?)\n {2}fi\n/.exec(setup)?.[1] ?? "";
    for (const p of ["lintian", "rpm", "fiu-utils", "mandoc"]) assert.match(testOnly, new RegExp(`setup_need \\S+ ${p}\\b`), `${p} is not test-only`);
    assert.match(read("scripts/run-dev.sh"), /setup_machine dev\b/);
    assert.match(read("scripts/test.sh"), /setup_machine test\b/);
  });
});

void describe("docs/operations.md", () => {
  const doc = read("docs/operations.md");
  for (const key of configKeys()) {
    void test(`documents config key ${key}`, () => {
      assert.ok(new RegExp(`^\\|\\s*\`${key}\`\\s*\\|`, "m").test(doc), `docs/operations.md has no table row for \`${key}\``);
    });
  }
});

void describe("docs/protocol.md", () => {
  const doc = read("docs/protocol.md");
  for (const action of ACTIONS) {
    void test(`documents action ${action}`, () => {
      assert.ok(new RegExp(`^#{2,4}\\s+.*\`${action}\``, "m").test(doc), `docs/protocol.md has no heading for \`${action}\``);
    });
  }
});

void describe("the finding codes of mfc check", () => {
  // Finding["code"] is a type: the codes are read from the checks' source, where each is made.
  const codes = [...new Set([...read("src/diagnostics/checks.ts").matchAll(/\bcode: "([A-Z0-9_]+)"/g)].map((m) => m[1] as string))];
  void test("are found in src/diagnostics/checks.ts", () => assert.ok(codes.length >= 10, codes.join(" ")));
  for (const code of codes) {
    void test(`${code} is described in man/mfc.8 (check) and listed in docs/protocol.md (CHECK)`, () => {
      assert.match(read("man/mfc.8"), new RegExp(`^\\.B ${code} \\\\fR\\((error|warning|info)\\)$`, "m"), `man/mfc.8 has no '.B ${code} \\fR(severity)' entry`);
      assert.ok(read("docs/protocol.md").includes(`\`${code}\``), `docs/protocol.md does not list ${code}`);
    });
  }
});

/** What the docs say happens, done: the documented behaviour, not only the names. */
void describe("documented behaviour", () => {
  /** The code a request gets from an engine with route (*, 239.1.1.1) eth0 -> eth1 and a pinned eth2. */
  async function codeOf(action: string, payload: unknown): Promise<string> {
    const links = new FakeLinks(["eth0", "eth1", "eth2", "eth3"]);
    const engine = new Engine(new FakeKernel(links), links, new MemoryStore());
    await engine.transact([
      parseOp("ADD_MFC", { group: "239.1.1.1", iif: "eth0", oifs: [{ ifname: "eth1", ttl: 1 }] }),
      parseOp("ADD_VIF", { ifname: "eth2", threshold: 1 }),
    ], false);
    try {
      await engine.transact([parseOp(action, payload)], false);
      return "ok";
    } catch (err) {
      assert.ok(err instanceof MfcError, String(err));
      return err.code;
    }
  }
  const section = (doc: string, heading: string): string => doc.split(/^## /m).find((s) => s.startsWith(`${heading}\n`)) ?? "";

  void test("error-codes.md: vif del of an automatic VIF is E_VIF_IN_USE, of an unnamed interface E_VIF_NOT_FOUND", async () => {
    const doc = read("docs/error-codes.md");
    assert.equal(await codeOf("DEL_VIF", { ifname: "eth1" }), "E_VIF_IN_USE", "eth1 has an automatic VIF");
    assert.match(section(doc, "E_VIF_IN_USE"), /automatic VIF/);
    assert.equal(await codeOf("DEL_VIF", { ifname: "eth3" }), "E_VIF_NOT_FOUND");
    assert.match(section(doc, "E_VIF_NOT_FOUND"), /no\s+route names it/);
    assert.equal(await codeOf("DEL_VIF", { ifname: "eth2" }), "ok", "a pinned VIF no route uses");
  });

  void test("operations.md: the route lines of 'Pending routes' are what show prints", () => {
    const doc = read("docs/operations.md");
    const route = { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: [{ ifname: "eth1", ttl: 1 }, { ifname: "eth2", ttl: 1 }], packets: 0, bytes: 0, wrong_if: 0 };
    const lines = [
      renderRoute({ ...route, source: "10.0.0.9", group: "239.3.3.3", oifs: [{ ifname: "eth1", ttl: 1 }], state: "pending", reason: "interface 'eth1' missing" }),
      renderRoute({ ...route, state: "installed", reason: "interface 'eth1' missing" }),
      renderRoute({ ...route, source: "10.0.0.7", group: "239.4.4.4", iif: "eth5", oifs: [{ ifname: "eth1", ttl: 1 }], state: "pending", reason: "interface 'eth5': kernel refused VIF: EADDRNOTAVAIL" }),
    ];
    for (const line of lines) assert.ok(doc.split("\n").includes(line), `docs/operations.md lacks the line show prints:\n${line}`);
  });

  void test("operations.md: the rp_filter key of a dotted interface name is the one mfc check prints", () => {
    const doc = read("docs/operations.md");
    const up = { exists: true, up: true, running: true, multicast: true, rpFilter: 1 };
    const [finding] = checkRoute({ source: null, group: "239.1.1.1", iif: "eth0.100", oifs: [{ ifname: "eth1", ttl: 1 }] },
      { interfaces: new Map([["eth0.100", up], ["eth1", { ...up, rpFilter: 0 }]]), vifsInUse: { 4: 2, 6: 0 }, unrouted: [] });
    const key = /net\.ipv4\.conf\.\S+?\.rp_filter/.exec(finding?.fix ?? "")?.[0];
    assert.equal(key, "net.ipv4.conf.eth0/100.rp_filter");
    assert.ok(doc.includes(`\`${key}\``), `docs/operations.md does not show ${key}`);
  });
});
