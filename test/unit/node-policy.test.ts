import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_NODE_HOSTS, hostAllowed, parseHostAllowlist } from '../../sync/nodes/hosts.js';
import { pathUnderRoots, prepareFileRoots } from '../../sync/nodes/paths.js';
import { loadNodePolicy } from '../../sync/nodes/policy.js';
import { checkNodeTargets } from '../../sync/nodes/targets.js';

/** The two rules behind every node address: which hosts, which directories (sync/nodes/). */
describe('node policy', () => {
  it('allows the configured hosts and networks, however an address is spelled, and nothing else', () => {
    const loopback = parseHostAllowlist(DEFAULT_NODE_HOSTS);
    for (const host of ['127.0.0.1', '127.9.9.9', '[::1]', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1', '[::ffff:7f00:1]'])
      assert.equal(hostAllowed(loopback, host), true, host);
    for (const host of ['10.0.0.1', '128.0.0.1', '::2', 'localhost.evil.example', 'example.com', '::ffff:10.0.0.1', ''])
      assert.equal(hostAllowed(loopback, host), false, host);
    const nodes = parseHostAllowlist('10.1.0.0/16, opensips-01.example.net, 2001:db8::/32');
    assert.equal(hostAllowed(nodes, '10.1.200.3'), true);
    assert.equal(hostAllowed(nodes, '10.2.0.1'), false);
    assert.equal(hostAllowed(nodes, 'opensips-01.example.net'), true);
    assert.equal(hostAllowed(nodes, 'opensips-02.example.net'), false);
    assert.equal(hostAllowed(nodes, '[2001:db8::5]'), true);
    assert.equal(hostAllowed(nodes, '127.0.0.1'), false, 'loopback only when configured');
    assert.throws(() => parseHostAllowlist('10.0.0.0/8,http://x'), /--node-hosts: "http:\/\/x"/);
  });

  it('takes a path for where it really leads: symlinks and .. followed, the missing rest appended', async () => {
    const base = mkdtempSync(join(tmpdir(), 'node-policy-'));
    const roots = prepareFileRoots([join(base, 'root')]);
    const outside = join(base, 'outside');
    mkdirSync(outside);
    symlinkSync(outside, join(base, 'root', 'escape'));
    symlinkSync(join(base, 'nowhere'), join(base, 'root', 'dangling'));
    mkdirSync(join(base, 'root', 'node-1'));
    assert.deepEqual(await pathUnderRoots(roots, join(base, 'root', 'node-1', 'new', 'opensips.sqlite')), {
      path: join(roots.roots[0], 'node-1', 'new', 'opensips.sqlite'),
    });
    assert.deepEqual(await pathUnderRoots(roots, `${join(base, 'root')}/node-1/../node-1/fifo`), {
      path: join(roots.roots[0], 'node-1', 'fifo'),
    });
    for (const path of [
      join(base, 'root', 'escape', 'file'),
      `${join(base, 'root')}/../outside/x`,
      join(base, 'root', 'escape'),
      '/etc/hosts',
      base,
    ]) {
      const result = await pathUnderRoots(roots, path);
      assert.ok('refused' in result && /outside the node files roots/.test(result.refused), `${path}: ${JSON.stringify(result)}`);
    }
    const dangling = await pathUnderRoots(roots, join(base, 'root', 'dangling', 'x'));
    assert.ok('refused' in dangling && /symlink to nothing|EDANGLING/.test(dangling.refused), JSON.stringify(dangling));
    assert.deepEqual(await pathUnderRoots(roots, 'relative/path'), { refused: 'must be an absolute path' });
  });

  it('takes a MySQL or PostgreSQL drouting_db URL to an allowed host, credentials and all, and shows it without the password', async () => {
    const policy = loadNodePolicy([mkdtempSync(join(tmpdir(), 'node-policy-db-'))], '10.0.0.5,db.example.net');
    const check = (drouting_db: string) => checkNodeTargets(policy, { mi_socket_address: 'udp:10.0.0.5:8080', drouting_db });
    assert.deepEqual(await check('mysql://opensips:s3cr%40t@10.0.0.5:3306/opensips'), {
      ok: true,
      targets: {
        sidecar: null,
        mi: { kind: 'udp', host: '10.0.0.5', port: 8080 },
        droutingDb: {
          kind: 'mysql',
          url: 'mysql://opensips:s3cr%40t@10.0.0.5:3306/opensips',
          shown: 'mysql://opensips:***@10.0.0.5:3306/opensips',
        },
      },
    });
    for (const url of ['postgres://opensips@db.example.net/opensips', 'postgresql://opensips:pw@db.example.net:5432/opensips']) {
      const result = await check(url);
      assert.ok(result.ok && result.targets.droutingDb?.kind === 'postgres', url);
    }
    const refusals: [string, string, RegExp][] = [
      ['mysql://root:pw@10.0.0.6:3306/opensips', 'node_target_not_allowed', /host 10\.0\.0\.6 is not one of the node hosts/],
      ['http://10.0.0.5/opensips', 'invalid_field', /mysql:\/\/ URL or a postgres:\/\/ URL/],
      ['mysql://root:pw@10.0.0.5:3306/', 'invalid_field', /must name one database/],
      ['mysql://root:pw@10.0.0.5:3306/a/b', 'invalid_field', /must name one database/],
      ['mysql://root:pw@10.0.0.5:3306/opensips?socketPath=/tmp/x', 'invalid_field', /must not carry query options/],
      ['relative/opensips.sqlite', 'invalid_field', /absolute path/],
    ];
    for (const [url, code, pattern] of refusals) {
      const result = await check(url);
      assert.ok(!result.ok, url);
      assert.equal(result.code, code, url);
      assert.match(result.message, pattern, url);
      assert.doesNotMatch(result.message, /:pw@/, `${url}: the password stays out of the message`);
    }
  });
});
