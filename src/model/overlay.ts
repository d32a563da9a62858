/**
 * A Map-like view of a base map plus pending changes. A transaction edits an overlay, so it costs
 * O(change) instead of a copy of the whole table, and the committed map stays intact for readers
 * until `mergeInto` folds the changes in.
 */
const DELETED = Symbol("deleted");

export class OverlayMap<K, V> implements ReadonlyMap<K, V> {
  private readonly changes = new Map<K, V | typeof DELETED>();
  private cleared = false;
  private count: number;

  constructor(private readonly base: ReadonlyMap<K, V>) {
    this.count = base.size;
  }

  get size(): number {
    return this.count;
  }

  /** True when the overlay replaces the base wholesale (clear() was called). */
  get isCleared(): boolean {
    return this.cleared;
  }

  get(key: K): V | undefined {
    const c = this.changes.get(key);
    if (c !== undefined) return c === DELETED ? undefined : c;
    return this.cleared ? undefined : this.base.get(key);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  set(key: K, value: V): this {
    if (!this.has(key)) this.count++;
    this.changes.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    if (!this.has(key)) return false;
    this.count--;
    this.changes.set(key, DELETED);
    return true;
  }

  clear(): void {
    this.cleared = true;
    this.changes.clear();
    this.count = 0;
  }

  /** Keys set or deleted since the overlay was made (not meaningful after clear()). */
  changedKeys(): IterableIterator<K> {
    return this.changes.keys();
  }

  *entries(): MapIterator<[K, V]> {
    if (!this.cleared) {
      for (const [k, v] of this.base) if (!this.changes.has(k)) yield [k, v];
    }
    for (const [k, v] of this.changes) if (v !== DELETED) yield [k, v];
  }

  *keys(): MapIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }

  /** Applies the changes to `target` (normally the base) in place. */
  mergeInto(target: Map<K, V>): void {
    if (this.cleared) target.clear();
    for (const [k, v] of this.changes) {
      if (v === DELETED) target.delete(k);
      else target.set(k, v);
    }
  }
}
