/**
 * systemd notify protocol on the real daemon (SPEC §6.7): READY=1 only once the state is restored
 * and the socket answers, STATUS= lines, WATCHDOG=1 pings when WATCHDOG_USEC is set, STOPPING=1
 * on SIGTERM. The test plays systemd: a Unix datagram socket at $NOTIFY_SOCKET.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK } from "../../src/kernel/abi.js";
import { sys } from "../../src/kernel/libc.js";
import { createLab } from "../lab/lab.js";
import { startDaemon } from "../lab/daemon.js";

/** A datagram listener at `path` (what systemd does), drained by polling a non-blocking socket. */
function listenNotify(path: string): { messages: string[]; close(): void } {
  const fd = sys.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert.ok(fd >= 0, "socket(AF_UNIX, SOCK_DGRAM)");
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(1, 0);
  addr.write(path, 2);
  assert.equal(sys.bind(fd, addr, 2 + Buffer.byteLength(path) + 1), 0, "bind");
  const messages: string[] = [];
  const buf = Buffer.alloc(4096);
  const timer = setInterval(() => {
    for (let n = sys.recv(fd, buf, buf.length, 0); n > 0; n = sys.recv(fd, buf, buf.length, 0)) messages.push(buf.toString("utf8", 0, n));
  }, 5);
  return { messages, close: () => { clearInterval(timer); sys.close(fd); } };
}

function pingAndShow(socket: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socket);
    c.once("connect", () => c.write('{"action":"SHOW","payload":{"what":"routes"}}\n'));
    c.once("data", (d) => { c.destroy(); resolve(d.toString()); });
    c.once("error", reject);
  });
}

const until = async (what: string, cond: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

void test("READY=1 after restore and listen, STATUS=, WATCHDOG=1 pings, STOPPING=1", async () => {
  const lab = await createLab();
  const dir = mkdtempSync(join(tmpdir(), "mfct-notify-"));
  const notify = listenNotify(join(dir, "notify.sock"));
  try {
    // A state file to restore: READY must not come before this route is installed.
    writeFileSync(join(dir, "state.json"), JSON.stringify({
      format: "mfc_daemon-state", version: 1, seq: 1, vifs: [],
      routes: [{ source: lab.addr.sender, group: "239.66.0.1", iif: "up0", oifs: [{ ifname: "dn1", ttl: 1 }] }],
    }));
    process.env.NOTIFY_SOCKET = join(dir, "notify.sock");
    process.env.WATCHDOG_USEC = "200000"; // pings every 100 ms
    let d;
    try {
      d = await startDaemon(lab, { dir });
    } finally {
      delete process.env.NOTIFY_SOCKET;
      delete process.env.WATCHDOG_USEC;
    }
    await until("READY=1", () => notify.messages.some((m) => m.split("\n").includes("READY=1")));
    const ready = notify.messages.find((m) => m.includes("READY=1")) ?? "";
    assert.match(ready, /^STATUS=1 route\(s\) installed, 0 pending, 2 VIF\(s\)$/m);
    const shown = await pingAndShow(d.socket);
    assert.match(shown, /"group":"239\.66\.0\.1".*"state":"installed"/);

    const pingsBefore = notify.messages.filter((m) => m === "WATCHDOG=1").length;
    await until("two more WATCHDOG=1", () => notify.messages.filter((m) => m === "WATCHDOG=1").length >= pingsBefore + 2, 3_000);

    assert.equal(await d.stop("SIGTERM"), 0);
    assert.ok(notify.messages.includes("STOPPING=1"), `no STOPPING=1 in ${JSON.stringify(notify.messages)}`);
    // Order: READY before any watchdog ping, STOPPING last of the state changes.
    const first = notify.messages.findIndex((m) => m.includes("READY=1"));
    assert.ok(notify.messages.findIndex((m) => m === "WATCHDOG=1") > first);
    await d.cleanup();
  } finally {
    notify.close();
    rmSync(dir, { recursive: true, force: true });
    await lab.destroy();
  }
});
