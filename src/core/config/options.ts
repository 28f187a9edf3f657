import { parseArgs } from 'node:util';

/**
 * Command-line options of our processes, declared once per process as a table: each flag's environment
 * variable and default. Flags win over the environment, the environment over the default.
 * docs/operations.md explains every option of both tables; test/unit/operations-doc.test.ts holds the
 * doc to them.
 */
export interface OptionSpec {
  env: string;
  /** The value when neither the flag nor the environment gives one ('' for none). */
  fallback: string;
  /** How the docs show a default that is none, or computed at start (the host name). */
  shownDefault?: string;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Reads and checks option values; every refusal names the flag and what it takes. */
export class OptionReader<Table extends OptionTable> {
  readonly positionals: string[];
  private readonly values: Record<string, string | boolean | undefined>;

  constructor(
    private readonly table: Table,
    argv: readonly string[],
    private readonly env: NodeJS.ProcessEnv,
    options: { allowPositionals?: boolean } = {},
  ) {
    const parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.keys(table).map((name) => [name, { type: 'string' as const }])),
      strict: true,
      allowPositionals: options.allowPositionals ?? false,
    });
    this.values = parsed.values;
    this.positionals = parsed.positionals;
  }

  string(name: keyof Table & string): string {
    const flag = this.values[name];
    return typeof flag === 'string' ? flag : (this.env[this.table[name].env] ?? this.table[name].fallback);
  }

  /** '' (unset) as null. */
  optional(name: keyof Table & string): string | null {
    const value = this.string(name);
    return value === '' ? null : value;
  }

  integer(name: keyof Table & string, min: number, max: number): number {
    const text = this.string(name);
    const value = /^-?[0-9]+$/.test(text.trim()) ? Number(text) : NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max)
      throw new Error(`--${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(text)}`);
    return value;
  }

  oneOf<T extends string>(name: keyof Table & string, allowed: readonly T[]): T {
    const value = this.string(name);
    if (!(allowed as readonly string[]).includes(value))
      throw new Error(`--${name} must be one of ${allowed.join(', ')}, not ${JSON.stringify(value)}`);
    return value as T;
  }

  /** A host to listen on: a name or an address, no spaces, no scheme. */
  host(name: keyof Table & string): string {
    const value = this.string(name);
    if (!/^[A-Za-z0-9.:_-]{1,253}$/.test(value))
      throw new Error(`--${name} must be a host name or an IP address, not ${JSON.stringify(value)}`);
    return value;
  }
}
