import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../src/devkit/paths.js';

/**
 * Every bench keeps its result as bench/results/<kind>-<time>.json, beside printing it; `make perf-doc`
 * (report.ts) turns the newest of each kind into docs/performance.md. Commit the results a doc was made
 * from with the doc.
 */
export const RESULTS_DIR = join(REPO, 'bench', 'results');

export interface SavedResult {
  kind: string;
  at: string;
  node: string;
  machine: { cpus: number; model: string };
  /** The command that produced it, as it can be run again. */
  command: string;
  result: Record<string, unknown>;
}

/** Writes the result file and returns its path. */
export function saveResult(kind: string, command: string, result: Record<string, unknown>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const at = new Date().toISOString();
  const saved: SavedResult = {
    kind,
    at,
    node: process.version,
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
    command,
    result,
  };
  const file = join(RESULTS_DIR, `${kind}-${at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(saved, null, 2)}\n`);
  return file;
}

/** Prints a one-line JSON result (what scripts read) and keeps it. */
export function reportResult(kind: string, command: string, result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  saveResult(kind, command, result);
}

/** The newest saved result of each kind. */
export function newestResults(): Map<string, SavedResult & { file: string }> {
  const newest = new Map<string, SavedResult & { file: string }>();
  let names: string[];
  try {
    names = readdirSync(RESULTS_DIR).filter((name) => name.endsWith('.json'));
  } catch {
    return newest;
  }
  for (const name of names.sort()) {
    const saved = JSON.parse(readFileSync(join(RESULTS_DIR, name), 'utf8')) as SavedResult;
    if (typeof saved.kind !== 'string') continue; // a file from before results were kept this way
    const current = newest.get(saved.kind);
    if (current === undefined || saved.at > current.at) newest.set(saved.kind, { ...saved, file: name });
  }
  return newest;
}

/** A scenario against the floor driven the same way in the same run: latency for open loops, throughput for closed ones. */
export function againstFloor(row: { p99_ratio?: number; p50_vs_floor_us?: number; throughput_ratio?: number }): string {
  if (row.p99_ratio !== undefined) return `p50 +${row.p50_vs_floor_us ?? 0} µs, p99 ×${row.p99_ratio}`;
  return row.throughput_ratio !== undefined ? `throughput ×${row.throughput_ratio}` : '';
}
