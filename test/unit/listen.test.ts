/**
 * Listen addresses for the fallback and admin endpoints, and the rule that keeps them on
 * loopback or a unix socket: they hand out a service account's session to whoever can reach them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, ExitCode } from '../../src/errors.js';
import { assertAllowed, isLoopbackHost, parseListen, showListen, type ListenAddress } from '../../src/daemon/listen.js';

function isConfigError(error: unknown): error is ConfigError {
  return error instanceof ConfigError && error.exitCode === ExitCode.CONFIG && error.exitCode === 78 && error.code === 'ERR_CONFIG';
}

describe('parseListen', () => {
  it('reads an IPv4 host and port', () => {
    assert.deepEqual(parseListen('127.0.0.1:8981'), { kind: 'tcp', host: '127.0.0.1', port: 8981 });
  });

  it('reads a bracketed IPv6 host without the brackets', () => {
    assert.deepEqual(parseListen('[::1]:9000'), { kind: 'tcp', host: '::1', port: 9000 });
  });

  it('reads a unix socket path', () => {
    assert.deepEqual(parseListen('unix:/run/x.sock'), { kind: 'unix', path: '/run/x.sock' });
  });

  it('reads a host name and port', () => {
    assert.deepEqual(parseListen('localhost:80'), { kind: 'tcp', host: 'localhost', port: 80 });
  });

  it('refuses text that is neither host:port nor unix:/path with a ConfigError quoting it', () => {
    for (const text of ['127.0.0.1', 'localhost:', 'localhost:http', ':8981', '']) {
      assert.throws(
        () => parseListen(text),
        (error: unknown) => isConfigError(error) && error.message.includes(`"${text}"`),
        `parseListen(${JSON.stringify(text)}) should throw`,
      );
    }
  });
});

describe('isLoopbackHost', () => {
  for (const host of ['127.0.0.1', '127.9.9.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost']) {
    it(`counts ${host} as loopback`, () => {
      assert.equal(isLoopbackHost(host), true);
    });
  }

  for (const host of ['0.0.0.0', '10.0.0.1', '::', '192.168.1.1', 'example.org', '::ffff:10.0.0.1', '128.0.0.1', '127.0.0.1.example.org', '']) {
    it(`does not count ${JSON.stringify(host)} as loopback`, () => {
      assert.equal(isLoopbackHost(host), false);
    });
  }
});

describe('assertAllowed', () => {
  it('refuses a wildcard TCP address with a ConfigError (exit 78) naming the key and the host', () => {
    assert.throws(
      () => assertAllowed(parseListen('0.0.0.0:80'), 'listen', false),
      (error: unknown) => isConfigError(error) && error.message.includes('daemon.listen') && error.message.includes('0.0.0.0') && error.message.includes('allow_non_loopback'),
    );
  });

  it('refuses non-loopback IPv6 and LAN addresses too', () => {
    assert.throws(() => assertAllowed(parseListen('[::]:80'), 'admin_listen', false), (error: unknown) => isConfigError(error) && error.message.includes('daemon.admin_listen'));
    assert.throws(() => assertAllowed(parseListen('192.168.1.1:8981'), 'listen', false), isConfigError);
  });

  it('allows any TCP address when allowNonLoopback is set', () => {
    assert.doesNotThrow(() => assertAllowed(parseListen('0.0.0.0:80'), 'listen', true));
    assert.doesNotThrow(() => assertAllowed(parseListen('[::]:80'), 'listen', true));
  });

  it('allows loopback TCP addresses', () => {
    for (const text of ['127.0.0.1:8981', '[::1]:9000', 'localhost:80']) {
      assert.doesNotThrow(() => assertAllowed(parseListen(text), 'listen', false), text);
    }
  });

  it('never refuses a unix socket', () => {
    assert.doesNotThrow(() => assertAllowed(parseListen('unix:/run/x.sock'), 'listen', false));
    assert.doesNotThrow(() => assertAllowed(parseListen('unix:/run/x.sock'), 'listen', true));
  });
});

describe('showListen', () => {
  for (const text of ['127.0.0.1:8981', '[::1]:9000', 'unix:/run/x.sock', 'localhost:80', '[::ffff:127.0.0.1]:1']) {
    it(`shows ${text} as it was written`, () => {
      assert.equal(showListen(parseListen(text)), text);
    });
  }

  it('gives back text that parses to the same address', () => {
    const addresses: ListenAddress[] = [
      { kind: 'tcp', host: '10.1.2.3', port: 65535 },
      { kind: 'tcp', host: 'fe80::1', port: 443 },
      { kind: 'tcp', host: 'example.org', port: 8080 },
      { kind: 'unix', path: '/var/run/session refresher/fallback.sock' },
    ];
    for (const address of addresses) assert.deepEqual(parseListen(showListen(address)), address);
  });

  it('brackets IPv6 hosts so the port stays readable', () => {
    assert.equal(showListen({ kind: 'tcp', host: '::1', port: 9000 }), '[::1]:9000');
  });
});
