/**
 * Effects: the flows of group-range templates (SPEC §7). An upcall (the kernel has no entry for a
 * flow arriving on a VIF) that a template covers gets its (S, G) entry at once: the kernel then
 * forwards the packets it held for the flow (up to a few, for ~10 s), so the first packets are
 * late by the upcall's round trip, not lost. A flow that counts no new packet for template_idle_s
 * is removed. Flows are runtime state, never saved: after a restart the next packet recreates them.
 * After every change of the configuration (Engine's `changed`) each flow follows its template
 * (new outputs, new VIF numbers) or goes: its template was deleted, or an exact route now names
 * the flow (exact routes win).
 */
import type { Engine, Logger } from "../engine/engine.js";
import { EntryShapes, realizeEntry } from "../engine/realize.js";
import { templateFor, templatesOf, type Template } from "../engine/templates.js";
import { KernelError } from "../kernel/errors.js";
import { familyOf, type KernelPort, type MfcEntry, type NoCache } from "../kernel/port.js";
import { routeKey, type Route } from "../model/types.js";
import type { FlowView } from "../view/model.js";

interface Flow {
  template: string;
  iif: string;
  entry: MfcEntry;
  /** Packets counted at the last look, and when they last grew (ms). */
  packets: number;
  activeAt: number;
}

export class FlowManager {
  private readonly flows = new Map<string, Flow>();
  private templates: Template[] = [];
  private templatesOfVersion = -1;

  constructor(
    private readonly kernel: KernelPort,
    private readonly engine: Engine,
    private readonly idleMs: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Rebuilt when the configuration changed since the last look, from the engine's template keys (O(templates)). */
  private currentTemplates(): Template[] {
    if (this.templatesOfVersion !== this.engine.configVersion) {
      const { routes } = this.engine.snapshot().config;
      const entries: [string, Route][] = [];
      for (const key of this.engine.templates()) {
        const route = routes.get(key);
        if (route) entries.push([key, route]);
      }
      this.templates = templatesOf(entries);
      this.templatesOfVersion = this.engine.configVersion;
    }
    return this.templates;
  }

  /** How many templates the configuration has (for status). */
  templateCount(): number {
    return this.currentTemplates().length;
  }

  /** How many flows are installed now. */
  get size(): number {
    return this.flows.size;
  }

  onNoCache(u: NoCache): void {
    const templates = this.currentTemplates();
    if (templates.length === 0) return;
    const { config, image } = this.engine.snapshot();
    let iif: string | undefined;
    const family = familyOf(u.group);
    for (const v of image.vifs.values()) if (v.vifi === u.vifi && v.family === family) iif = v.ifname;
    if (iif === undefined) return;
    const t = templateFor(config, templates, iif, u.source, u.group);
    if (!t) return;
    const key = routeKey(u.source, u.group);
    const m = realizeEntry(key, t.route, u.source, u.group, new EntryShapes(image.vifs));
    if (!m) return; // no output interface has a VIF now
    const entry: MfcEntry = { origin: u.source, group: u.group, parent: m.parent, ttls: m.ttls };
    try {
      this.kernel.addMfc(entry);
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      this.log(4, `template ${t.key}: flow (${u.source}, ${u.group}) refused by the kernel: ${err.message}`);
      return;
    }
    this.flows.set(key, { template: t.key, iif, entry, packets: 0, activeAt: this.now() });
    this.log(6, `template ${t.key}: flow (${u.source}, ${u.group}) installed`);
  }

  /** After the configuration or the image changed: each flow follows its template, or goes. */
  sync(): void {
    if (this.flows.size === 0) return;
    const templates = this.currentTemplates();
    const { config, image } = this.engine.snapshot();
    const shapes = new EntryShapes(image.vifs);
    for (const [key, f] of this.flows) {
      if (config.routes.has(key) && image.mfcs.has(key)) {
        // An exact (S, G) route was installed over the flow (MRT_ADD_MFC replaced it): it is the route's now.
        this.flows.delete(key);
        continue;
      }
      const t = templateFor(config, templates, f.iif, f.entry.origin, f.entry.group);
      const m = t ? realizeEntry(key, t.route, f.entry.origin, f.entry.group, shapes) : undefined;
      if (!t || !m) {
        this.remove(key, f, t ? "no output interface has a VIF" : "its template is gone or an exact route names it");
        continue;
      }
      if (t.key === f.template && m.parent === f.entry.parent && m.ttls.length === f.entry.ttls.length && m.ttls.every((x, i) => x === f.entry.ttls[i])) continue;
      const entry: MfcEntry = { origin: f.entry.origin, group: f.entry.group, parent: m.parent, ttls: m.ttls };
      try {
        this.kernel.addMfc(entry); // replaces the flow's entry in place (STACK.md)
        this.flows.set(key, { ...f, template: t.key, entry });
      } catch (err) {
        if (!(err instanceof KernelError)) throw err;
        this.remove(key, f, `the kernel refused its new entry: ${err.message}`);
      }
    }
  }

  /** Removes flows without a new packet for template_idle_s; forgets those the kernel lost. */
  expire(): void {
    const now = this.now();
    for (const [key, f] of this.flows) {
      const c = this.kernel.sgCounters(f.entry.origin, f.entry.group);
      if (!c) {
        this.flows.delete(key); // gone from the kernel (a flush after a failed undo): the next packet recreates it
        continue;
      }
      if (c.packets !== f.packets) {
        f.packets = c.packets;
        f.activeAt = now;
      } else if (now - f.activeAt >= this.idleMs) {
        this.remove(key, f, `idle for ${Math.round(this.idleMs / 1000)} s`);
      }
    }
  }

  /** The flows a template installed, with their counters (for `show`). */
  of(templateKey: string): FlowView[] {
    const out: FlowView[] = [];
    for (const f of this.flows.values()) {
      if (f.template !== templateKey) continue;
      const c = this.kernel.sgCounters(f.entry.origin, f.entry.group);
      out.push({ source: f.entry.origin, group: f.entry.group, packets: c?.packets ?? 0, bytes: c?.bytes ?? 0 });
    }
    return out.sort((a, b) => a.group.localeCompare(b.group, "en", { numeric: true }) || a.source.localeCompare(b.source, "en", { numeric: true }));
  }

  private remove(key: string, f: Flow, why: string): void {
    this.flows.delete(key);
    // An exact route for this (S, G) that the engine installed replaced the flow's entry (and may
    // be saving right now): the entry is the route's, and MRT_DEL_MFC (which ignores the parent)
    // would delete it. Only a pending exact route leaves the flow's own entry to remove.
    const { config, image } = this.engine.snapshot();
    if (config.routes.has(key) && image.mfcs.has(key)) return;
    try {
      this.kernel.delMfc({ origin: f.entry.origin, group: f.entry.group, parent: f.entry.parent });
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      // ENOENT: already gone. Anything else: the entry stays; the kernel may still forward it.
      if (err.errnoName !== "ENOENT") this.log(4, `flow (${f.entry.origin}, ${f.entry.group}): MRT_DEL_MFC failed: ${err.message}`);
    }
    this.log(6, `template ${f.template}: flow (${f.entry.origin}, ${f.entry.group}) removed (${why})`);
  }
}
