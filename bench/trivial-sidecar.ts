/**
 * The trivial sidecar: a bare uWebSockets.js server that answers the OpenSIPS script's requests with
 * fixed bodies of the shapes the real sidecar answers. bench/through-opensips.ts runs OpenSIPS against
 * it and against the real sidecar in the same run; the ratio between the two is the decision engine's
 * own cost as OpenSIPS sees it, where absolute figures swing with the machine's load. Like the floor
 * (floor-server.ts) it reads and parses every body, so only our work is left out.
 *
 *   node dist/bench/trivial-sidecar.js --port 0 --decide-answer answer.json
 *   node dist/bench/trivial-sidecar.js --port 0 --destination sip:61400123456@127.0.0.1:5070
 *
 * --decide-answer: call/decide's answer to give every INVITE (the bench takes one from the real sidecar
 * for the same call, so both answer the same bytes); else a built-in one routing to --destination.
 * GET /counts: requests taken per path, so the bench can count the CDRs it was sent.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { benchArgs } from './bench-args.js';
import uWS from 'uWebSockets.js';
import { answerParsed } from './uws-answer.js';

/** A call/decide answer as the real sidecar gives it for an allowed call (docs/contract-notes.md, note 33). */
export function builtInDecideAnswer(destination: string): string {
  return JSON.stringify({
    allowed: true,
    stage: 'route',
    reject_code: null,
    reject_reason: null,
    reason_code: null,
    auth: {
      allowed: true,
      customer_trunk_id: 10,
      customer_account_id: 1,
      ani: '61255500100',
      dnis: '61400123456',
      cps_limit: 0,
      port_limit: 0,
      rtpengine_enabled: false,
      sip_trusted: false,
      retail_account_id: null,
    },
    admit: { allowed: true, max_duration_seconds: 7200, balance_remaining: null },
    route: {
      allowed: true,
      carrier_trunk_id: 20,
      carrier_gateway_id: 201,
      destination_uri: destination,
      cps_limit: 0,
      port_limit: 0,
      rtpengine_enabled: false,
      attempt: 1,
    },
  });
}

function main(): void {
  const { values } = benchArgs({
    options: {
      port: { type: 'string', default: '0' },
      'decide-answer': { type: 'string' },
      destination: { type: 'string' },
    },
  });
  if (values['decide-answer'] === undefined && values.destination === undefined)
    throw new Error('--decide-answer FILE or --destination sip:… is required');
  const decide =
    values['decide-answer'] !== undefined ? readFileSync(values['decide-answer'], 'utf8').trim() : builtInDecideAnswer(values.destination!);
  JSON.parse(decide);
  const answers = new Map<string, [status: string, body: string]>([
    ['/api/opensips/call/decide', ['200 OK', decide]],
    // The bench's carriers answer 200: a reroute is not expected, and ending the call there is what the script does with this.
    ['/api/opensips/call/reroute', ['200 OK', JSON.stringify({ action: 'return_to_customer', route: null })]],
    ['/api/cdrs/ingest', ['201 Created', JSON.stringify({ status: 'rated', duplicate: false })]],
    ['/api/opensips/call/release', ['200 OK', JSON.stringify({ released: true })]],
  ]);
  const counts: Record<string, number> = {};

  uWS
    .App()
    .get('/counts', (res) => {
      res.writeHeader('Content-Type', 'application/json').end(JSON.stringify(counts));
    })
    .post('/*', (res, req) => {
      const path = req.getUrl();
      const answer = answers.get(path) ?? ['404 Not Found', JSON.stringify({ error: 'not_found' })];
      answerParsed(res, answer[0], answer[1], () => {
        counts[path] = (counts[path] ?? 0) + 1;
      });
    })
    .listen('127.0.0.1', Number(values.port), (socket) => {
      if (!socket) process.exit(1);
      process.stdout.write(`${JSON.stringify({ msg: 'trivial sidecar listening', port: uWS.us_socket_local_port(socket) })}\n`);
    });
}

const entry = process.argv[1] as string | undefined;
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) main();
