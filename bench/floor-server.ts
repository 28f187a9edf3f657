/**
 * The floor: the least a uWebSockets.js server can do for one of our requests
 * (read the body, parse the JSON, answer a fixed body of the same size). The
 * sidecar's figures are reported as ratios to it, measured in the same run,
 * because this VM's absolute latencies swing from run to run.
 * It talks to uWS directly on purpose: the floor must not include our own
 * HTTP layer (src/core/http/server.ts), whose cost is part of what we measure.
 *
 *   node dist/bench/floor-server.js --port 0 --body-bytes 330
 */
import { benchArgs } from './bench-args.js';
import uWS from 'uWebSockets.js';
import { answerParsed } from './uws-answer.js';
import { exitWithParent } from '../src/core/exit-with-parent.js';

const { values } = benchArgs({ options: { port: { type: 'string', default: '0' }, 'body-bytes': { type: 'string', default: '330' } } });
const filler = Number(values['body-bytes']) - '{"allowed":true,"pad":""}'.length;
const fixed = JSON.stringify({ allowed: true, pad: 'x'.repeat(Math.max(0, filler)) });

uWS
  .App()
  .any('/*', (res) => answerParsed(res, '200 OK', fixed))
  .listen('127.0.0.1', Number(values.port), (socket) => {
    if (!socket) process.exit(1);
    exitWithParent(() => process.exit(0));
    process.stdout.write(`${JSON.stringify({ msg: 'floor listening', port: uWS.us_socket_local_port(socket) })}\n`);
  });
