/** src/daemon/log.ts: `<N>` priority prefixes only when stderr is the journal stream (JOURNAL_STREAM). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stderrIsJournal } from "../../src/daemon/log.js";

void test("stderrIsJournal: true only when JOURNAL_STREAM names this fd's device and inode", () => {
  const dir = mkdtempSync(join(tmpdir(), "mfc-log-"));
  const fd = openSync(join(dir, "stream"), "w");
  const other = openSync(join(dir, "other"), "w");
  try {
    const st = fstatSync(fd, { bigint: true });
    const o = fstatSync(other, { bigint: true });
    assert.equal(stderrIsJournal(`${st.dev}:${st.ino}`, fd), true);
    assert.equal(stderrIsJournal(`${o.dev}:${o.ino}`, fd), false, "another file's inode (a shell started from the unit)");
    assert.equal(stderrIsJournal(undefined, fd), false, "not set");
    assert.equal(stderrIsJournal("", fd), false);
    assert.equal(stderrIsJournal("garbage", fd), false);
    assert.equal(stderrIsJournal(`${st.dev}:${st.ino}:1`, fd), false);
  } finally {
    closeSync(fd);
    closeSync(other);
    rmSync(dir, { recursive: true });
  }
});

const CODE = `import("./src/daemon/log.ts").then((m) => m.log(m.LOG.notice, "hello"))`;
const ROOT = join(import.meta.dirname, "../..");

void test("log: plain lines on a pipe even when JOURNAL_STREAM is inherited", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", CODE], {
    cwd: ROOT, encoding: "utf8", env: { ...process.env, JOURNAL_STREAM: "8:12345" },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "hello\n");
});

void test("log: `<N>message` when stderr is the stream JOURNAL_STREAM names", () => {
  const dir = mkdtempSync(join(tmpdir(), "mfc-log-"));
  const path = join(dir, "journal");
  const fd = openSync(path, "w");
  try {
    const st = fstatSync(fd, { bigint: true });
    const r = spawnSync(process.execPath, ["--import", "tsx", "-e", CODE], {
      cwd: ROOT, stdio: ["ignore", "ignore", fd], env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` },
    });
    assert.equal(r.status, 0);
    assert.equal(readFileSync(path, "utf8"), "<5>hello\n");
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true });
  }
});

/** Runs `code` (with `m` the log module) in a child; returns its stderr and the number of write calls. */
function child(code: string): { stderr: string; writes: number } {
  const wrapped = `let writes = 0; const w = process.stderr.write.bind(process.stderr);
    process.stderr.write = (...a) => { writes++; return w(...a); };
    import("./src/daemon/log.ts").then((m) => {
      process.on("exit", () => w("\\n#writes " + writes + "\\n")); // after log.ts's own exit handler
      ${code}
    });`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", wrapped], { cwd: ROOT, encoding: "utf8", env: { ...process.env, JOURNAL_STREAM: "" } });
  assert.equal(r.status, 0, r.stderr);
  const m = /\n#writes (\d+)\n$/.exec(r.stderr);
  assert.ok(m, r.stderr);
  return { stderr: r.stderr.slice(0, m.index), writes: Number(m[1]) };
}

void test("logInTurn: the lines of one turn go out in one write, after the turn; the next turn's in another", () => {
  const r = child(`for (let i = 0; i < 20; i++) m.logInTurn(m.LOG.notice, "audit " + i);
    setImmediate(() => { m.logInTurn(m.LOG.notice, "next turn"); });`);
  assert.equal(r.stderr, Array.from({ length: 20 }, (_, i) => `audit ${i}\n`).join("") + "next turn\n");
  assert.equal(r.writes, 2);
});

void test("logInTurn: a log() line never overtakes lines held before it, and process.exit() does not lose them", () => {
  const r = child(`m.logInTurn(m.LOG.notice, "a"); m.logInTurn(m.LOG.notice, "b"); m.log(m.LOG.err, "c"); m.logInTurn(m.LOG.notice, "d"); process.exit(0);`);
  assert.equal(r.stderr, "a\nb\nc\nd\n");
});

void test("afterLogged: an answer resolves only once the lines held before it are written, ahead of the turn's end", () => {
  // Without the flush in afterLogged the held line would wait for the nextTick, after the answer.
  const r = child(`m.logInTurn(m.LOG.notice, "audit 1");
    m.afterLogged(Promise.resolve("answer")).then((a) => { process.stderr.write(a + " after " + writes + " write(s)\\n"); });`);
  assert.equal(r.stderr, "audit 1\nanswer after 1 write(s)\n");
});
