/**
 * openLinkMonitor against the real kernel, inside a throwaway network namespace (needs root and
 * iproute2). The monitor runs in a child started with `ip netns exec`, which reports JSON lines.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { LinkEvent } from "../../src/kernel/link_monitor.js";

const NS = `mfct-lm-${process.pid}`;
const CHILD = fileURLToPath(new URL("./fixtures/link_monitor_child.ts", import.meta.url));

type Msg = { event?: LinkEvent; overrun?: true; ready?: true; stalling?: true; stalled?: true };

const ip = (...args: string[]): string => execFileSync("ip", args, { encoding: "utf8", stdio: "pipe" });
const ipn = (...args: string[]): string => ip("-n", NS, ...args);
/** Link type for throwaway links: "dummy" where the kernel has it (some minimal kernels lack
 *  CONFIG_DUMMY, so fall back to ifb, then bridge). Chosen in before(). */
let kind = "dummy";

void describe("openLinkMonitor (real rtnetlink in a netns)", () => {
  let child: ChildProcessWithoutNullStreams | undefined;
  let stderr = "";
  const msgs: Msg[] = [];
  const waiters = new Set<() => void>();

  /** Resolves with the first message (seen or future) matching pred; rejects after ms. */
  function waitFor(pred: (m: Msg) => boolean, what: string, ms = 5000): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = msgs.find(pred);
        if (m === undefined) return false;
        clearTimeout(timer);
        waiters.delete(wake);
        resolve(m);
        return true;
      };
      const wake = (): void => void check();
      const timer = setTimeout(() => {
        waiters.delete(wake);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(msgs)}; stderr: ${stderr}`));
      }, ms);
      if (!check()) waiters.add(wake);
    });
  }

  const event = (pred: (e: LinkEvent) => boolean) => (m: Msg): boolean => m.event !== undefined && pred(m.event);

  before(async () => {
    ip("netns", "add", NS);
    for (const k of ["dummy", "ifb", "bridge"]) {
      try {
        ipn("link", "add", "mfclmprobe", "type", k);
      } catch {
        continue;
      }
      ipn("link", "del", "mfclmprobe");
      kind = k;
      break;
    }
    const c = spawn("ip", ["netns", "exec", NS, process.execPath, "--import", "tsx", CHILD]);
    child = c;
    c.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    let partial = "";
    c.stdout.setEncoding("utf8").on("data", (d: string) => {
      const lines = (partial + d).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) if (line !== "") msgs.push(JSON.parse(line) as Msg);
      for (const w of [...waiters]) w();
    });
    await waitFor((m) => m.ready === true, "ready", 15000);
  });

  after(() => {
    try {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    } finally {
      ip("netns", "del", NS); // also destroys every link created below
    }
  });

  void test("reports new, a change (up) and del of a link, by name", async () => {
    ipn("link", "add", "mfclm0", "type", kind);
    await waitFor(event((e) => e.kind === "new" && e.ifname === "mfclm0"), "new mfclm0");
    const before = msgs.length;

    ipn("link", "set", "mfclm0", "up");
    await waitFor((m) => msgs.indexOf(m) >= before && m.event?.kind === "new" && m.event.ifname === "mfclm0", "new mfclm0 (up)");

    ipn("link", "del", "mfclm0");
    await waitFor(event((e) => e.kind === "del" && e.ifname === "mfclm0"), "del mfclm0");
  });

  void test("ignores the AF_BRIDGE RTM_DELLINK sent when a port leaves a bridge", async () => {
    ipn("link", "add", "mfclmbr", "type", "bridge");
    ipn("link", "add", "mfclmv0", "type", "veth", "peer", "name", "mfclmv1");
    await waitFor(event((e) => e.kind === "new" && e.ifname === "mfclmv0"), "new mfclmv0");
    ipn("link", "set", "mfclmv0", "master", "mfclmbr");
    ipn("link", "set", "mfclmv0", "nomaster"); // br_ifinfo_notify(RTM_DELLINK) with AF_BRIDGE
    // A later link's event proves the earlier messages have all been read.
    ipn("link", "add", "mfclm2", "type", kind);
    await waitFor(event((e) => e.kind === "new" && e.ifname === "mfclm2"), "new mfclm2");
    assert.ok(!msgs.some((m) => m.event?.kind === "del" && m.event.ifname === "mfclmv0"), JSON.stringify(msgs));
  });

  void test("reports an overrun (ENOBUFS) and keeps delivering events afterwards", async () => {
    // Long enough that the batch below completes inside the stall even on a loaded machine.
    child?.stdin.write("stall 4000\n");
    await waitFor((m) => m.stalling === true, "stalling");
    // Far more RTM_NEWLINK messages than the default receive buffer (rmem_default) can hold.
    const batch = Array.from({ length: 400 }, (_, i) => `link add mfcov${i} type ${kind}\n`).join("");
    execFileSync("ip", ["-n", NS, "-batch", "-"], { input: batch });
    await waitFor((m) => m.overrun === true, "overrun", 12_000);
    // libuv stops the watcher on the overrun's POLLERR; the monitor must have re-armed it.
    ipn("link", "add", "mfclm1", "type", kind);
    await waitFor(event((e) => e.kind === "new" && e.ifname === "mfclm1"), "new mfclm1 after overrun");
  });

  void test("idles without burning CPU, and exits cleanly after close()", async () => {
    const c = child;
    assert.ok(c?.pid !== undefined);
    // `ip netns exec` execs node in place, so c.pid is the node process. utime+stime in ticks.
    const cpuTicks = (): number => {
      const fields = readFileSync(`/proc/${c.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      return Number(fields[11]) + Number(fields[12]);
    };
    // A busy loop (the poll callback re-arming at once) spends the whole window: ~200 ticks in 2 s
    // at USER_HZ 100. An idle child spends a few, and in an emulated VM (scripts/test_vm.sh) up to
    // ~20 a second on V8's own background work; a quarter of the window tells the two apart.
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = cpuTicks();
    await new Promise((r) => setTimeout(r, 2000));
    const used = cpuTicks() - t0;
    assert.ok(used <= 50, `child used ${used} ticks of CPU in 2 s while idle (busy loop?)`);

    const exited = new Promise<number | null>((resolve) => c.once("exit", (code) => resolve(code)));
    c.stdin.end("close\n");
    const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 5000))]);
    assert.equal(code, 0, `child did not exit by itself after close(); stderr: ${stderr}`);
  });
});
