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
import { createLab } from "../lab/lab.js";
import { startDaemon } from "../lab/daemon.js";
import { listenNotify } from "../lab/notify.js";
import { until } from "../lab/wait.js";

function pingAndShow(socket: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socket);
    c.once("connect", () => c.write('{"action":"SHOW","payload":{"what":"routes"}}\n'));
    // The answer is one line, written in pieces (SHOW streams): read up to its newline.
    let buf = "";
    c.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\n")) {
        c.destroy();
        resolve(buf);
      }
    });
    c.once("error", reject);
  });
}

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
    await until("READY=1", () => notify.messages.some((m) => m.split("\n").includes("READY=1")), 10_000, 5);
    const ready = notify.messages.find((m) => m.includes("READY=1")) ?? "";
    assert.match(ready, /^STATUS=1 route\(s\) installed, 0 pending, 2 VIF\(s\)$/m);
    const shown = await pingAndShow(d.socket);
    assert.match(shown, /"group":"239\.66\.0\.1".*"state":"installed"/);

    const pingsBefore = notify.messages.filter((m) => m === "WATCHDOG=1").length;
    await until("two more WATCHDOG=1", () => notify.messages.filter((m) => m === "WATCHDOG=1").length >= pingsBefore + 2, 3_000, 5);

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
