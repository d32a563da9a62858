/** Runs async jobs one at a time, in arrival order: transactions never interleave. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.tail.then(job, job);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves when every job queued so far has finished. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
