/**
 * src/kernel/huge_pages.ts on the real kernel: a large buffer's 2 MiB-aligned part is advised for
 * transparent huge pages (its mapping shows the `hg` flag in /proc/self/smaps), and nothing else
 * is: the advice must cover only the buffer's own memory, or it would reach whatever malloc puts
 * beside it. On a kernel without THP the advice fails quietly and the buffer is a plain one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { allocLarge } from "../../src/kernel/huge_pages.js";
import { sys } from "../../src/kernel/libc.js";

const HUGE = 2 * 1024 * 1024;
const THP = existsSync("/sys/kernel/mm/transparent_hugepage/enabled");

/** The mappings of this process that overlap [from, to), with whether each is advised (`hg`). */
function mappings(from: number, to: number): { start: number; end: number; advised: boolean }[] {
  const out: { start: number; end: number; advised: boolean }[] = [];
  let current: { start: number; end: number; advised: boolean } | undefined;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) {
      const start = parseInt(range[1] as string, 16);
      const end = parseInt(range[2] as string, 16);
      current = start < to && end > from ? { start, end, advised: false } : undefined;
      if (current) out.push(current);
    } else if (current && line.startsWith("VmFlags:")) {
      current.advised = line.split(/\s+/).includes("hg");
    }
  }
  return out;
}

void test("a buffer of 9 MB: its whole 2 MiB pages are advised, and no byte outside it", () => {
  const size = 9 * 1024 * 1024;
  const buf = allocLarge(size);
  const addr = sys.addressOf(buf, 0, 0);
  const from = Math.ceil(addr / HUGE) * HUGE;
  const to = Math.floor((addr + size) / HUGE) * HUGE;
  assert.ok(to - from >= 3 * HUGE, `aligned part ${to - from}`);
  const around = mappings(addr - HUGE, addr + size + HUGE);
  const advised = around.filter((m) => m.advised);
  if (!THP) {
    assert.deepEqual(advised, [], "no THP in this kernel: nothing can be advised");
    return;
  }
  assert.deepEqual(advised.map((m) => [m.start, m.end]), [[from, to]], `mappings: ${JSON.stringify(around)}`);
  buf.fill(1); // usable as any buffer
  assert.equal(buf[size - 1], 1);
});

void test("a buffer smaller than two huge pages is left as malloc gave it", () => {
  const size = 3 * 1024 * 1024;
  const buf = allocLarge(size);
  const addr = sys.addressOf(buf, 0, 0);
  assert.deepEqual(mappings(addr, addr + size).filter((m) => m.advised), []);
});
