/** Prints example requests against a running sidecar, using numbers and callers that exist in the demo data. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { TrafficHints } from './dataset.js';

const { values } = parseArgs({ options: { traffic: { type: 'string' }, port: { type: 'string', default: '8090' } } });
const traffic = JSON.parse(readFileSync(values.traffic ?? 'data/demo/traffic.json', 'utf8')) as TrafficHints;
const [ip, techPrefix, trunkId] = traffic.callers.find((caller) => caller[1] === '') ?? traffic.callers[0];
const number = traffic.numbers[0];
const base = `http://127.0.0.1:${values.port}`;
const post = (path: string, body: unknown): string => `curl -s ${base}${path} -H 'Content-Type: application/json' -d '${JSON.stringify(body)}'`;
process.stdout.write(
  [
    '',
    'Sidecar starting with the demo snapshot. Try:',
    '',
    `  curl -s ${base}/api/health`,
    `  ${post('/api/opensips/call/auth', { source_ip: ip, call_id: 'demo-1@opensips', ani: '61255500100', dnis: techPrefix + number })}`,
    `  ${post('/api/opensips/call/route', { customer_trunk_id: trunkId, ani: '61255500100', dnis: number, attempt: 1, tried_carrier_trunk_ids: [] })}`,
    `  ${post('/api/lcr/lookup', { customer_trunk_id: trunkId, dnis: number })}`,
    `  ${post('/api/admin/route-simulator', { customer_trunk_id: trunkId, ani: '61255500100', dnis: number, duration_seconds: 73 })}`,
    `  ${post('/api/rate-lookup', { rate_deck_id: 1, destination: number })}`,
    `  ${post('/api/opensips/call/failover', { customer_trunk_id: trunkId, carrier_trunk_id: 1001, failure_code: 503 })}`,
    `  ${post('/api/metrics/per-minute/check', { trunk_id: trunkId, limit: 300 })}`,
    `  curl -s ${base}/metrics`,
    '',
    'Ctrl-C stops it.',
    '',
  ].join('\n'),
);
