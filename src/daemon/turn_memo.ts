/**
 * A read remembered until the event loop's next turn. The answers of one commit group are all
 * written in the turn its save completes (engine.ts resolves them together), so the warnings of
 * 20 clients' `add`s share one read of each sysctl and interface flag instead of making 4-5 system
 * calls each (profiled: a quarter of the daemon's time under that load). A value never outlives
 * the turn it was read in, so no answer sees one read before its own transaction ended.
 */
export function memoForTurn<V>(read: (key: string) => V): (key: string) => V {
  const seen = new Map<string, V>();
  let clearing = false;
  return (key) => {
    if (seen.has(key)) return seen.get(key) as V;
    const value = read(key);
    seen.set(key, value);
    if (!clearing) {
      clearing = true;
      setImmediate(() => {
        seen.clear();
        clearing = false;
      });
    }
    return value;
  };
}
