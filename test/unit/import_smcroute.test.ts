/**
 * src/import/smcroute.ts: smcroute.conf -> the `mfc apply` document, on configurations written for
 * these tests after smcroute's documented example and the configs of its test scripts
 * (test/fixtures/smcroute/), each checked field by field with the problems and their lines.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { applyOps } from "../../src/engine/operations.js";
import { MAX_EXPANSION, formatDocument, importSmcroute, type ApplyDocument, type ImportProblem, type ImportResult } from "../../src/import/smcroute.js";
import { checkGroup, checkSource } from "../../src/model/address.js";
import { emptyConfig } from "../../src/model/types.js";
import { parseOp } from "../../src/protocol/schema.js";
import { FakeLinks } from "../support/fake_kernel.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "smcroute");
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), "utf8");

/** The problems as [line, severity, a pattern of the message], in line order. */
function assertProblems(got: ImportProblem[], want: [number, "error" | "note", RegExp][]): void {
  assert.deepEqual(got.map((p) => `${p.line} ${p.severity}`), want.map(([l, s]) => `${l} ${s}`), JSON.stringify(got, null, 1));
  got.forEach((p, i) => assert.match(p.message, (want[i] as [number, string, RegExp])[2], `line ${p.line}`));
}

/** What the daemon checks of an APPLY (schema, then the operations on an empty table): it must pass. */
function assertApplicable(doc: ApplyDocument): void {
  const names = new Set([...doc.vifs.map((v) => v.ifname), ...doc.routes.flatMap((r) => [r.iif, ...r.oifs]), ...(doc.joins ?? []).map((j) => j.ifname)]);
  const op = parseOp("APPLY", { state: { vifs: doc.vifs, routes: doc.routes } });
  applyOps(emptyConfig(), [op], new FakeLinks([...names]));
  const joins = new Set<string>();
  for (const j of doc.joins ?? []) {
    checkGroup(j.group);
    if (j.source !== null) checkSource(j.source);
    const key = `${j.ifname} ${j.source ?? "*"} ${j.group}`;
    assert.ok(!joins.has(key), `join ${key} twice`);
    joins.add(key);
  }
}

