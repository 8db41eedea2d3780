import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/validate.js';
import type { Config } from '../../src/config/schema.js';
import { fallbackReadTimeout, fillTemplate, renderSnippet, selectFallback, snippetValues } from '../../src/nginx/snippet.js';

function config(session: Record<string, unknown> = {}, daemon: Record<string, unknown> = {}): Config {
  const result = validateConfig({ daemon, sessions: [{ name: 'couch', url: 'http://127.0.0.1:5984', username: 'svc', password_env: 'P', include: '/var/lib/session-refresher/couch.conf', ...session }] });
  if (!result.ok) throw new Error(result.problems.join('; '));
  return result.config;
}

describe('nginx snippets', () => {
  it('fills every placeholder and refuses a template placeholder it has no value for', () => {
    assert.equal(fillTemplate('a {{x}} b {{y}}', { x: '1', y: '2' }), 'a 1 b 2');
    assert.throws(() => fillTemplate('{{missing}}', {}), /\{\{missing\}\} has no value/);
  });

  it('drops the fallback blocks and their markers without the daemon, keeps the blocks with it', () => {
    const template = 'keep\n#>fallback\nerror_page 401 = @x;\n#<fallback\nalso';
    assert.equal(selectFallback(template, false), 'keep\nalso');
    assert.equal(selectFallback(template, true), 'keep\nerror_page 401 = @x;\nalso');
  });

  it('renders the server part with the session, variable, include and fallback address', () => {
    const c = config({ variable: 'couch_cookie' }, { listen: 'unix:/run/session-refresher/fallback.sock' });
    const text = renderSnippet('server', c, c.sessions[0]!, '1.2.3');
    assert.match(text, /^include \/var\/lib\/session-refresher\/couch\.conf;$/m);
    assert.match(text, /^ {4}proxy_set_header Cookie \$couch_cookie;$/m);
    assert.match(text, /^ {4}proxy_set_header X-Session-Refresher-Generation \$couch_cookie_generation;$/m);
    assert.match(text, /^ {4}proxy_pass http:\/\/unix:\/run\/session-refresher\/fallback\.sock:;$/m);
    assert.match(text, /^ {4}include \/var\/lib\/session-refresher\/fallback-key\.conf;$/m, 'the fallback location sends the install\'s key');
    assert.match(text, /^location = \/_session \{\n {4}return 403;\n\}$/m);
    assert.doesNotMatch(text, /\{\{|#>|#</);
  });

  it('uses the unix socket by default, and includes daemon.fallback_key_file when set', () => {
    const c = config({}, { fallback_key_file: '/etc/nginx/sr-key.conf' });
    const text = renderSnippet('server', c, c.sessions[0]!, 'x');
    assert.match(text, /^ {4}proxy_pass http:\/\/unix:\/run\/session-refresher\/fallback\.sock:;$/m);
    assert.match(text, /^ {4}include \/etc\/nginx\/sr-key\.conf;$/m);
    assert.doesNotMatch(renderSnippet('server', c, c.sessions[0]!, 'x', { withFallback: false }), /sr-key/, 'without the fallback, no key is sent');
  });

  it('renders an https upstream with server name and the configured CA', () => {
    const c = config({ url: 'https://couch.example.org:6984', ca_file: '/etc/ssl/couch-ca.pem' });
    const server = renderSnippet('server', c, c.sessions[0]!, 'x');
    const http = renderSnippet('http', c, c.sessions[0]!, 'x');
    assert.match(http, /server couch\.example\.org:6984;/);
    assert.match(server, /proxy_pass https:\/\/session_refresher_couch;/);
    assert.match(server, /proxy_ssl_name couch\.example\.org;/);
    assert.match(server, /proxy_ssl_trusted_certificate \/etc\/ssl\/couch-ca\.pem;/);
  });

  it('refuses values that would be unsafe in nginx syntax, naming the key', () => {
    const c = config({ include: '/var/lib/x y;/couch.conf' });
    assert.throws(() => snippetValues(c, c.sessions[0]!, 'x'), (e: Error & { exitCode?: number }) => e.exitCode === 78 && /include: .* has characters/.test(e.message));
    const prefixed = config({ url: 'http://127.0.0.1:5984/couch/' });
    assert.throws(() => snippetValues(prefixed, prefixed.sessions[0]!, 'x'), /supports a backend at "\/" only/);
  });
  it('lets nginx wait for the fallback as long as the daemon may take: lock, every login attempt with backoff, and the replay', () => {
    const c = config({ timeout: 10, retries: 2 }, { replay_timeout: 60 });
    assert.equal(fallbackReadTimeout(c, c.sessions[0]!), 30 + 10 * 3 + 5 * 2 + 60);
    const text = renderSnippet('server', c, c.sessions[0]!, 'x');
    assert.match(text, /^ {4}proxy_read_timeout 130s;$/m);
    assert.match(text, /worker_shutdown_timeout \(main context\) to at least\n# 60s, daemon\.replay_timeout/);
  });
});

describe('nginx snippets per credential kind', () => {
  it('sends the token as Authorization and no client cookie for a token kind, and passes the 401\'s challenge on', () => {
    const result = validateConfig({
      daemon: { listen: '127.0.0.1:8091' },
      sessions: [{ name: 'api', kind: 'oauth2-client-credentials', url: 'http://127.0.0.1:9000', token_url: 'https://idp.example/oauth2/token', client_id: 'proxy', client_secret_file: '/etc/session-refresher/api.secret', include: '/var/lib/session-refresher/api.conf' }],
    });
    assert.ok(result.ok, result.ok ? '' : result.problems.join('; '));
    const c = result.config;
    const text = renderSnippet('server', c, c.sessions[0]!, 'x');
    assert.match(text, /^ {4}proxy_set_header Authorization \$auth_authorization;$/m);
    assert.match(text, /^ {4}proxy_set_header Cookie "";$/m, 'the client\'s cookies are not forwarded');
    assert.match(text, /^ {4}set \$session_refresher_challenge \$upstream_http_www_authenticate;$/m);
    assert.match(text, /^ {4}proxy_set_header X-Session-Refresher-Challenge \$session_refresher_challenge;$/m);
    assert.match(text, /access token/, 'the comment says what the include holds');
    assert.doesNotMatch(text, /\{\{|#>|#</);
  });

  it('sends the cookie and no client Authorization for couchdb-session, and guards a Sync Gateway session path', () => {
    const c = config({ login_format: 'json', cookie_name: 'SyncGatewaySession', session_path: '/db/_session' });
    const text = renderSnippet('server', c, c.sessions[0]!, 'x');
    assert.match(text, /^ {4}proxy_set_header Cookie \$auth_cookie;$/m);
    assert.match(text, /^ {4}proxy_set_header Authorization "";$/m);
    assert.match(text, /^location = \/db\/_session \{\n {4}return 403;\n\}$/m);
    assert.match(text, /^location = \/_session \{\n {4}return 403;\n\}$/m);
  });
});
