/** The daemon's state as `mfc -j` shows it, read through the built CLI (for e2e assertions). */
import assert from "node:assert/strict";
import type { DaemonHandle } from "./daemon.js";

export interface Oif { ifname: string; ttl: number }
export interface RouteView { source: string | null; group: string; iif: string; oifs: Oif[]; state: string; reason?: string }
export interface VifView { vifi: number | null; ifname: string; ifindex: number | null; threshold: number; pinned: boolean }
/** `mfc -j show`. */
export interface Show { vifs: VifView[]; routes: RouteView[] }

/** Runs `mfc args` (stdin: input) and asserts exit 0; resolves with stdout. */
export async function mfcOk(d: DaemonHandle, args: string[], input?: string): Promise<string> {
  const r = await d.mfc(args, input === undefined ? undefined : { input });
  assert.equal(r.code, 0, `mfc ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** `mfc -j show`, parsed. */
export async function show(d: DaemonHandle): Promise<Show> {
  return JSON.parse(await mfcOk(d, ["-j", "show"])) as Show;
}

/** The result object of `mfc -j status`. */
export async function status(d: DaemonHandle): Promise<Record<string, unknown>> {
  return (JSON.parse(await mfcOk(d, ["-j", "status"])) as { result: Record<string, unknown> }).result;
}

/** The route for group in a show; asserts there is one. */
export const route = (s: Show, group: string): RouteView => {
  const r = s.routes.find((x) => x.group === group);
  assert.ok(r, `route for ${group} in show -j`);
  return r;
};
