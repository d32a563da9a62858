/**
 * Large buffers backed by transparent huge pages where the system allows it (THP "madvise" mode,
 * the default of Debian and others). Writing fresh memory is paid per page fault: on the VM the
 * bench runs on, ~2.8 ms per MiB in 4 KiB pages, ~0.2 in 2 MiB ones; a 9 MB state file or APPLY
 * line is written into fresh memory once (docs/performance.md, "Sixth round").
 * madvise(MADV_HUGEPAGE) applies to the 2 MiB-aligned part of the buffer, before anything is
 * written to it; where THP is off or missing it fails or does nothing, and the buffer is as good.
 */
import { sys } from "./libc.js";

const MADV_HUGEPAGE = 14;
const HUGE = 2 * 1024 * 1024;

/** A buffer of `size` bytes (not zeroed), huge-page backed where possible when it spans huge pages. */
export function allocLarge(size: number): Buffer {
  const buf = Buffer.allocUnsafeSlow(size);
  if (size >= 2 * HUGE) {
    const addr = sys.addressOf(buf, 0, 0);
    const from = Math.ceil(addr / HUGE) * HUGE;
    const to = Math.floor((addr + size) / HUGE) * HUGE;
    if (to > from) sys.madvise(from, to - from, MADV_HUGEPAGE);
  }
  return buf;
}
