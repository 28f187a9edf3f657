/**
 * Work run one at a time per name within this process: each run starts once the one before it with the same
 * name has ended, whether that one succeeded or failed. What ConfigStore.exclusively is on SQLite, and what
 * it takes first on PostgreSQL, so that one process waits in memory rather than with a pooled connection each.
 */
export class OneAtATime {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(name: string, work: () => Promise<T>): Promise<T> {
    const before = this.tails.get(name) ?? Promise.resolve();
    const result = before.then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(name, tail);
    // The last run of a name forgets it: names do not pile up.
    void tail.then(() => {
      if (this.tails.get(name) === tail) this.tails.delete(name);
    });
    return result;
  }
}
