/** src/config/config.ts: the daemon's INI config, every value checked, errors by key and line. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONFIG_KEYS, ConfigError, DEFAULTS, loadConfig, parseConfig } from "../../src/config/config.js";
import { DEFAULT_MAX_REQUEST_BYTES } from "../../src/protocol/messages.js";

const FILE = "/etc/mfc/mfc_daemon.conf";

function configError(text: string, ...mentions: (string | RegExp)[]): ConfigError {
  let caught: unknown;
  try {
    parseConfig(text, FILE);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : "no error"}`);
  for (const m of mentions) {
    if (typeof m === "string") assert.ok(caught.message.includes(m), `message should contain ${JSON.stringify(m)}: ${caught.message}`);
    else assert.match(caught.message, m);
  }
  return caught;
}

void describe("parseConfig", () => {
  void test("defaults (SPEC §2)", () => {
    const expected = {
      socketPath: "/var/run/mfc_daemon.sock",
      stateFile: "/var/lib/mfc_daemon/state.json",
      socketGroup: "mfc_admin",
      table: undefined,
      maxRequestBytes: 64 * 1024 * 1024,
      maxConnections: 64,
      clientTimeoutMs: 60_000,
      requestTimeoutMs: 10_000,
      templateIdleMs: 300_000,
    };
    assert.deepEqual(DEFAULTS, expected);
    assert.equal(DEFAULT_MAX_REQUEST_BYTES, 64 * 1024 * 1024);
    assert.deepEqual(parseConfig("", FILE), expected);
    assert.deepEqual(parseConfig("# only comments\n; here\n\n[daemon]\n", FILE), expected);
  });

  void test("the result is a copy: DEFAULTS is never changed", () => {
    parseConfig("[daemon]\nsocket_path = /x.sock\n", FILE);
    assert.equal(DEFAULTS.socketPath, "/var/run/mfc_daemon.sock");
  });

  void test("every key", () => {
    const text = [
      "[daemon]",
      "socket_path = /run/mfc/ctl.sock",
      "state_file = /srv/mfc/state.json",
      "socket_group = netadm",
      "table = 10",
      "max_request_bytes = 2048",
      "max_connections = 5",
      "client_timeout_s = 30",
      "request_timeout_s = 5",
      "template_idle_s = 7",
    ].join("\n");
    assert.deepEqual(parseConfig(text, FILE), {
      socketPath: "/run/mfc/ctl.sock",
      stateFile: "/srv/mfc/state.json",
      socketGroup: "netadm",
      table: 10,
      maxRequestBytes: 2048,
      maxConnections: 5,
      clientTimeoutMs: 30_000,
      requestTimeoutMs: 5_000,
      templateIdleMs: 7_000,
    });
  });

  void test("empty socket_group and empty table are allowed", () => {
    const c = parseConfig("[daemon]\nsocket_group =\ntable =\n", FILE);
    assert.equal(c.socketGroup, "");
    assert.equal(c.table, undefined);
    assert.equal(parseConfig("[daemon]\ntable = 0\n", FILE).table, 0);
    // The kernel's MRT_TABLE limit (ipmr_new_table: >= 1e9 is EINVAL), not the u32's.
    assert.equal(parseConfig("[daemon]\ntable = 999999999\n", FILE).table, 999_999_999);
  });

  void test("range limits are inclusive", () => {
    assert.equal(parseConfig("[daemon]\nmax_request_bytes = 1024\n", FILE).maxRequestBytes, 1024);
    assert.equal(parseConfig("[daemon]\nmax_request_bytes = 1073741824\n", FILE).maxRequestBytes, 1024 ** 3);
    assert.equal(parseConfig("[daemon]\nmax_connections = 1\n", FILE).maxConnections, 1);
    assert.equal(parseConfig("[daemon]\nmax_connections = 10000\n", FILE).maxConnections, 10_000);
    assert.equal(parseConfig("[daemon]\nclient_timeout_s = 86400\n", FILE).clientTimeoutMs, 86_400_000);
    assert.equal(parseConfig("[daemon]\nrequest_timeout_s = 1\n", FILE).requestTimeoutMs, 1_000);
    assert.equal(parseConfig("[daemon]\nrequest_timeout_s = 86400\n", FILE).requestTimeoutMs, 86_400_000);
  });

  void test("relative paths are resolved against the config file's directory", () => {
    const c = parseConfig("[daemon]\nsocket_path = ../run/mfc_daemon.sock\nstate_file = state/state.json\n", "/opt/mfc/config/dev.conf");
    assert.equal(c.socketPath, "/opt/mfc/run/mfc_daemon.sock");
    assert.equal(c.stateFile, "/opt/mfc/config/state/state.json");
  });

  void test("a relative config file name is resolved from the working directory first", () => {
    const c = parseConfig("[daemon]\nstate_file = s.json\n", "config/dev.conf");
    assert.equal(c.stateFile, join(process.cwd(), "config", "s.json"));
  });

  void test("config/dev.conf keeps socket and state inside the checkout's run/", () => {
    const c = loadConfig(new URL("../../config/dev.conf", import.meta.url).pathname);
    const root = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
    assert.equal(c.socketPath, `${root}/run/mfc_daemon.sock`);
    assert.equal(c.stateFile, `${root}/run/state.json`);
    assert.equal(c.socketGroup, "");
    assert.equal(c.table, undefined);
  });

  void test("an unknown key names the key and its line", () => {
    configError("# comment\n[daemon]\nsocket_path = /a\nfrobnicate = 1\n", `${FILE}:4:`, "'frobnicate'");
    configError("[daemon]\nsocket_pth = /a\n", `${FILE}:2:`, "'socket_pth'");
  });

  void test("a key outside [daemon] names the key and its line", () => {
    configError("table = 1\n[daemon]\n", `${FILE}:1:`, "'table'", "outside [daemon]");
  });

  void test("an unknown section names the section and its line", () => {
    configError("[daemon]\ntable = 1\n\n[server]\nx = 1\n", `${FILE}:4:`, "unknown section 'server'");
    configError("[Daemon]\n", `${FILE}:1:`, "'Daemon'");
  });

  const bad: [string, string, number][] = [
    ["socket_path", "", 3],
    ["state_file", "", 3],
    ["socket_group", "two words", 3],
    ["socket_group", "9group!", 3],
    ["table", "-1", 3],
    ["table", "main", 3],
    ["table", "4294967296", 3],
    ["table", "4294967295", 3],
    ["table", "2147483648", 3],
    ["table", "1000000000", 3],
    ["max_request_bytes", "1023", 3],
    ["max_request_bytes", "1073741825", 3],
    ["max_request_bytes", "64M", 3],
    ["max_connections", "0", 3],
    ["max_connections", "10001", 3],
    ["max_connections", "1.5", 3],
    ["client_timeout_s", "0", 3],
    ["client_timeout_s", "86401", 3],
    ["client_timeout_s", "1e3", 3],
    ["request_timeout_s", "0", 3],
    ["request_timeout_s", "86401", 3],
    ["request_timeout_s", "10s", 3],
  ];
  for (const [key, value, line] of bad) {
    void test(`${key} = ${JSON.stringify(value)} is refused with key and line`, () => {
      const err = configError(`[daemon]\n# the line below is wrong\n${key} = ${value}\n`, `${FILE}:${line}:`, key);
      assert.ok(err.message.includes(JSON.stringify(value)), `message should show the value: ${err.message}`);
    });
  }

  void test("table's message names the range", () => {
    configError("[daemon]\ntable = 1000000000\n", `${FILE}:2:`, "0-999999999");
  });

  void test("socket_path may not be the state file, its journal or its lock; nor longer than sun_path", () => {
    configError("[daemon]\nstate_file = /var/lib/m/s.json\nsocket_path = /var/lib/m/s.json\n", `${FILE}:3:`, "clash", "the state file");
    configError("[daemon]\nsocket_path = /var/lib/m/s.json.journal\nstate_file = /var/lib/m/s.json\n", `${FILE}:3:`, "clash", "journal");
    configError("[daemon]\nsocket_path = /var/lib/m/s.json.lock\nstate_file = /var/lib/m/s.json\n", "clash", "lock");
    configError("[daemon]\nsocket_path = /var/lib/m/.s.json.123.tmp\nstate_file = /var/lib/m/s.json\n", "temp file");
    // Relative paths are resolved first: the same file spelled two ways.
    configError("[daemon]\nsocket_path = ../mfc/state.json\nstate_file = state.json\n", "clash");
    configError(`[daemon]\nsocket_path = /${"x".repeat(107)}\n`, `${FILE}:2:`, "108 bytes", "at most 107");
    assert.equal(parseConfig(`[daemon]\nsocket_path = /${"x".repeat(106)}\n`, FILE).socketPath.length, 107);
  });

  void test("a bare key (no '=') is refused as not a single value", () => {
    configError("[daemon]\ntable\n", `${FILE}:2:`, "table", "single value");
  });
});

void describe("loadConfig", () => {
  void test("reads a file and resolves relative paths against it", () => {
    const dir = mkdtempSync(join(tmpdir(), "mfc-config-"));
    try {
      const file = join(dir, "d.conf");
      writeFileSync(file, "[daemon]\nstate_file = st.json\nmax_connections = 3\n");
      const c = loadConfig(file);
      assert.equal(c.stateFile, join(dir, "st.json"));
      assert.equal(c.maxConnections, 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  void test("a missing file is a ConfigError naming the file", () => {
    assert.throws(() => loadConfig("/nonexistent/mfc_daemon.conf"), (err: unknown) => err instanceof ConfigError && err.message.includes("/nonexistent/mfc_daemon.conf"));
  });
});

void describe("module boundaries (issue 12, Structure)", () => {
  const imports = (dir: string): { file: string; spec: string }[] => {
    const root = new URL(`../../src/${dir}/`, import.meta.url);
    return readdirSync(root).filter((f) => f.endsWith(".ts")).flatMap((file) =>
      [...readFileSync(new URL(file, root), "utf8").matchAll(/^(?:import|export)\b[^;]*?from\s+"([^"]+)"|import\("([^"]+)"\)/gm)]
        .map((m) => ({ file: `${dir}/${file}`, spec: (m[1] ?? m[2]) as string })));
  };

  void test("the config reader shared by CLI and daemon imports neither of them", () => {
    for (const { file, spec } of imports("config")) assert.doesNotMatch(spec, /\/(cli|daemon)\//, `${file} imports ${spec}`);
  });

  void test("the CLI reads the config through src/config, not the daemon's modules", () => {
    const all = imports("cli");
    assert.ok(all.some((i) => i.spec === "../config/config.js"), "the CLI's config reader is src/config/config.ts");
    assert.ok(!existsSync(new URL("../../src/daemon/config.ts", import.meta.url)), "src/daemon/config.ts moved to src/config/config.ts");
    for (const { file, spec } of all) assert.doesNotMatch(spec, /daemon\/config|daemon\.js|daemon_main/, `${file} imports ${spec}`);
  });

  void test("CONFIG_KEYS is the table parseConfig reads: every key, every setting", () => {
    const fields = Object.values(CONFIG_KEYS).map((k) => k.field).sort();
    assert.deepEqual(fields, Object.keys(DEFAULTS).sort(), "one key per setting");
  });
});
