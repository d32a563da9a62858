/**
 * `mfc apply` end to end: --dry-run shows the diff (added, replaced, removed, unchanged) and changes
 * nothing; the real apply touches only what differs, so an unchanged route keeps its kernel entry
 * and counters (its flow keeps forwarding).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { createLab } from "../lab/lab.js";
import { DAEMON_JS, kernelTables, runCli, startDaemon } from "../lab/daemon.js";

const lab = await createLab();
after(() => lab.destroy());
const d = await startDaemon(lab);
after(() => d.cleanup());

interface Shown { routes: { source: string | null; group: string; oifs: { ifname: string }[]; packets: number }[] }

void test("apply: dry-run diff, then a minimal change that leaves unchanged flows alone", async () => {
  const S = lab.addr.sender;
  const batch = [
    `add from ${S} to 239.88.0.1 iif up0 oif dn1`, // stays
    `add from ${S} to 239.88.0.2 iif up0 oif dn1`, // replaced
    `add from ${S} to 239.88.0.3 iif up0 oif dn2`, // removed
  ].join("\n");
  assert.equal((await d.mfc(["batch", "-"], { input: batch })).code, 0);
  const rx = await lab.listen("recv1", "239.88.0.1", 5401);
  await lab.send("239.88.0.1", 5401, 4);
  assert.ok(await rx.waitFor(4, 3000));

  const shown = JSON.parse((await d.mfc(["show", "-j"])).stdout) as Shown & { vifs: unknown[] };
  const desired = {
    vifs: shown.vifs,
    routes: [
      shown.routes.find((r) => r.group === "239.88.0.1"), // unchanged, with its show-only fields
      { source: S, group: "239.88.0.2", iif: "up0", oifs: ["dn1", "dn2"] },
      { source: null, group: "239.88.0.4", iif: "up0", oifs: ["dn2"] },
    ],
  };
  // Pretty-printed over many lines, as an operator's file is: the CLI must still send one line.
  const input = JSON.stringify(desired, null, 2);
  const tablesBefore = await kernelTables(lab);
  const stateBefore = readFileSync(d.stateFile, "utf8");

  const dry = await d.mfc(["-n", "apply", "-"], { input });
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^dry run: would apply: 1 added, 1 replaced, 1 removed, 1 unchanged$/m);
  const dryJ = JSON.parse((await d.mfc(["-n", "-j", "apply", "-"], { input })).stdout) as { result: { routes: Record<string, number> } };
  assert.deepEqual(dryJ.result.routes, { added: 1, replaced: 1, removed: 1, unchanged: 1 });
  assert.deepEqual(await kernelTables(lab), tablesBefore, "dry run changed the kernel");
  assert.equal(readFileSync(d.stateFile, "utf8"), stateBefore, "dry run changed the state file");

  const real = await d.mfc(["-j", "apply", "-"], { input });
  assert.equal(real.code, 0, real.stderr);
  const changes = (JSON.parse(real.stdout) as { changes: { group?: string }[] }).changes;
  assert.ok(!changes.some((c) => c.group === "239.88.0.1"), "the unchanged route was touched");

  const after = JSON.parse((await d.mfc(["show", "-j"])).stdout) as Shown;
  assert.deepEqual(after.routes.map((r) => r.group), ["239.88.0.1", "239.88.0.2", "239.88.0.4"]);
  // Same kernel entry: its counter kept the 4 packets (a re-add would have reset it).
  assert.equal(after.routes[0]?.packets, 4);
  await lab.send("239.88.0.1", 5401, 2);
  assert.ok(await rx.waitFor(6, 3000), "the unchanged flow must keep forwarding");
  // `show stats` totals the same kernel counters.
  const stats = JSON.parse((await d.mfc(["show", "stats", "-j"])).stdout) as { routes: number; installed: number; packets: number; busiest: { group: string }[] };
  assert.deepEqual([stats.routes, stats.installed, stats.packets], [3, 3, 6]);
  assert.equal(stats.busiest[0]?.group, "239.88.0.1");
});

void test("apply: a file that is not JSON is a usage error naming JSON.parse's reason; nothing reaches the daemon", async () => {
  const stateBefore = readFileSync(d.stateFile, "utf8");
  for (const [input, why] of [
    ['{"routes": [{"group": "239.88.9.1", "iif": "up0", "oifs": ["dn1"],}]}', /Unexpected token|Expected double-quoted property name/],
    ['{"routes": [{"group": "239.88.9.1\n", "iif": "up0"}]}', /Bad control character|Unexpected token/],
    ['{"routes": []}\n{"routes": []}', /Unexpected non-whitespace character|Unexpected token/],
  ] as const) {
    const r = await d.mfc(["apply", "-"], { input });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^mfc: E_USAGE: -: not valid JSON \(/);
    assert.match(r.stderr, why);
  }
  // Latin-1 in a name: the daemon would refuse the line as not UTF-8, naming no file.
  const latin1 = Buffer.from('{"vifs": [], "routes": [{"group": "239.88.9.1", "iif": "eth\xe90", "oifs": ["dn1"]}]}', "latin1");
  const file = join(d.dir, "latin1.json");
  writeFileSync(file, latin1);
  const bad = await d.mfc(["apply", file]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^mfc: E_USAGE: .*latin1\.json: not valid JSON \(the file is not UTF-8 text\)/);
  assert.equal(readFileSync(d.stateFile, "utf8"), stateBefore, "nothing was applied");
  // Line breaks between tokens (CRLF too) are whitespace: one line reaches the daemon.
  const ok = await d.mfc(["-n", "apply", "-"], { input: '{\r\n "vifs": [],\r\n "routes": [\r\n]\r\n}\r\n' });
  assert.equal(ok.code, 0, ok.stderr);
});

void test("apply of a large file, checked as it is sent: not JSON near its end, a usage error and no request; JSON, one line with its line breaks", async () => {
  // Past 1 MiB the CLI sends the part it has checked while it checks the rest (main.ts buildApply):
  // the newline that makes the bytes a request must follow only once all of them are JSON.
  const S = lab.addr.sender;
  const routes = Array.from({ length: 12_000 }, (_, i) => ({ source: S, group: `239.89.${i >> 8}.${i & 255}`, iif: "up0", oifs: ["dn1"] }));
  const text = JSON.stringify({ vifs: [], routes }, null, 2) + "\r\n";
  assert.ok(text.length > 1.5 * 1024 * 1024, `${text.length} bytes: three steps of the check at least`);
  const stateBefore = readFileSync(d.stateFile, "utf8");
  const logBefore = d.logs().length;
  // A line break inside the last group: the one thing wrong, megabytes after the first bytes sent.
  const cut = text.lastIndexOf("239.89.");
  const broken = join(d.dir, "large-broken.json");
  writeFileSync(broken, text.slice(0, cut) + "\n" + text.slice(cut));
  const bad = await d.mfc(["apply", broken]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^mfc: E_USAGE: .*large-broken\.json: not valid JSON \(Bad control character in string literal/);
  assert.equal(readFileSync(d.stateFile, "utf8"), stateBefore, "nothing was applied");
  assert.doesNotMatch(d.logs().slice(logBefore), /APPLY/, "the daemon saw no request");
  // No daemon to send to: the file's problem is still found (a usage error), and a good file's
  // answer is that the daemon is unreachable.
  const nowhere = join(d.dir, "no-daemon.sock");
  const unreachableBad = await runCli(["-s", nowhere, "apply", broken]);
  assert.equal(unreachableBad.code, 2, unreachableBad.stderr);
  assert.match(unreachableBad.stderr, /^mfc: E_USAGE: .*not valid JSON/);
  // A daemon that answers before the file is all sent (E_TOO_LARGE once the partial line passes its
  // limit): the file's problem is still the usage error it was when the file was checked first.
  const small = await startDaemon(lab, { extraConfig: "table = 101\nmax_request_bytes = 65536" });
  try {
    const early = await small.mfc(["apply", broken]);
    assert.equal(early.code, 2, early.stderr);
    assert.match(early.stderr, /^mfc: E_USAGE: .*large-broken\.json: not valid JSON \(Bad control character in string literal/);
    // The same file whole: the daemon's own answer, so the one above did come early.
    const whole = join(d.dir, "large-limit.json");
    writeFileSync(whole, text);
    const tooLarge = await small.mfc(["apply", whole]);
    assert.equal(tooLarge.code, 1, tooLarge.stderr);
    assert.match(tooLarge.stderr, /^mfc: E_TOO_LARGE: /);
    const unreachableGood = await runCli(["-s", nowhere, "apply", whole]);
    assert.equal(unreachableGood.code, 3, unreachableGood.stderr);
  } finally {
    await small.cleanup();
  }
  const good = join(d.dir, "large.json");
  writeFileSync(good, text);
  const dry = await d.mfc(["-n", "apply", good]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /would apply: 12000 added/);
  // Compact, as JSON.stringify writes it: the daemon reads the routes from the line's bytes, and
  // the snapshot writes those bytes as they came (engine.ts wholeRoutesText). Read back as the
  // daemon reads it at start, the state must hold exactly these routes, in this order.
  const stored = routes.map((r) => ({ ...r, oifs: r.oifs.map((ifname) => ({ ifname, ttl: 1 })) }));
  const compact = join(d.dir, "large-compact.json");
  writeFileSync(compact, JSON.stringify({ vifs: [], routes: stored }));
  const real = await d.mfc(["apply", compact]);
  assert.equal(real.code, 0, real.stderr);
  const dump = spawnSync(process.execPath, [DAEMON_JS, "--config", d.configPath, "--dump-state"], { encoding: "utf8", timeout: 20_000, maxBuffer: 64 << 20 });
  assert.equal(dump.status, 0, dump.stderr);
  assert.deepEqual((JSON.parse(dump.stdout) as { routes: unknown[] }).routes, stored);
  // Written as a snapshot (not a journal record): the bytes that came, between the VIFs and the joins.
  assert.ok(readFileSync(d.stateFile, "utf8").includes(`"vifs":[],"routes":${JSON.stringify(stored)},"joins":[]}`), "the snapshot holds the routes as sent");
});
