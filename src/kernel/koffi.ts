/**
 * koffi, loaded through its CommonJS build: the same native module, but one file to read instead
 * of an ES module graph of four resolved and read one by one; on the daemon's start-up path it
 * took ~11 ms instead of ~21 (docs/performance.md, "Sixth round").
 */
import { createRequire } from "node:module";

const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi").default;
export default koffi;
