import { readdirSync, readFileSync } from 'node:fs';

/**
 * A server's CPU time read from /proc, for benches: on a shared, loaded box latency is mostly other
 * processes' noise, while the CPU the server itself spends per request is what a change moves.
 */

/** utime + stime (fields 14 and 15 of stat; the name in field 2 may hold spaces, hence the split on ") "). */
function statSeconds(path: string): { seconds: number; nice: number } {
  const fields = readFileSync(path, 'utf8').split(') ')[1].split(' ');
  return { seconds: (Number(fields[11]) + Number(fields[12])) / 100, nice: Number(fields[16]) };
}

/** utime + stime of a process (all its threads), or of its main thread (the event loop), in seconds. */
export function cpuSeconds(pid: number, mainThreadOnly = false): number {
  return statSeconds(mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`).seconds;
}

/**
 * A thread's time on the CPU in seconds, counted by the scheduler in nanoseconds (/proc/<pid>/schedstat: for a
 * process, its main thread) rather than in the 10 ms ticks of `stat`: what a bench reads around a few dozen
 * requests of a few milliseconds each, where ticks would round a request's share to a quarter of it.
 */
export function runSeconds(pid: number): number {
  return runNanos(pid) / 1e9;
}

/** The same in nanoseconds, as the scheduler counts it: for a bench timing its own event loop (`runNanos(process.pid)`). */
export function runNanos(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
}

/**
 * How long a thread has waited, runnable, for a core (/proc/<pid>/schedstat's second field: for a process, its
 * main thread), in seconds. On a box whose cores OpenSIPS's workers, SIPp and the sidecar share, this is the
 * part of a request's latency that is neither the sidecar's work nor the network: its event loop woken by a
 * request but not yet running.
 */
export function runQueueSeconds(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
}

/**
 * CPU seconds of a process's threads other than the event loop, by kind: `background` are the threads
 * we lower to nice 19 (money-log applier, snapshot compile), `helpers` the rest (V8's GC and compiler
 * helpers, libuv's pool), which run at the event loop's own priority and so compete with it for a core.
 */
export function helperCpuSeconds(pid: number): { background: number; helpers: number } {
  const totals = { background: 0, helpers: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    if (tid === String(pid)) continue;
    try {
      const { seconds, nice } = statSeconds(`/proc/${pid}/task/${tid}/stat`);
      if (nice > 0) totals.background += seconds;
      else totals.helpers += seconds;
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return totals;
}

export interface CpuPerRequest {
  /** The whole process. */
  cpuMicrosPerRequest: number;
  /** The event loop's thread alone. */
  loopMicrosPerRequest: number;
  backgroundMicrosPerRequest: number;
  helperMicrosPerRequest: number;
}

/**
 * Starts counting a process's CPU; the returned function, called once the measured requests are answered,
 * gives the microseconds spent per request since the start, whole and by thread kind.
 */
export function startCpuMeter(pid: number): (requests: number) => CpuPerRequest {
  const cpuBefore = cpuSeconds(pid);
  const loopBefore = cpuSeconds(pid, true);
  const threadsBefore = helperCpuSeconds(pid);
  return (requests) => {
    const perRequest = (seconds: number): number => Math.round((seconds * 1e6) / Math.max(1, requests));
    const threadsAfter = helperCpuSeconds(pid);
    return {
      cpuMicrosPerRequest: perRequest(cpuSeconds(pid) - cpuBefore),
      loopMicrosPerRequest: perRequest(cpuSeconds(pid, true) - loopBefore),
      backgroundMicrosPerRequest: perRequest(threadsAfter.background - threadsBefore.background),
      helperMicrosPerRequest: perRequest(threadsAfter.helpers - threadsBefore.helpers),
    };
  };
}
