/** Small waiting helpers shared by the e2e tests. */

/** Resolves after ms milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls fn every pollMs until it returns something other than undefined/false, and resolves with
 * that value; throws naming `what` once timeoutMs has passed. fn may be synchronous.
 */
export async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5_000, pollMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    last = v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${String(last)})`);
    await sleep(pollMs);
  }
}
