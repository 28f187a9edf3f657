/**
 * The nodes' held delta asks, each waiting for the next commit, the end of its wait, or its abort (a money
 * signal), whichever first. Both engines' delta logs wake them all at a commit; each ask then reads again.
 */
export class DeltaWaiters {
  private waiting = new Set<() => void>();

  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiting.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiting.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  wakeAll(): void {
    const waiting = this.waiting;
    this.waiting = new Set();
    for (const wake of waiting) wake();
  }
}
