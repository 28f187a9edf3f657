import { basename } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * A bench's options, as `parseArgs` reads them, plus `--help`: the options it takes with their defaults.
 * Benches are run by hand with many flags, and "Unknown option '--help'" was all one said; what each option
 * means is in the bench's header comment, which the help points to.
 */
export function benchArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  const args = config.args ?? process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(usage(config));
    process.exit(0);
  }
  return parseArgs(config);
}

function usage(config: ParseArgsConfig): string {
  const script = basename(process.argv[1] ?? 'bench.js');
  const lines = Object.entries(config.options ?? {}).map(([name, option]) => {
    const flag = option.type === 'boolean' ? `--${name}` : `--${name} <value>`;
    const fallback = option.default === undefined ? '' : `   (default: ${JSON.stringify(option.default)})`;
    return `  ${flag}${fallback}`;
  });
  return `node dist/bench/${script} [options]\n${lines.join('\n')}\nWhat each option means: the header comment of bench/${script.replace(/\.js$/, '.ts')}.\n`;
}
