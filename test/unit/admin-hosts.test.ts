import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { namesControlPlane } from '../../sync/admin/admin-hosts.js';

/**
 * The Host an operator's request must carry (sync/admin/admin-hosts.ts): a page elsewhere whose name is rebound to the
 * control plane's address still sends its own name, so only names no one else can point here are answered.
 */
describe('admin Host names', () => {
  const listed = new Set(['control.example.net']);

  it('takes an IP literal, IPv6 in brackets, localhost or a listed name, with or without a port, in any case', () => {
    const hosts = [
      '127.0.0.1',
      '127.0.0.1:8080',
      '203.0.113.5:80',
      '[::1]',
      '[::1]:8080',
      '[2001:db8::5]:443',
      '[::ffff:192.0.2.1]:8080',
      'localhost',
      'LocalHost:8080',
      'localhost.:8080',
      'control.example.net',
      'CONTROL.example.net:8443',
      'control.example.net.',
    ];
    for (const host of hosts) assert.equal(namesControlPlane(host, listed), true, host);
  });

  it('refuses any other name, a name that only starts or ends like a good one, and a malformed Host', () => {
    const hosts = [
      'attacker.example',
      'attacker.example:8080',
      'control.example.net.attacker.example',
      'evil-control.example.net',
      'sub.control.example.net',
      '127.0.0.1.attacker.example',
      'localhost.attacker.example',
      'sub.localhost',
      '',
      ':8080',
      '127.0.0.1:8080:8080',
      '127.0.0.1:',
      '127.0.0.1:http',
      '::1',
      '[::1',
      '[::1]8080',
      '[::1]:',
      '[fe80::1%eth0]',
      '[attacker.example]',
      '0x7f.1', // a browser sends 127.0.0.1 for it; only an odd client sends this, and it is no literal here
    ];
    for (const host of hosts) assert.equal(namesControlPlane(host, listed), false, JSON.stringify(host));
    assert.equal(namesControlPlane('control.example.net', new Set()), false, 'a name is answered only when listed');
  });
});
