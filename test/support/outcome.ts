/** What a request came to, for tables of expected outcomes: "ok" or the MfcError's code. */
import { MfcError } from "../../src/errors/codes.js";

export async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    if (err instanceof MfcError) return err.code;
    throw err;
  }
}
