/**
 * Prepared statements kept by their text, for code that builds its SQL as it goes and runs the same few texts
 * again and again: preparing costs more than running (a list's two statements were ~0.3 ms of the control
 * plane's CPU a money round, prepared afresh). Bounded: at `max` texts it starts afresh, so a caller that
 * varies its texts without end (a page limit, a filter combination) cannot grow it without end.
 */
export class StatementCache<S> {
  private readonly statements = new Map<string, S>();

  constructor(
    private readonly prepare: (sql: string) => S,
    private readonly max: number,
  ) {}

  get(sql: string): S {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      if (this.statements.size >= this.max) this.statements.clear();
      statement = this.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}
