/**
 * Preloaded into a CLI process by tests (node --import): records the length of the longest text
 * JSON.parse was given, written at exit to the file named by MFC_TEST_PARSE_LOG. So a test can
 * tell whether the CLI parsed a large answer without looking at its output.
 */
import { writeFileSync } from "node:fs";

const log = process.env.MFC_TEST_PARSE_LOG;
if (log !== undefined) {
  const parse = JSON.parse;
  let longest = 0;
  JSON.parse = (text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown): unknown => {
    longest = Math.max(longest, String(text).length);
    return parse(text, reviver);
  };
  process.on("exit", () => writeFileSync(log, String(longest)));
}
