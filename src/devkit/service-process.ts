import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { EXIT_WITH_PARENT_ENV } from '../core/exit-with-parent.js';

/**
 * Starts one of our services (sidecar, control plane, floor) as a child
 * process and resolves once it logs its ready line with the port it bound:
 * the one way benches, the demo stack and tests start real processes.
 */
export interface ServiceProcess {
  child: ChildProcess;
  port: number;
  /** Every line it wrote so far (stdout and stderr), for failure messages. */
  logs: string[];
  /**
   * Resolves with the first line, already written or still to come, that `matches`: a log line is read
   * from the pipe some time after the process wrote it, so a test waits for it rather than looks.
   */
  waitForLine(matches: (line: string) => boolean, timeoutMs?: number): Promise<string>;
}

export interface StartOptions {
  /** Called with each stdout line (the demo forwards them; benches pick out log lines). */
  onLine?: (line: string) => void;
  timeoutMs?: number;
  /** Node flags for the child (--cpu-prof to profile a service under load). */
  execArgv?: readonly string[];
}

export function startService(
  script: string,
  args: readonly string[],
  readyMessage: string,
  options: StartOptions = {},
): Promise<ServiceProcess> {
  // stdin is the child's line to us: it stops when the pipe ends, that is when this process goes (exit-with-parent.ts).
  const child = spawn(process.execPath, [...(options.execArgv ?? []), script, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, [EXIT_WITH_PARENT_ENV]: '1' },
  });
  const logs: string[] = [];
  const lines = new EventEmitter();
  const waitForLine = (matches: (line: string) => boolean, timeoutMs = 10_000): Promise<string> => {
    const seen = logs.find(matches);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const listener = (line: string): void => {
        if (!matches(line)) return;
        clearTimeout(timer);
        lines.off('line', listener);
        resolve(line);
      };
      const timer = setTimeout(() => {
        lines.off('line', listener);
        reject(new Error(`no such line from ${script} within ${timeoutMs} ms:\n${logs.join('\n')}`));
      }, timeoutMs);
      lines.on('line', listener);
    });
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not become ready:\n${logs.join('\n')}`)), options.timeoutMs ?? 60_000);
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        logs.push(line);
        lines.emit('line', line);
        options.onLine?.(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; port?: number };
          if (entry.msg === readyMessage && typeof entry.port === 'number') {
            clearTimeout(timer);
            resolve({ child, port: entry.port, logs, waitForLine });
          }
        } catch {
          // not a JSON log line
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      logs.push(chunk.toString());
      process.stderr.write(chunk);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}:\n${logs.join('\n')}`));
    });
  });
}
