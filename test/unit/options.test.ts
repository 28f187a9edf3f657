import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/sidecar/config.js';
import { loadControlConfig } from '../../sync/config.js';

/** Both processes check every option at start and name the flag that is wrong. */
describe('options', () => {
  it('reads the control plane from flags, else CONTROL_* variables, else defaults', () => {
    const defaults = loadControlConfig([], {});
    assert.deepEqual(defaults, {
      host: '127.0.0.1',
      port: 8080,
      dataDir: './data/control',
      logLevel: 'info',
      miTimeoutMs: 30_000,
      leaseValidSeconds: 900,
      consoleSampleSeconds: 10,
      nodeFilesRoots: ['data/control/nodes'],
      nodeHosts: '127.0.0.0/8,::1,localhost',
      maxInflightBodyBytes: 256 * 1024 * 1024,
      partner: null, // no partner listener without --partner-jwt-issuer
      deltaRetention: { count: 100_000, seconds: 86_400 },
      droutingFollowSeconds: 5,
      metricsToken: null, // only auth_ips addresses may scrape /metrics
      adminHostnames: [], // an operator's Host: IP literals and localhost only
      store: { engine: 'sqlite', path: 'data/control/config.db', shown: 'data/control/config.db' },
      command: 'serve',
    });
    const nodes = loadControlConfig(['--node-files-root', '/srv/a, /srv/b'], { CONTROL_NODE_HOSTS: '10.1.0.0/16,opensips-01' });
    assert.deepEqual([nodes.nodeFilesRoots, nodes.nodeHosts], [['/srv/a', '/srv/b'], '10.1.0.0/16,opensips-01']);
    const fromEnv = loadControlConfig(['--port', '0'], {
      CONTROL_PORT: '9000',
      CONTROL_LOG_LEVEL: 'debug',
      CONTROL_LEASE_VALID_SECONDS: '2',
    });
    assert.deepEqual([fromEnv.port, fromEnv.logLevel, fromEnv.leaseValidSeconds], [0, 'debug', 2]);
    assert.equal(loadControlConfig(['sync-run', '--data-dir', '/tmp/x'], {}).command, 'sync-run');
    assert.deepEqual(loadControlConfig(['--delta-retention-count', '5'], { CONTROL_DELTA_RETENTION_SECONDS: '60' }).deltaRetention, {
      count: 5,
      seconds: 60,
    });
    assert.equal(loadControlConfig(['migrate'], {}).command, 'migrate');
    assert.equal(loadControlConfig(['--drouting-follow-seconds', '0'], { CONTROL_DROUTING_FOLLOW_SECONDS: '9' }).droutingFollowSeconds, 0);
    assert.equal(loadControlConfig([], { CONTROL_DROUTING_FOLLOW_SECONDS: '9' }).droutingFollowSeconds, 9);
    assert.deepEqual(loadControlConfig(['--admin-hostnames', ' Control.Example.NET., console '], {}).adminHostnames, [
      'control.example.net',
      'console',
    ]);
    assert.deepEqual(loadControlConfig([], { CONTROL_ADMIN_HOSTNAMES: 'ops.internal' }).adminHostnames, ['ops.internal']);
  });

  it('reads the metrics scrape token from its file, else CONTROL_METRICS_TOKEN, and refuses a weak or malformed one', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'metrics-token-')), 'token');
    writeFileSync(file, 'from-the-file-0123456789\n');
    const env = { CONTROL_METRICS_TOKEN: 'from-the-environment-0123' };
    assert.equal(loadControlConfig(['--metrics-token-file', file], env).metricsToken, 'from-the-file-0123456789');
    assert.equal(loadControlConfig([], env).metricsToken, 'from-the-environment-0123');
    for (const token of ['short', 'has a space in it 0123456', 'quote"0123456789abcdef']) {
      assert.throws(
        () => loadControlConfig([], { CONTROL_METRICS_TOKEN: token }),
        /the metrics token must be at least 16 characters/,
        token,
      );
    }
    writeFileSync(file, '\n');
    assert.throws(() => loadControlConfig(['--metrics-token-file', file], {}), /is empty/);
  });

  it('reads the store location: config.db in the data directory by default, a path, sqlite:, or postgres:// shown without its password', () => {
    assert.deepEqual(loadControlConfig(['--data-dir', '/tmp/x'], {}).store, {
      engine: 'sqlite',
      path: '/tmp/x/config.db',
      shown: '/tmp/x/config.db',
    });
    assert.deepEqual(loadControlConfig(['--store', 'sqlite:/srv/centre.db'], {}).store, {
      engine: 'sqlite',
      path: '/srv/centre.db',
      shown: '/srv/centre.db',
    });
    assert.deepEqual(loadControlConfig([], { CONTROL_STORE: 'postgres://centre:s3cret@db:5432/centre' }).store, {
      engine: 'postgres',
      url: 'postgres://centre:s3cret@db:5432/centre',
      shown: 'postgres://centre:***@db:5432/centre',
    });
    const refused: [string, RegExp][] = [
      ['mysql://root:pw@db/centre', /--store "mysql:\/\/\*\*\*@db\/centre" is neither a file path/],
      ['postgres://db:5432', /names no host or no database/],
      ['sqlite:', /is neither a file path/],
    ];
    for (const [store, message] of refused) assert.throws(() => loadControlConfig(['--store', store], {}), message, store);
  });

  it('refuses a control plane option out of range, unknown, or of the wrong kind', () => {
    const refused: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--port', '99999'], {}, /--port must be an integer from 0 to 65535/],
      [['--port', '80x'], {}, /--port must be an integer/],
      [[], { CONTROL_PORT: '' }, /--port must be an integer/],
      [['--mi-timeout-ms', '0'], {}, /--mi-timeout-ms must be an integer from 100/],
      [['--mi-timeout-ms', '1e3'], {}, /--mi-timeout-ms must be an integer/],
      [['--lease-valid-seconds', '2.5'], {}, /--lease-valid-seconds must be an integer/],
      [['--log-level', 'verbose'], {}, /--log-level must be one of fatal, error/],
      [['--host', 'http://x'], {}, /--host must be a host name or an IP address/],
      [['--colour', 'red'], {}, /Unknown option '--colour'/],
      [['--node-hosts', 'http://x'], {}, /--node-hosts: "http:\/\/x" is neither a host name nor an IP address or network/],
      [
        ['--admin-hostnames', 'ok.example,https://console.example'],
        {},
        /--admin-hostnames: "https:\/\/console.example" is not a host name/,
      ],
      [[], { CONTROL_ADMIN_HOSTNAMES: 'console.example:8080' }, /--admin-hostnames: "console.example:8080" is not a host name/],
      [['--admin-hostnames', '*.example.net'], {}, /--admin-hostnames: "\*.example.net" is not a host name/],
      [['sync-now'], {}, /unknown command "sync-now"/],
      [['sync-run', 'twice'], {}, /unknown command "sync-run twice"/],
    ];
    for (const [argv, env, message] of refused) assert.throws(() => loadControlConfig(argv, env), message, argv.join(' '));
  });

  it('refuses a sidecar option out of range, unknown, or of the wrong kind', () => {
    assert.equal(loadConfig([], {}).port, 8090);
    assert.deepEqual(loadConfig(['--control-url', 'http://a:8080, https://b:8443'], {}).controlUrls, ['http://a:8080', 'https://b:8443']);
    // A sliced call is ended 6 s ahead of its paid time, a quarter of a slice for short slices, unless told.
    assert.equal(loadConfig([], {}).sliceEndMarginMs, 6000);
    assert.equal(loadConfig(['--slice-seconds', '8'], {}).sliceEndMarginMs, 2000);
    assert.equal(loadConfig(['--slice-seconds', '12'], { SIDECAR_SLICE_END_MARGIN_MS: '4500' }).sliceEndMarginMs, 4500);
    // A round of the 200 ms interval's CDRs at 1,000 calls/s unless told; 0 turns the count off.
    assert.equal(loadConfig([], {}).roundCdrs, 200);
    assert.equal(loadConfig([], { SIDECAR_ROUND_CDRS: '0' }).roundCdrs, 0);
    const refused: [string[], RegExp][] = [
      [['--port=-1'], /--port must be an integer from 0 to 65535/],
      [['--max-body-bytes', '10'], /--max-body-bytes must be an integer from 1024/],
      [['--durability', 'sometimes'], /--durability must be one of normal, full/],
      [['--lease-chunk', '0'], /--lease-chunk must be a positive decimal amount/],
      [['--control-url', 'http://centre:8080/api'], /--control-url must be http\(s\):\/\/host:port with no path/],
      [['--control-url', 'http://a:8080,'], /--control-url must be/],
      [['--control-url', 'http://a:8080,file:///etc/passwd'], /--control-url must be/],
      [['--control-url', Array.from({ length: 9 }, (_, i) => `http://c${i}:8080`).join(',')], /up to 8 of them/],
      [['--log-level', 'loud'], /--log-level must be one of/],
      // More than a round carries could never send one.
      [['--round-cdrs', '1001'], /--round-cdrs must be an integer from 0 to 1000/],
      // As long as the renewal's lead (half a slice): no retry of the next slice would be left before the end.
      [['--slice-seconds', '12', '--slice-end-margin-ms', '6000'], /--slice-end-margin-ms must be an integer from 0 to 5999/],
      [['--slice-end-margin-ms=-1'], /--slice-end-margin-ms must be an integer from 0 to 29999/],
      [['--nope'], /Unknown option '--nope'/],
    ];
    for (const [argv, message] of refused) assert.throws(() => loadConfig(argv, {}), message, argv.join(' '));
  });
});
