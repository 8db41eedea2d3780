/**
 * Reading timeouts back out of `nginx -T` output, and what `check` concludes from them: the
 * kit agrees when old workers may outlive a replay and nginx waits for the fallback as long as
 * the daemon may take.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kitAgreement } from '../../src/commands/check-kit.js';
import type { Config } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';
import { directiveValues, locationBodies, parseNginxTime, proxyHeader, stripComments } from '../../src/nginx/directives.js';
import { fallbackKeyPath } from '../../src/nginx/fallback-key.js';
import { fallbackReadTimeout, renderSnippet } from '../../src/nginx/snippet.js';

function config(daemon: Record<string, unknown> = {}, session: Record<string, unknown> = {}): Config {
  const result = validateConfig({ daemon, sessions: [{ name: 'couch', url: 'http://127.0.0.1:5984', username: 'svc', password_env: 'P', include: '/var/lib/sr/couch.conf', ...session }] });
  if (!result.ok) throw new Error(result.problems.join('; '));
  return result.config;
}

describe('parseNginxTime', () => {
  it('reads nginx time values in seconds, bare numbers included', () => {
    const cases: [string, number][] = [['60', 60], ['30s', 30], ['1m', 60], ['1m30s', 90], ['500ms', 0.5], ['2h', 7200], ['1d', 86400], ['1w', 604800], ['1M', 2592000], ['1y', 31536000]];
    for (const [text, seconds] of cases) assert.equal(parseNginxTime(text), seconds, text);
  });

  it('refuses what nginx would not read as a time', () => {
    for (const text of ['', 's', '1x', '1.5s', '-1s', '1 m', 'off']) assert.equal(parseNginxTime(text), undefined, text);
  });
});

describe('reading directives', () => {
  const dump = `# configuration file /etc/nginx/nginx.conf:
worker_shutdown_timeout 45s; # was 30s; { not a block
http {
  server {
    location @session_refresh {
      proxy_set_header X-Session-Refresher-Session "couch";
      proxy_set_header X-Note "a # b { c } ;";
      proxy_read_timeout 2m;
    }
    location @other { proxy_read_timeout 5s; }
  }
}
`;

  it('finds a directive outside comments, and the body of a named location with quotes respected', () => {
    const text = stripComments(dump);
    assert.deepEqual(directiveValues(text, 'worker_shutdown_timeout'), ['45s']);
    const bodies = locationBodies(text, '@session_refresh');
    assert.equal(bodies.length, 1);
    assert.deepEqual(directiveValues(bodies[0]!, 'proxy_read_timeout'), ['2m']);
    assert.equal(proxyHeader(bodies[0]!, 'x-session-refresher-session'), 'couch');
    assert.equal(proxyHeader(bodies[0]!, 'X-Note'), 'a # b { c } ;');
    assert.equal(proxyHeader(bodies[0]!, 'X-Missing'), undefined);
  });
});

describe('kitAgreement', () => {
  const server = (c: Config) => renderSnippet('server', c, c.sessions[0]!, 'test');

  it('agrees with the generated snippet and a worker_shutdown_timeout as long as the replay timeout', () => {
    const c = config();
    const notes = kitAgreement(c, `worker_shutdown_timeout 60s;\nhttp { server {\n${server(c)}\n} }`);
    assert.deepEqual(notes.filter((n) => n.warn), []);
    assert.equal(notes.length, 3);
    assert.match(notes[0]!.detail, /^60s, not shorter than daemon\.replay_timeout \(60s\)$/);
    assert.equal(notes[1]!.detail, `location @session_refresh includes the fallback key ${fallbackKeyPath(c)}`);
    assert.match(notes[2]!.detail, new RegExp(`covers the ${fallbackReadTimeout(c, c.sessions[0]!)}s the daemon may take`));
  });

  it('warns when location @session_refresh does not send the fallback key, or includes another file', () => {
    const c = config();
    const key = fallbackKeyPath(c);
    for (const edit of [(t: string) => t.replace(`include ${key};`, ''), (t: string) => t.replace(`include ${key};`, 'include /etc/nginx/other-key.conf;')]) {
      const notes = kitAgreement(c, `worker_shutdown_timeout 60s;\nhttp { server {\n${edit(server(c))}\n} }`);
      const keyNote = notes.find((n) => n.detail.includes('fallback key'))!;
      assert.equal(keyNote.warn, true);
      assert.match(keyNote.detail, /does not include the fallback key .*refuses its requests with 403; regenerate the snippet with nginx-snippet$/);
    }
  });

  it('warns when old workers are cut before a replay may end, naming both values and what to do', () => {
    const c = config();
    const [shutdown] = kitAgreement(c, `worker_shutdown_timeout 30s;\nhttp { server {\n${server(c)}\n} }`);
    assert.equal(shutdown!.warn, true);
    assert.equal(shutdown!.detail, '30s is shorter than daemon.replay_timeout (60s): a reload cuts replays still running, with no log line; set worker_shutdown_timeout to at least 60s, or lower daemon.replay_timeout');
    assert.equal(kitAgreement(config({ replay_timeout: 20 }), 'worker_shutdown_timeout 30s;')[0]!.warn, false, 'a shorter replay timeout is the other way to agree');
  });

  it('does not warn when worker_shutdown_timeout is not set: old workers then wait for every request', () => {
    const [shutdown] = kitAgreement(config(), 'events {}');
    assert.equal(shutdown!.warn, false);
    assert.match(shutdown!.detail, /^not set: /);
  });

  it('warns when nginx would give up on the fallback before the daemon may answer, also when proxy_read_timeout is left at 60s', () => {
    const c = config();
    const needed = fallbackReadTimeout(c, c.sessions[0]!);
    for (const edit of [(t: string) => t.replace(/proxy_read_timeout \d+s;/, 'proxy_read_timeout 30s;'), (t: string) => t.replace(/proxy_read_timeout \d+s;/, '')]) {
      const notes = kitAgreement(c, `worker_shutdown_timeout 1m;\nhttp { server {\n${edit(server(c))}\n} }`);
      const fallback = notes.find((n) => n.what === 'session couch nginx fallback' && n.detail.includes('proxy_read_timeout'))!;
      assert.equal(fallback.warn, true);
      assert.match(fallback.detail, new RegExp(`is shorter than the ${needed}s the daemon may take .*regenerate the snippet with nginx-snippet$`));
    }
  });

  it('says so, without warning, when no fallback location names the session (refresh-now only)', () => {
    const c = config();
    const notes = kitAgreement(c, `worker_shutdown_timeout 60s;\nhttp { server {\n${renderSnippet('server', c, c.sessions[0]!, 'test', { withFallback: false })}\n} }`);
    assert.deepEqual(notes.map((n) => n.warn), [false, false]);
    assert.match(notes[1]!.detail, /no location @session_refresh sends this session/);
  });
});
