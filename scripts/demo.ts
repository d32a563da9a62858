/**
 * `npm run demo`: a guided tour for newcomers. Builds a throw-away lab of network namespaces, starts
 * the built mfc_daemon in the "router" namespace, programs a multicast route with the built `mfc`
 * CLI, sends real UDP multicast through it and shows what the daemon and the kernel report.
 * Needs root (network namespaces). Everything is removed at the end, also on Ctrl-C or failure.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab, type Lab, type Receiver } from "../test/lab/lab.js";
import { CLI_JS, DAEMON_JS, startDaemon, type DaemonHandle } from "../test/lab/daemon.js";

const GROUP = "239.1.2.3";
const PORT = 5000;
const COUNT = 5;

let lab: Lab | undefined;
let daemon: DaemonHandle | undefined;
/** The daemon's config, socket and state file live here; ours to remove, even if start-up is interrupted. */
let dir: string | undefined;
const receivers: Receiver[] = [];
let cleaning: Promise<void> | undefined;

const say = (text = ""): void => void process.stdout.write(`${text}\n`);
const indent = (text: string): string => text.trimEnd().split("\n").map((l) => (l ? `      ${l}` : "")).join("\n");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const rx of receivers) await rx.stop().catch(() => undefined);
    if (daemon) {
      // A clean stop (SIGTERM) releases the kernel table; cleanup() kills it if that did not work.
      await Promise.race([daemon.stop("SIGTERM").catch(() => undefined), sleep(3_000)]);
      await daemon.cleanup().catch(() => undefined);
    }
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    process.stderr.write(`\n${sig === "SIGINT" ? "Ctrl-C" : sig}: cleaning up...\n`);
    // The lab's own handler may already have removed the namespaces; this also removes the temp dir.
    void cleanup().finally(() => process.exit(130));
  });
}

/** Runs the built CLI against the demo daemon, echoing the command as an operator would type it. */
async function mfc(args: string[]): Promise<string> {
  if (!daemon) throw new Error("daemon not started");
  say(`      $ mfc ${args.join(" ")}`);
  const r = await daemon.mfc(args);
  if (r.code !== 0) throw new Error(`mfc ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the demo needs root: it creates network namespaces (try: sudo npm run demo)");
  if (!existsSync(DAEMON_JS) || !existsSync(CLI_JS)) throw new Error("dist/ is missing: run `npm run build` first (npm run demo does it for you)");
  const t0 = Date.now();

  say("mfc demo: a Linux multicast router, programmed with the mfc CLI");
  say("");
  say("[1/6] Building a lab of four network namespaces connected by veth pairs...");
  lab = await createLab();
  const a = lab.addr;
  say("");
  say(`        sender ${a.sender} --- up0 [ router ] dn1 --- recv1 ${a.recv1}`);
  say(`                                        dn2 --- recv2 ${a.recv2}`);
  say("");
  say("      The router forwards unicast, but multicast only where its kernel's multicast");
  say("      forwarding cache (MFC) says so. Nothing is programmed yet.");
  say("");

  say("[2/6] Starting mfc_daemon in the router namespace (it owns the kernel's multicast table)...");
  dir = mkdtempSync(join(tmpdir(), "mfct-demo-"));
  daemon = await startDaemon(lab, { dir });
  say(`      ready: pid ${daemon.proc.pid ?? "?"}, socket ${daemon.socket}`);
  say("      (this demo passes `-s <socket>` to every mfc call, because the daemon uses a temporary config)");
  say("");

  say(`[3/6] Adding a route: traffic from the sender to ${GROUP}, arriving on up0, goes out on dn1.`);
  await mfc(["add", "from", a.sender, "to", GROUP, "iif", "up0", "oif", "dn1"]);
  say("");

  say(`[4/6] recv1 and recv2 join ${GROUP}; the sender sends ${COUNT} UDP datagrams to port ${PORT}...`);
  const [r1, r2] = await Promise.all([lab.listen("recv1", GROUP, PORT), lab.listen("recv2", GROUP, PORT)]);
  receivers.push(r1, r2);
  await lab.send(GROUP, PORT, COUNT, { payload: "hello multicast" });
  await r1.waitFor(COUNT, 3_000);
  await sleep(300);
  say(`      recv1 received ${r1.count()} of ${COUNT}   (dn1 is an output interface)`);
  say(`      recv2 received ${r2.count()} of ${COUNT}   (dn2 is not)`);
  if (r1.count() !== COUNT || r2.count() !== 0) throw new Error("forwarding did not behave as expected; see the counters below");
  say("");
  say("      Now send to both: `replace` swaps the output interfaces of the route in one step.");
  await mfc(["replace", "from", a.sender, "to", GROUP, "iif", "up0", "oif", "dn1", "dn2"]);
  await lab.send(GROUP, PORT, COUNT, { payload: "hello both" });
  await r2.waitFor(COUNT, 3_000);
  await r1.waitFor(2 * COUNT, 3_000);
  say(`      recv1 received ${r1.count()} in total, recv2 ${r2.count()}`);
  say("");

  say("[5/6] What the daemon reports (VIFs = interfaces handed to the kernel, then routes with counters):");
  say(indent(await mfc(["show"])));
  say("");
  say("      And the kernel's own view, through iproute2 (it can show routes, not program them):");
  say("      $ ip mroute show");
  const ipm = await lab.exec(lab.ns.router, ["ip", "mroute", "show"]);
  say(indent(ipm.stdout));
  say("");
  say("      Machine-readable output for scripts: `mfc show -j`; daemon health: `mfc status`;");
  say("      a preview without changing anything: `mfc --dry-run ...`; all commands: `mfc --help`.");
  say("");

  say("[6/6] Stopping the daemon (SIGTERM releases the kernel table) and removing the lab...");
  await cleanup();
  say(`      done in ${((Date.now() - t0) / 1000).toFixed(1)} s.`);
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    process.stderr.write(`\ndemo failed: ${(err as Error).message}\n`);
    if (daemon) process.stderr.write(`daemon log:\n${daemon.logs()}\n`);
    await cleanup().catch(() => undefined);
    process.exit(1);
  },
);
