/** src/cli/grammar.ts + src/cli/globals.ts: the CLI grammar of SPEC §4, words in, request out. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { COMMANDS, HELP_WIDTH, UsageError, helpRequest, helpText, jsonOutput, parseBatchFile, parseCommand, type ParsedCommand } from "../../src/cli/grammar.js";
import { parseGlobals } from "../../src/cli/globals.js";
import { READ_ACTIONS, type Response } from "../../src/protocol/messages.js";

const words = (line: string): string[] => line.split(/\s+/).filter((w) => w !== "");
const cmd = (line: string): ParsedCommand => parseCommand(words(line));

/** Asserts a UsageError whose message quotes `offending`. */
function usage(fn: () => unknown, offending: string | RegExp): UsageError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof UsageError, `expected UsageError, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : "no error"}`);
  if (typeof offending === "string") assert.ok(caught.message.includes(`'${offending}'`), `message should quote '${offending}': ${caught.message}`);
  else assert.match(caught.message, offending);
  return caught;
}

void describe("routes: add / replace / del", () => {
  void test("add with every keyword, several oifs and a per-oif ttl", () => {
    assert.deepEqual(cmd("add source 10.0.0.1 group 239.1.1.1 iif eth0 oif eth1 eth2 ttl 3 eth3"), {
      action: "ADD_MFC",
      payload: { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: ["eth1", { ifname: "eth2", ttl: 3 }, "eth3"] },
    });
  });
  void test("from/to are synonyms of source/group; keywords in any order", () => {
    assert.deepEqual(cmd("add from 10.0.0.1 to 239.1.1.1 iif eth0 oif eth1"), cmd("add iif eth0 oif eth1 group 239.1.1.1 source 10.0.0.1"));
    assert.deepEqual(cmd("add from 10.0.0.1 to 239.1.1.1 iif eth0 oif eth1").payload, {
      source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: ["eth1"],
    });
  });
  void test("no source (or source *) is the (*,G) route: source null", () => {
    assert.equal(cmd("add group 239.1.1.1 iif eth0 oif eth1").payload.source, null);
    assert.equal(cmd("add source * group 239.1.1.1 iif eth0 oif eth1").payload.source, null);
  });
  void test("replace has the same grammar", () => {
    const r = cmd("replace to 239.1.1.1 iif eth0 oif eth1 ttl 9 eth2");
    assert.equal(r.action, "REPLACE_MFC");
    assert.deepEqual(r.payload.oifs, [{ ifname: "eth1", ttl: 9 }, "eth2"]);
  });
  void test("del takes only the key", () => {
    assert.deepEqual(cmd("del source 10.0.0.1 group 239.1.1.1"), { action: "DEL_MFC", payload: { source: "10.0.0.1", group: "239.1.1.1" } });
    assert.deepEqual(cmd("del to 239.1.1.1"), { action: "DEL_MFC", payload: { source: null, group: "239.1.1.1" } });
    assert.deepEqual(cmd("del from * to 239.1.1.1"), { action: "DEL_MFC", payload: { source: null, group: "239.1.1.1" } });
  });
  void test("route usage errors name the offending word", () => {
    usage(() => cmd("add iif eth0 oif eth1"), "group G");
    usage(() => cmd("add group 239.1.1.1 oif eth1"), "iif IF");
    usage(() => cmd("add group 239.1.1.1 iif eth0"), "oif IF [IF...]");
    usage(() => cmd("add group 239.1.1.1 iif eth0 oif"), "oif IF [IF...]");
    usage(() => cmd("add group"), "group");
    usage(() => cmd("add group 239.1.1.1 iif"), "iif");
    usage(() => cmd("add group 239.1.1.1 iif eth0 oif eth1 ttl"), "ttl");
    usage(() => cmd("add group 239.1.1.1 iif eth0 oif eth1 ttl x"), "x");
    usage(() => cmd("add group 239.1.1.1 iif eth0 oif eth1 ttl -1"), "-1");
    usage(() => cmd("add group 239.1.1.1 bogus iif eth0 oif eth1"), "bogus");
    usage(() => cmd("add group 239.1.1.1 iif eth0 eth9 oif eth1"), "eth9");
    usage(() => cmd("add group 239.1.1.1 iif eth0 oif ttl 3"), "ttl N");
    usage(() => cmd("del group 239.1.1.1 iif eth0"), "iif");
    usage(() => cmd("del source 10.0.0.1"), "group G");
    usage(() => cmd("del"), "group G");
  });
  void test("a repeated keyword is a usage error naming it, not a silent last-one-wins (issue 11 item 9)", () => {
    usage(() => cmd("add to 239.1.1.1 to 239.2.2.2 iif eth0 oif eth1"), /'to' given twice \('to 239\.1\.1\.1', then 'to 239\.2\.2\.2'\)/);
    usage(() => cmd("add group 239.1.1.1 to 239.2.2.2 iif eth0 oif eth1"), /'to' given twice \('group 239\.1\.1\.1'/);
    usage(() => cmd("add from 10.0.0.1 source 10.0.0.2 to 239.1.1.1 iif eth0 oif eth1"), /'source' given twice \('from 10\.0\.0\.1'/);
    usage(() => cmd("add to 239.1.1.1 iif eth0 iif eth1 oif eth2"), /'iif' given twice/);
    usage(() => cmd("add to 239.1.1.1 iif eth0 oif eth1 oif eth2"), /'oif' given twice/);
    usage(() => cmd("add to 239.1.1.1 iif eth0 oif eth1 ttl 2 ttl 3"), /'ttl' given twice for eth1/);
    usage(() => cmd("replace to 239.1.1.1 to 239.1.1.1 iif eth0 oif eth1"), /'to' given twice/);
    usage(() => cmd("del to 239.1.1.1 to 239.2.2.2"), /'to' given twice/);
    usage(() => cmd("del from 10.0.0.1 from 10.0.0.2 to 239.1.1.1"), /'from' given twice/);
    usage(() => cmd("check to 239.1.1.1 group 239.2.2.2"), /'group' given twice/);
    usage(() => cmd("vif add dev eth0 dev eth1"), /'dev' given twice/);
    usage(() => cmd("vif add dev eth0 threshold 2 threshold 3"), /'threshold' given twice/);
    // Different interfaces may each have their ttl.
    assert.deepEqual(cmd("add to 239.1.1.1 iif eth0 oif eth1 ttl 2 eth2 ttl 3").payload.oifs, [{ ifname: "eth1", ttl: 2 }, { ifname: "eth2", ttl: 3 }]);
  });
  void test("ttl and threshold are checked for 1-255 by the CLI, with the range in the message (issue 11 item 9)", () => {
    for (const bad of ["0", "256", "1000", "x", "-1", "1.5"]) {
      usage(() => cmd(`add to 239.1.1.1 iif eth0 oif eth1 ttl ${bad}`), new RegExp(`'ttl' must be a number 1-255, got '${bad.replace(".", "\\.")}'`));
      usage(() => cmd(`vif add dev eth0 threshold ${bad}`), /'threshold' must be a number 1-255/);
    }
    assert.deepEqual(cmd("add to 239.1.1.1 iif eth0 oif eth1 ttl 1 eth2 ttl 255").payload.oifs, [{ ifname: "eth1", ttl: 1 }, { ifname: "eth2", ttl: 255 }]);
    assert.equal(cmd("vif add dev eth0 threshold 255").payload.threshold, 255);
  });
  void test("`help` is an interface name where an interface is expected", () => {
    assert.deepEqual(cmd("add to 239.1.1.1 iif eth0 oif eth1 help").payload.oifs, ["eth1", "help"]);
    assert.equal(cmd("add to 239.1.1.1 iif help oif eth1").payload.iif, "help");
    assert.equal(cmd("vif add dev help").payload.ifname, "help");
  });
  void test("a command's usage error carries its synopsis", () => {
    const err = usage(() => cmd("del group 239.1.1.1 extra"), "extra");
    assert.equal(err.synopsis, "usage: mfc del [source|from S] group|to G");
  });
});

void describe("joins: join / leave (SPEC §7)", () => {
  void test("join with a source: the (S,G) join request", () => {
    assert.deepEqual(cmd("join dev eth0 group 232.1.1.1 source 10.0.0.1"), {
      action: "JOIN", payload: { ifname: "eth0", group: "232.1.1.1", source: "10.0.0.1" },
    });
  });
  void test("without a source (or source *): any-source, source null; keywords in any order", () => {
    assert.deepEqual(cmd("join dev eth0 group 239.1.1.1"), { action: "JOIN", payload: { ifname: "eth0", group: "239.1.1.1", source: null } });
    assert.deepEqual(cmd("join group 239.1.1.1 source * dev eth0"), cmd("join dev eth0 group 239.1.1.1"));
  });
  void test("leave takes the same words and builds LEAVE", () => {
    assert.deepEqual(cmd("leave source 10.0.0.1 group 232.1.1.1 dev eth1"), {
      action: "LEAVE", payload: { ifname: "eth1", group: "232.1.1.1", source: "10.0.0.1" },
    });
    assert.deepEqual(cmd("leave dev eth1 group 239.1.1.1").payload, { ifname: "eth1", group: "239.1.1.1", source: null });
  });
  void test("missing dev or group, a keyword twice, a route word: usage errors", () => {
    usage(() => cmd("join group 239.1.1.1"), /missing 'dev IF'/);
    usage(() => cmd("leave dev eth0"), /missing 'group G'/);
    usage(() => cmd("join dev eth0 dev eth1 group 239.1.1.1"), "dev");
    usage(() => cmd("join dev eth0 group 239.1.1.1 group 239.1.1.2"), "group");
    usage(() => cmd("join dev eth0 group 239.1.1.1 iif eth1"), "iif");
    usage(() => cmd("join dev eth0 to 239.1.1.1"), "to");
    usage(() => cmd("join dev eth0 group"), /'group' needs a value/);
  });
  void test("joins can be batched: one transaction with routes", () => {
    const b = parseBatchFile("join dev eth0 group 239.1.1.1\nadd group 239.1.1.1 iif eth0 oif eth1\nleave dev eth2 group 239.2.2.2 source 10.0.0.9\n");
    assert.deepEqual(b.operations.map((o) => o.action), ["JOIN", "ADD_MFC", "LEAVE"]);
    assert.deepEqual(b.operations[2]?.payload, { ifname: "eth2", group: "239.2.2.2", source: "10.0.0.9" });
  });
});

void describe("import smcroute FILE|-", () => {
  void test("a file or stdin; done by the CLI alone", () => {
    assert.deepEqual(cmd("import smcroute /etc/smcroute.conf"), { action: "IMPORT", payload: {}, file: { kind: "import", path: "/etc/smcroute.conf" } });
    assert.deepEqual(cmd("import smcroute -").file, { kind: "import", path: "-" });
    // FILE is a value: a file may be called help
    assert.equal(helpRequest(words("import smcroute help"), false), undefined);
    assert.deepEqual(cmd("import smcroute help").file, { kind: "import", path: "help" });
  });
  void test("no file, two files, an unknown format: usage errors", () => {
    usage(() => cmd("import smcroute"), /missing FILE/);
    usage(() => cmd("import smcroute a.conf b.conf"), "b.conf");
    usage(() => cmd("import pimd a.conf"), "pimd");
    usage(() => cmd("import"), /'import' needs a subcommand/);
    assert.equal(helpRequest(["import", "help"], false), helpText(["import"]));
  });
  void test("cannot be used in a batch", () => {
    usage(() => parseBatchFile("import smcroute a.conf\n"), /^line 1: 'import' cannot be used in a batch/);
  });
});

void describe("show / vif / flush / batch / apply / status", () => {
  void test("show [routes|vifs]", () => {
    assert.deepEqual(cmd("show"), { action: "SHOW", payload: { what: "all" } });
    assert.deepEqual(cmd("show routes"), { action: "SHOW", payload: { what: "routes" } });
    assert.deepEqual(cmd("show vifs"), { action: "SHOW", payload: { what: "vifs" } });
    usage(() => cmd("show mfcs"), "mfcs");
    usage(() => cmd("show routes vifs"), "vifs");
    usage(() => cmd("show routes extra"), "extra");
    assert.deepEqual(cmd("show joins"), { action: "SHOW", payload: { what: "joins" } });
    usage(() => cmd("show joins routes"), "routes");
  });
  void test("vif add dev IF [threshold N]", () => {
    assert.deepEqual(cmd("vif add dev eth0"), { action: "ADD_VIF", payload: { ifname: "eth0" } });
    assert.deepEqual(cmd("vif add dev eth0 threshold 4"), { action: "ADD_VIF", payload: { ifname: "eth0", threshold: 4 } });
    assert.deepEqual(cmd("vif add threshold 4 dev eth0"), { action: "ADD_VIF", payload: { ifname: "eth0", threshold: 4 } });
    usage(() => cmd("vif add"), "dev IF");
    usage(() => cmd("vif add dev"), "dev");
    usage(() => cmd("vif add dev eth0 threshold"), "threshold");
    usage(() => cmd("vif add dev eth0 threshold high"), "high");
    usage(() => cmd("vif add eth0"), "eth0");
  });
  void test("vif del dev IF (no threshold)", () => {
    assert.deepEqual(cmd("vif del dev eth0"), { action: "DEL_VIF", payload: { ifname: "eth0" } });
    usage(() => cmd("vif del dev eth0 threshold 2"), "threshold");
    usage(() => cmd("vif del"), "dev IF");
  });
  void test("vif show", () => {
    assert.deepEqual(cmd("vif show"), { action: "SHOW", payload: { what: "vifs" } });
    usage(() => cmd("vif show routes"), "routes");
  });
  void test("vif without or with an unknown subcommand", () => {
    usage(() => cmd("vif"), "vif");
    const err = usage(() => cmd("vif list"), "list");
    assert.ok(err.synopsis?.includes("mfc vif add dev IF"), "the vif group's help is attached");
    assert.ok(!err.synopsis?.includes("mfc flush"), "only the vif group's help");
  });
  void test("flush and status take no arguments", () => {
    assert.deepEqual(cmd("flush"), { action: "FLUSH", payload: {} });
    assert.deepEqual(cmd("status"), { action: "STATUS", payload: {} });
    usage(() => cmd("flush all"), "all");
    usage(() => cmd("status now"), "now");
  });
  void test("batch FILE|- and apply FILE|-", () => {
    assert.deepEqual(cmd("batch routes.txt"), { action: "BATCH", payload: {}, file: { kind: "batch", path: "routes.txt" } });
    assert.deepEqual(cmd("batch -"), { action: "BATCH", payload: {}, file: { kind: "batch", path: "-" } });
    assert.deepEqual(cmd("apply state.json"), { action: "APPLY", payload: {}, file: { kind: "apply", path: "state.json" } });
    assert.deepEqual(cmd("apply -"), { action: "APPLY", payload: {}, file: { kind: "apply", path: "-" } });
    usage(() => cmd("batch"), /missing FILE/);
    usage(() => cmd("apply a b"), "b");
  });
  void test("unknown or missing command", () => {
    const err = usage(() => cmd("frobnicate now"), "frobnicate");
    assert.ok(err.synopsis?.includes("usage: mfc"), "full help attached");
    usage(() => parseCommand([]), /missing command/);
    usage(() => cmd("ADD group 239.1.1.1 iif eth0 oif eth1"), "ADD");
  });
});

void describe("global options", () => {
  void test("defaults", () => {
    assert.deepEqual(parseGlobals(["show"]), { dryRun: false, verbose: false, output: "text", help: false, version: false, words: ["show"] });
  });
  void test("-j before the command equals -j after it, --output json, --output=json and -o json", () => {
    const forms = [["-j", "show"], ["show", "-j"], ["show", "--output", "json"], ["--output=json", "show"], ["-o", "json", "show"], ["show", "-o", "json"]];
    for (const argv of forms) {
      const g = parseGlobals(argv);
      assert.equal(g.output, "json", argv.join(" "));
      assert.deepEqual(g.words, ["show"], argv.join(" "));
    }
    assert.equal(parseGlobals(["-o", "text", "show"]).output, "text");
  });
  void test("flags anywhere among the command's words", () => {
    const g = parseGlobals(words("add -n group 239.1.1.1 iif eth0 -v oif eth1 eth2"));
    assert.equal(g.dryRun, true);
    assert.equal(g.verbose, true);
    assert.deepEqual(g.words, words("add group 239.1.1.1 iif eth0 oif eth1 eth2"));
    assert.equal(parseGlobals(["--dry-run", "flush"]).dryRun, true);
    assert.equal(parseGlobals(["flush", "--verbose"]).verbose, true);
  });
  void test("-s/--socket and -c/--config take a path", () => {
    const g = parseGlobals(["-s", "/run/x.sock", "status", "-c", "/etc/y.conf"]);
    assert.equal(g.socket, "/run/x.sock");
    assert.equal(g.config, "/etc/y.conf");
    assert.deepEqual(g.words, ["status"]);
    const l = parseGlobals(["--socket=/a.sock", "--config", "/b.conf", "show"]);
    assert.equal(l.socket, "/a.sock");
    assert.equal(l.config, "/b.conf");
  });
  void test("-h/--help and -V/--version", () => {
    assert.equal(parseGlobals(["-h"]).help, true);
    assert.equal(parseGlobals(["show", "--help"]).help, true);
    assert.equal(parseGlobals(["-V"]).version, true);
    assert.equal(parseGlobals(["--version"]).version, true);
  });
  void test("'-' is a word (stdin), not an option", () => {
    assert.deepEqual(parseGlobals(["batch", "-", "-n"]).words, ["batch", "-"]);
  });
  void test("usage errors name the option", () => {
    // parseGlobals records the first problem (so -j anywhere still gives JSON); run() raises it.
    const strict = (argv: string[]): ReturnType<typeof parseGlobals> => {
      const g = parseGlobals(argv);
      if (g.problem !== undefined) throw new UsageError(g.problem);
      return g;
    };
    usage(() => strict(["show", "--frob"]), "--frob");
    usage(() => strict(["-x", "show"]), "-x");
    usage(() => strict(["--dry-run=yes", "show"]), "--dry-run=yes");
    usage(() => strict(["show", "-o"]), "-o");
    usage(() => strict(["show", "--socket"]), "--socket");
    usage(() => strict(["-c"]), "-c");
    usage(() => strict(["-o", "xml", "show"]), "xml");
    usage(() => strict(["--output=yaml", "show"]), "yaml");
  });
});

void describe("parseBatchFile", () => {
  void test("comments, blank lines, CRLF and extra spaces; line numbers are kept", () => {
    const text = [
      "# routes for the lab",
      "",
      "vif add dev eth0 threshold 2",
      "   add source 10.0.0.1 group 239.1.1.1 iif eth0 oif eth1   # trailing comment",
      "\t",
      "del group 239.1.1.2\r",
      "flush",
      "",
    ].join("\n");
    const parsed = parseBatchFile(text);
    assert.deepEqual(parsed.lines, [3, 4, 6, 7]);
    assert.deepEqual(parsed.operations, [
      { action: "ADD_VIF", payload: { ifname: "eth0", threshold: 2 } },
      { action: "ADD_MFC", payload: { source: "10.0.0.1", group: "239.1.1.1", iif: "eth0", oifs: ["eth1"] } },
      { action: "DEL_MFC", payload: { source: null, group: "239.1.1.2" } },
      { action: "FLUSH", payload: {} },
    ]);
  });
  void test("an empty file is an empty batch", () => {
    assert.deepEqual(parseBatchFile("# nothing\n\n"), { operations: [], lines: [] });
  });
  void test("errors give the line number and the offending word", () => {
    usage(() => parseBatchFile("flush\n\n# x\nfrobnicate eth0\n"), /^line 4: .*'frobnicate'/);
    usage(() => parseBatchFile("flush\nadd group 239.1.1.1 iif eth0 oif eth1 bogus-kw ttl z\n"), /^line 2: .*'z'/);
    usage(() => parseBatchFile("add group 239.1.1.1 iif eth0\n"), /^line 1: missing 'oif/);
  });
  void test("read-only and file commands cannot be batched", () => {
    usage(() => parseBatchFile("flush\nshow\n"), /^line 2: 'show' cannot be used in a batch/);
    usage(() => parseBatchFile("status\n"), /^line 1: 'status'/);
    usage(() => parseBatchFile("vif show\n"), /^line 1: .*cannot be used in a batch/);
    usage(() => parseBatchFile("batch other.txt\n"), /^line 1: 'batch'/);
    usage(() => parseBatchFile("apply state.json\n"), /^line 1: 'apply'/);
  });
  void test("no command that maps to a read-only action is accepted in a batch", () => {
    // Sample arguments for each command, so every entry of the table is tried.
    const samples: Record<string, string> = {
      add: "group 239.1.1.1 iif eth0 oif eth1", replace: "group 239.1.1.1 iif eth0 oif eth1", del: "group 239.1.1.1",
      "vif add": "dev eth0", "vif del": "dev eth0", batch: "f", apply: "f", check: "group 239.1.1.1",
      join: "dev eth0 group 239.1.1.1", leave: "dev eth0 group 239.1.1.1", "import smcroute": "f",
    };
    for (const c of COMMANDS) {
      const line = `${c.words.join(" ")} ${samples[c.words.join(" ")] ?? ""}`.trim();
      const parsed = parseCommand(words(line));
      const readOnly = (READ_ACTIONS as readonly string[]).includes(parsed.action);
      if (readOnly || parsed.file) usage(() => parseBatchFile(`${line}\n`), /^line 1: .*cannot be used in a batch/);
      else assert.equal(parseBatchFile(`${line}\n`).operations[0]?.action, parsed.action, line);
    }
  });
});

void describe("helpText", () => {
  const help = helpText();
  // Long synopses and summaries are wrapped: compare with line breaks and runs of spaces as one space.
  const flat = help.replace(/\s+/g, " ");
  for (const c of COMMANDS) {
    void test(`lists '${c.words.join(" ")}' with its synopsis and summary`, () => {
      assert.ok(flat.includes(`mfc ${c.synopsis} `), `help lacks 'mfc ${c.synopsis}'`);
      assert.ok(flat.includes(c.summary), `help lacks '${c.summary}'`);
    });
  }
  void test("fits 80 columns; the summaries form one column apart from the synopses (issue 12 item 6)", () => {
    const lines = help.split("\n");
    for (const line of lines) assert.ok(line.length <= HELP_WIDTH, `${line.length} columns: ${line}`);
    const del = lines.find((l) => l.startsWith("  mfc del ")) ?? "";
    const column = del.indexOf("delete a route");
    assert.ok(column > 0, del);
    for (const c of COMMANDS) {
      // The entry: its first line to the next entry or the blank line.
      const start = lines.findIndex((l) => l.startsWith(`  mfc ${c.words.join(" ")} `) || l === `  mfc ${c.words.join(" ")}` || l.startsWith(`  mfc ${c.words.join(" ")}  `));
      assert.ok(start >= 0, `no entry for ${c.words.join(" ")}`);
      let end = start + 1;
      while (end < lines.length && lines[end] !== "" && !(lines[end] as string).startsWith("  mfc ")) end++;
      const entry = lines.slice(start, end);
      const blankLeft = (l: string): boolean => /^\s*$/.test(l.slice(0, column));
      const summary = entry.filter(blankLeft);
      const head = entry.filter((l) => !blankLeft(l));
      assert.deepEqual(entry, [...head, ...summary], "synopsis lines first, then the summary's");
      if (head.map((l) => l.trim()).join(" ") === `mfc ${c.synopsis}`) {
        // A long synopsis: lines of its own (wrapped), the summary below it, in the column.
        assert.equal(head.map((l) => l.trim()).join(" "), `mfc ${c.synopsis}`, c.synopsis);
        assert.equal(summary.map((l) => l.trim()).join(" "), c.summary);
      } else {
        // A short one: the summary on its line, two spaces or more after it.
        const first = head[0] as string;
        assert.equal(first.slice(0, column).trim(), `mfc ${c.synopsis}`);
        assert.equal(first.slice(column - 2, column), "  ", `runs into the summary: ${first}`);
        assert.equal([first.slice(column), ...summary.map((l) => l.trim())].join(" "), c.summary);
      }
      for (const l of summary) assert.match(l.slice(column), /^\S/, `summary lines start at column ${column}: ${l}`);
    }
  });
  void test("every SPEC §4 command is in the table", () => {
    const names = COMMANDS.map((c) => c.words.join(" "));
    for (const n of ["add", "replace", "del", "show", "vif add", "vif del", "vif show", "flush", "batch", "apply", "status", "join", "leave", "import smcroute"]) {
      assert.ok(names.includes(n), `COMMANDS lacks '${n}'`);
    }
  });
  void test("lists the global options", () => {
    for (const opt of ["--dry-run", "--verbose", "--output", "-j", "--socket", "--config", "--help", "--version"]) {
      assert.ok(help.includes(opt), `help lacks ${opt}`);
    }
  });
  void test("help is asked only by -h/--help, `mfc help ...` and `help` right after a command (issue 11 item 9)", () => {
    const add = helpText(["add"]);
    assert.equal(helpRequest(["help"], false), help);
    assert.equal(helpRequest([], true), help);
    assert.equal(helpRequest(["help", "add"], false), add);
    assert.equal(helpRequest(["add", "help"], false), add);
    assert.equal(helpRequest(words("add to 239.1.1.1 iif eth0 oif eth1"), true), add, "-h after a command's words: that command's help");
    assert.equal(helpRequest(["vif", "help"], false), helpText(["vif"]));
    assert.equal(helpRequest(["help", "vif"], false), helpText(["vif"]));
    assert.equal(helpRequest(["help", "vif", "add"], false), helpText(["vif", "add"]));
    assert.equal(helpRequest(["vif", "add", "help"], false), helpText(["vif", "add"]));
    // Where a value is expected, help is the value: an interface (or a file) may be called help.
    for (const line of ["add to 239.1.1.1 iif eth0 oif help", "add to 239.1.1.1 iif help oif eth1", "add to 239.1.1.1 iif eth0 oif eth1 help",
      "vif add dev help", "batch help", "apply help", "del to 239.1.1.1 help", "show routes help"]) {
      assert.equal(helpRequest(words(line), false), undefined, line);
    }
  });
  void test("help on something that is not a command is a usage error with the synopsis (issue 12 item 6)", () => {
    const frob = usage(() => helpRequest(["help", "frob"], false), "frob");
    assert.match(frob.message, /unknown command/);
    assert.equal(frob.synopsis, help);
    const sub = usage(() => helpRequest(["help", "vif", "frob"], false), "frob");
    assert.equal(sub.synopsis, helpText(["vif"]));
    usage(() => helpRequest(["help", "add", "extra"], false), "extra");
    usage(() => helpRequest(["frob"], true), "frob");
    assert.equal(helpRequest(["frob", "help"], false), undefined, "not a command: parseCommand says so");
    usage(() => parseCommand(["frob", "help"]), "frob");
  });
  void test("a prefix narrows the help to that group", () => {
    const vif = helpText(["vif"]);
    assert.ok(vif.includes("mfc vif add dev IF [threshold N]"));
    assert.ok(!vif.includes("mfc flush"));
  });
});

void describe("-j output (one rule: the daemon's response, except show's view)", () => {
  const samples: Record<string, string> = {
    add: "group 239.1.1.1 iif eth0 oif eth1", replace: "group 239.1.1.1 iif eth0 oif eth1", del: "group 239.1.1.1",
    "vif add": "dev eth0", "vif del": "dev eth0", batch: "f", apply: "f", check: "group 239.1.1.1",
    join: "dev eth0 group 239.1.1.1", leave: "dev eth0 group 239.1.1.1", "import smcroute": "f",
  };
  const ok: Response = { status: "ok", dry_run: false, changes: [{ action: "add_mfc" }], result: { vifs: [], routes: [] } };
  const error: Response = { status: "error", error_code: "E_MFC_EXISTS", message: "exists" };
  for (const c of COMMANDS) {
    const name = c.words.join(" ");
    void test(`mfc ${name} -j`, () => {
      const parsed = parseCommand(words(`${name} ${samples[name] ?? ""}`));
      const showsState = name === "show" || name === "vif show";
      assert.equal(jsonOutput(parsed, ok), showsState ? ok.result : ok, showsState ? "the view, the shape apply takes" : "the whole response");
      assert.equal(jsonOutput(parsed, error), error, "an error is always the error response");
    });
  }
});