const range = (prefix: string, from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

void describe("import smcroute: the fixtures, field by field", () => {
  void test("documented.conf (smcroute.conf(5)'s example): thresholds pinned, joins, (S,G), (*,G), a /24 expanded, include reported", () => {
    const { document, problems } = importSmcroute(fixture("documented.conf"));
    assert.deepEqual(document.vifs, [
      { ifname: "eth0", threshold: 11 }, { ifname: "eth1", threshold: 3 }, { ifname: "eth2", threshold: 5 }, { ifname: "virbr0", threshold: 5 },
    ]);
    assert.deepEqual(document.routes.slice(0, 3), [
      { source: "192.168.1.42", group: "225.1.2.3", iif: "eth0", oifs: ["eth1", "eth2"] },
      { source: "192.168.123.110", group: "225.1.2.4", iif: "virbr0", oifs: ["eth0"] },
      { source: null, group: "225.3.2.1", iif: "eth0", oifs: ["eth1", "eth2"] },
    ]);
    assert.deepEqual(document.routes.slice(3), range("225.0.0.", 0, 255).map((group) => ({ source: null, group, iif: "eth0", oifs: ["eth1", "eth2"] })));
    assert.deepEqual(document.joins, [
      { ifname: "eth0", group: "225.1.2.3", source: null },
      { ifname: "virbr0", group: "225.1.2.4", source: "192.168.123.110" },
      { ifname: "eth0", group: "225.3.2.1", source: null },
      ...range("225.0.0.", 0, 255).map((group) => ({ ifname: "eth0", group, source: null })),
    ]);
    assertProblems(problems, [
      [26, "note", /^group range 225\.0\.0\.0\/24 expanded into 256 exact joins$/],
      [27, "note", /^group range 225\.0\.0\.0\/24 expanded into 256 exact routes$/],
      [29, "error", /^include \/etc\/smcroute\.d\/\*\.conf: not followed; .*\| mfc import smcroute -$/],
    ]);
    assertApplicable(document);
  });

  void test("basic.conf (basic/reload tests): phyint enable alone pins nothing; a trailing comment is no interface", () => {
    const { document, problems } = importSmcroute(fixture("basic.conf"));
    assert.deepEqual(document, {
      vifs: [],
      routes: [
        { source: "10.0.0.1", group: "225.3.2.1", iif: "a1", oifs: ["a2", "b3"] },
        { source: null, group: "225.1.2.3", iif: "a1", oifs: ["a2"] },
        { source: null, group: "225.1.2.4", iif: "a1", oifs: ["a2"] },
      ],
      joins: [{ ifname: "a1", group: "225.3.2.1", source: "10.0.0.1" }, { ifname: "a1", group: "225.1.2.3", source: null }],
    });
    assert.deepEqual(problems, []);
    assertApplicable(document);
  });

  void test("ranges.conf (poison/joinlen tests): one range from two inputs, host bits, IPv6, a source range, too large", () => {
    const { document, problems } = importSmcroute(fixture("ranges.conf"));
    assert.deepEqual(document.vifs, []);
    assert.deepEqual(document.routes, [
      ...range("225.1.2.", 0, 255).map((group) => ({ source: null, group, iif: "a1", oifs: ["b3"] })),
      ...range("10.9.0.", 0, 3).map((source) => ({ source, group: "225.9.9.9", iif: "a2", oifs: ["b3"] })),
    ]);
    assert.deepEqual(document.joins, [
      ...range("225.1.2.", 40, 43).map((group) => ({ ifname: "a1", group, source: "10.0.0.10" })),
      { ifname: "a2", group: "225.3.2.250", source: null }, { ifname: "a2", group: "225.3.2.251", source: null },
      ...range("224.0.1.", 0, 255).map((group) => ({ ifname: "a1", group, source: null })),
    ]);
    assertProblems(problems, [
      [8, "note", /'225\.1\.2\.3\/24' is the range 225\.1\.2\.0\/24/],
      [8, "note", /expanded into 256 exact routes/],
      [9, "note", /is the range 225\.1\.2\.0\/24/],
      [9, "note", /expanded into 256 exact routes/],
      [9, "error", /^256 of its routes not imported: line 8 routes it from a1, .*one input interface per \(source, group\)/],
      [10, "error", /^group 'ff2e::42\/121' is an IPv6 range: mfc does not expand it; add a template by hand/],
      [12, "note", /^group range 225\.1\.2\.40\/30 expanded into 4 exact joins$/],
      [13, "note", /^group range 225\.3\.2\.250\/31 expanded into 2 exact joins$/],
      [15, "note", /^source range 10\.9\.0\.0\/30 expanded into 4 exact routes$/],
      [16, "error", /^16777216 routes: .*at most 1024 per line/],
      [17, "note", /^the 256 link-local groups of 224\.0\.0\.0\/23 .* left out$/],
      [17, "note", /expanded into 256 exact joins/],
    ]);
    assertApplicable(document);
  });

  void test("unsupported.conf: every line mfc cannot express is reported with its number and why", () => {
    const { document, problems } = importSmcroute(fixture("unsupported.conf"));
    assert.deepEqual(document, {
      vifs: [],
      routes: [
        { source: "fc00::1", group: "ff04::114", iif: "eth0", oifs: ["eth1"] }, // line 8: IPv6, an exact (S,G)
        { source: null, group: "225.1.1.3", iif: "eth0", oifs: ["eth1"] }, // line 10: without the iif among the oifs
        { source: null, group: "225.1.1.7", iif: "eth0", oifs: ["eth1"] }, // line 14: source 0.0.0.0 is any source
        { source: null, group: "225.1.1.10", iif: "eth0", oifs: ["eth1", "eth2"] }, // line 19: keywords by prefix, as smcrouted
      ],
      joins: [{ ifname: "eth0", group: "232.1.1.1", source: "10.1.1.1" }], // line 18: ssmgroup is mgroup
    });
    assertProblems(problems, [
      [2, "error", /^mrdisc: mfc sends no multicast router discovery/],
      [3, "error", /^phyint 'eth\+' is an interface wildcard.*ttl-threshold 4 is not imported/],
      [4, "error", /^ttl-threshold '300' is not 1-255/],
      [5, "error", /^phyint without an interface/],
      [6, "error", /^from 'eth\+' is an interface wildcard/],
      [7, "error", /^to 'wlan\+' is an interface wildcard/],
      [9, "error", /^group '224\.0\.0\.251' is link-local \(224\.0\.0\.0\/24\)/],
      [10, "error", /^eth0 is the input and an output interface: .*imported without output eth0$/],
      [11, "error", /^the only output interface is the input interface eth0/],
      [12, "error", /^mroute without output interfaces/],
      [13, "error", /^source '127\.0\.0\.1' is not a unicast host address/],
      [15, "error", /^mroute without an interface \('from IF'\)/],
      [16, "error", /^unknown command 'route'/],
      [17, "error", /^include /],
      [19, "note", /^unknown word 'via' ignored/],
      [20, "error", /^group '10\.1\.1\.1' is not a multicast address$/],
    ]);
    assertApplicable(document);
  });

  void test("overlaps.conf: the flow forwards as smcrouted would (merge, first rule, exact wins, last exact wins)", () => {
    const { document, problems } = importSmcroute(fixture("overlaps.conf"));
    assert.deepEqual(document, {
      vifs: [{ ifname: "eth1", threshold: 8 }],
      routes: [
        { source: "10.0.0.1", group: "225.1.1.1", iif: "eth0", oifs: ["eth1", "eth2"] },
        ...range("225.2.2.", 0, 3).map((group) => ({ source: null, group, iif: "eth0", oifs: ["eth1"] })),
        { source: "10.0.0.2", group: "225.3.3.3", iif: "eth3", oifs: ["eth2"] },
        { source: "10.0.0.4", group: "225.4.4.4", iif: "eth0", oifs: ["eth1"] },
        { source: "10.0.0.5", group: "225.4.4.4", iif: "eth0", oifs: ["eth2"] },
      ],
      joins: [{ ifname: "eth0", group: "225.1.1.1", source: null }],
    });
    assertProblems(problems, [
      [3, "note", /^same rule as line 2: the output interfaces are added together/],
      [4, "note", /expanded into 4 exact routes/],
      [5, "note", /^\(\*, 225\.2\.2\.1\): line 4 matches first/],
      [7, "note", /^replaces line 6's \(10\.0\.0\.2, 225\.3\.3\.3\) from eth0/],
      [8, "note", /^source range 10\.0\.0\.4\/31 expanded into 2 exact routes$/],
      [8, "note", /^\(10\.0\.0\.5, 225\.4\.4\.4\): line 9 routes that flow exactly/],
      [10, "note", /^ttl-threshold 8 comes after line 2 sends out of eth1/],
      [12, "note", /^1 of its joins is already made by an earlier line$/],
    ]);
    assertApplicable(document);
  });
});

void describe("import smcroute: rules", () => {
  void test("IPv6: exact (S,G), (*,G) with :: as any source, joins and canonical text; ranges, mixed families and link-local scope reported", () => {
    const { document, problems } = importSmcroute([
      "mroute from eth0 source 2001:DB8::0:1 group FF3E::1 to eth1 eth2",
      "mroute from eth0 source :: group ff3e::2 to eth1",
      "mroute from eth0 group ff3e::3/128 to eth2",
      "mgroup from eth0 group ff3e::4",
      "ssmgroup from eth0 source 2001:db8::9 group ff3e::5",
      "mroute from eth0 group ff3e::/96 to eth1",
      "mroute from eth0 source 10.0.0.1 group ff3e::6 to eth1",
      "mroute from eth0 group ff02::7 to eth1",
      "mroute from eth0 source fe80::1 group ff3e::8 to eth1",
    ].join("\n"));
    assert.deepEqual(document.routes, [
      { source: "2001:db8::1", group: "ff3e::1", iif: "eth0", oifs: ["eth1", "eth2"] },
      { source: null, group: "ff3e::2", iif: "eth0", oifs: ["eth1"] },
      { source: null, group: "ff3e::3", iif: "eth0", oifs: ["eth2"] },
    ]);
    assert.deepEqual(document.joins, [{ ifname: "eth0", group: "ff3e::4", source: null }, { ifname: "eth0", group: "ff3e::5", source: "2001:db8::9" }]);
    assertProblems(problems, [
      [6, "error", /^group 'ff3e::\/96' is an IPv6 range: mfc does not expand it; add a template by hand \(mfc add group ff3e::\/96 /],
      [7, "error", /^source '10\.0\.0\.1' is IPv4 and the other address of the line IPv6/],
      [8, "error", /^group 'ff02::7' has scope 2 .* never forwarded/],
      [9, "error", /^source 'fe80::1' is link-local/],
    ]);
    assertApplicable(document);
  });

  const run = (text: string): ImportResult => importSmcroute(text);
  void test("a routes-only file has no joins key (a daemon without joins takes it); an empty file is an empty table", () => {
    assert.deepEqual(run(""), { document: { vifs: [], routes: [] }, problems: [] });
    assert.deepEqual(run("# nothing\n\n   \t\n").document, { vifs: [], routes: [] });
    assert.ok(!("joins" in run("mroute from a group 239.1.1.1 to b\n").document));
  });
  void test("phyint: threshold > 1 pins a VIF; enable alone, threshold 1, disable: nothing; the last line for an interface counts", () => {
    assert.deepEqual(run("phyint a ttl-threshold 2\nphyint b enable ttl-threshold 1\nphyint c disable ttl-threshold 9\nphyint d\n").document.vifs, [{ ifname: "a", threshold: 2 }]);
    const again = run("phyint a enable ttl-threshold 5\nphyint a disable\n");
    assert.deepEqual(again.document.vifs, []);
    assertProblems(again.problems, [[2, "note", /^phyint a again \(line 1\): this line counts$/]]);
  });
  void test(`ranges: up to ${MAX_EXPANSION} entries per line are listed, one more is refused`, () => {
    assert.equal(run("mroute from a group 239.4.0.0/22 to b\n").document.routes.length, 1024);
    const big = run("mroute from a group 239.4.0.0/21 to b\n");
    assert.deepEqual(big.document.routes, []);
    assertProblems(big.problems, [[1, "error", /^2048 routes: .*at most 1024 per line/]]);
    const product = run("mroute from a source 10.0.0.0/26 group 239.4.0.0/27 to b\n");
    assertProblems(product.problems, [[1, "error", /^2048 routes/]]);
  });
  void test("LEN 0 is a single address (smcrouted reads it so); a bad length is refused", () => {
    const zero = run("mroute from a source 10.0.0.1/0 group 239.1.1.1/0 to b\n");
    assert.deepEqual(zero.document.routes, [{ source: "10.0.0.1", group: "239.1.1.1", iif: "a", oifs: ["b"] }]);
    assertProblems(zero.problems, [[1, "note", /'239\.1\.1\.1\/0' is the single address/], [1, "note", /'10\.0\.0\.1\/0' is the single address/]]);
    assertProblems(run("mroute from a group 239.1.1.1/33 to b\n").problems, [[1, "error", /prefix length must be 0-32/]]);
    assertProblems(run("mroute from a group 239.1.1.1/x to b\n").problems, [[1, "error", /prefix length must be 0-32/]]);
    assertProblems(run("mroute from a group 192.0.0.0/2 to b\n").problems, [[1, "error", /not a multicast range/]]);
  });
  void test("words: any order, repeated keyword -> the last (noted), '#' only at a word's start, CRLF line ends", () => {
    const r = run("mroute group 239.1.1.1 from a from c to b#x d # e f\r\n");
    assert.deepEqual(r.document.routes, [{ source: null, group: "239.1.1.1", iif: "c", oifs: ["b#x", "d"] }]);
    assertProblems(r.problems, [[1, "note", /^'from' given twice/]]);
  });
  void test("interface names mfc refuses are reported, not passed on", () => {
    assertProblems(run("mroute from averyveryverylongname group 239.1.1.1 to b\n").problems, [[1, "error", /longer than 15 bytes/]]);
    assertProblems(run("mroute from a group 239.1.1.1 to b c:1\n").problems, [[1, "error", /^to 'c:1' contains/]]);
  });
  void test("formatDocument: JSON that parses back to the document, one entry per line", () => {
    for (const name of ["documented.conf", "basic.conf", "overlaps.conf"]) {
      const { document } = importSmcroute(fixture(name));
      const text = formatDocument(document);
      assert.deepEqual(JSON.parse(text), document, name);
      const entries = text.split("\n").filter((l) => l.startsWith("    {"));
      assert.equal(entries.length, document.vifs.length + document.routes.length + (document.joins?.length ?? 0), name);
    }
    assert.equal(formatDocument({ vifs: [], routes: [] }), '{\n  "vifs": [],\n  "routes": []\n}\n');
  });
});
