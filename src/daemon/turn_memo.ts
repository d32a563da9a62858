/**
 * A read remembered until the microtasks of the current event-loop callback have run. The answers
 * of one commit group are all resumed by that group's save completing (engine.ts resolves them
 * together, and each answer is a chain of promise continuations), so the warnings of 20 clients'
 * `add`s share one read of each sysctl and interface flag instead of making 4-5 system calls each.
 * The clearing is a process.nextTick: Node runs it once the microtask queue has drained, before any
 * other callback (another request, a timer, a link event), so a value never outlives the callback
 * it was read in.
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
      process.nextTick(() => {
        seen.clear();
        clearing = false;
      });
    }
    return value;
  };
}
