/**
 * A service started by our own tooling (tests, benches, `make run`) stops when the process that started it
 * goes, however that one ended: a `make test` killed mid-run used to leave its worlds (a control plane and
 * its sidecars) running for an hour, reparented to init, holding ports and CPU. Linux's parent-death signal
 * is not reachable from Node, so the starter hands the child a stdin pipe and sets this variable; the
 * pipe's end is the parent's death, whatever the signal. Services started by an operator (systemd, a shell)
 * do not have the variable and never read stdin.
 */
export const EXIT_WITH_PARENT_ENV = 'EXIT_WITH_PARENT';

export function exitWithParent(stop: (reason: string) => void): void {
  if (process.env[EXIT_WITH_PARENT_ENV] !== '1') return;
  const parentGone = (): void => stop('parent exited');
  process.stdin.once('end', parentGone);
  process.stdin.once('error', parentGone);
  process.stdin.resume();
}
