/**
 * Requests from every connection start here, one per turn of the event loop, in arrival order.
 * An immediate queued from an immediate runs only on the next turn, after timers (the watchdog,
 * client deadlines), signals and socket I/O: however many requests wait, none of those starve,
 * and with one request per connection at a time the order is round-robin across connections.
 */
export class RunQueue {
  private readonly tasks: (() => void)[] = [];
  private scheduled = false;

  push(task: () => void): void {
    this.tasks.push(task);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.tasks.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      try {
        this.tasks.shift()?.();
      } finally {
        this.schedule();
      }
    });
  }
}
