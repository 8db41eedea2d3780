/**
 * `check`: is everything in place for a refresh to succeed? Lists every problem found (config,
 * password sources, backend reachability, include and state directories, nginx -t, the pid file)
 * and exits non-zero when there is any. It does not log in.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { dirname } from 'node:path';
import got from 'got';
import type { AnySessionConfig, Config } from '../config/schema.js';
import { ExitCode, RefresherError, describeSystemError, type ExitCodeValue } from '../errors.js';
import { lookupMaster } from '../nginx/master.js';
import { dumpNginxConfig, nginxTestArgv, testNginxConfig } from '../nginx/test-config.js';
import { MAX_LOGIN_BODY_BYTES, boundedBody, displayUrl, sessionUrl, type Overflow } from '../session/login.js';
import { readSecretLine, sessionSecret } from '../credentials/secret.js';
import { fileFindings } from './check-files.js';
import { kitAgreement } from './check-kit.js';
import { loadFromOptions, stdOutput, type GlobalOptions } from './context.js';

interface Finding {
  ok: boolean;
  /** A problem that does not fail the check (printed WARN; the exit code stays 0). */
  warn?: boolean;
  what: string;
  detail: string;
  exitCode: ExitCodeValue;
}

/** Runs every check; returns 0 when all pass, else the exit code of the first problem. */
export async function check(options: GlobalOptions): Promise<ExitCodeValue> {
  const { config, source } = loadFromOptions(options);
  const findings: Finding[] = [{ ok: true, what: 'config', detail: `${source}: ${config.sessions.length} session(s)`, exitCode: ExitCode.OK }];
  findings.push(await writableDir(config.state_dir, 'state_dir', true));
  for (const session of config.sessions) findings.push(...(await checkSession(session)));
  if (config.cluster) findings.push(await checkCluster(config));
  const files = await fileFindings(config);
  findings.push(...files.findings);
  if (files.includesReadable) {
    findings.push(...(await checkNginx(config)));
    findings.push(...(await checkKit(config)));
  } else {
    findings.push({ ok: false, what: 'nginx -t', detail: 'not run: an include is not a regular file, and nginx would block reading it; fix the include first', exitCode: ExitCode.CANNOT_WRITE });
  }
  for (const f of findings) (f.ok && !f.warn ? stdOutput.line : stdOutput.warn)(`${f.ok ? (f.warn ? 'WARN' : 'ok') : 'FAIL'}  ${f.what}: ${f.detail}`);
  const failures = findings.filter((f) => !f.ok);
  const warnings = findings.filter((f) => f.ok && f.warn).length;
  const noted = warnings > 0 ? ` (${warnings} warning(s))` : '';
  stdOutput.line(failures.length === 0 ? `all checks passed${noted}` : `${failures.length} problem(s) found${noted}`);
  return failures[0]?.exitCode ?? ExitCode.OK;
}

/** With `cluster:`: the fleet store answers with the configured password and TLS, and what it holds. */
async function checkCluster(config: Config): Promise<Finding> {
  const what = 'cluster store';
  try {
    const look = await (await import('../fleet/ask-store.js')).lookAtStore(config.cluster!, config.sessions.map((s) => s.name));
    if (!look.connected) return { ok: false, what, detail: `${look.where}: ${look.problem}; the daemons keep their sessions but share nothing until it answers`, exitCode: ExitCode.TEMPFAIL };
    const held = [...look.records].map(([name, record]) => `${name} ${record ? `generation ${record.generation} from ${record.issuedBy}` : 'nothing published yet'}`);
    return { ok: true, what, detail: `${look.where}: connected; ${held.join(', ')}`, exitCode: ExitCode.OK };
  } catch (error) {
    return failure(what, error);
  }
}

/** Warnings where nginx's configuration (nginx -T) and the daemon's timing disagree. */
async function checkKit(config: Config): Promise<Finding[]> {
  const dump = await dumpNginxConfig(config.nginx);
  if (!dump.ok) return [{ ok: true, warn: true, what: 'nginx timeouts', detail: `not compared with the daemon's: ${dump.why} (run check as root)`, exitCode: ExitCode.OK }];
  return kitAgreement(config, dump.text).map((n) => ({ ok: true, warn: n.warn, what: n.what, detail: n.detail, exitCode: ExitCode.OK }));
}

async function checkSession(session: AnySessionConfig): Promise<Finding[]> {
  const out: Finding[] = [];
  const what = `session ${session.name}`;
  const secret = sessionSecret(session);
  try {
    await readSecretLine(secret);
    out.push({ ok: true, what: `${what} ${secret.what}`, detail: 'readable and not empty', exitCode: ExitCode.OK });
  } catch (error) {
    out.push(failure(`${what} ${secret.what}`, error));
  }
  if (session.kind === 'basic') {
    out.push({ ok: true, warn: true, what: `${what} include`, detail: `kind basic: ${session.include} holds the password itself (base64 is no protection); keep it 0640 and readable by nginx only, and prefer a kind with expiring credentials where the backend has one`, exitCode: ExitCode.OK });
  }
  for (const target of reachabilityTargets(session)) out.push(await backendReachable(session, target));
  out.push(await writableDir(dirname(session.include), `${what} include directory`, false));
  return out;
}

/** What `check` asks for a session: its login path on CouchDB, the backend and the token endpoint otherwise. */
function reachabilityTargets(session: AnySessionConfig): { url: URL; what: string; login: boolean }[] {
  const what = `session ${session.name}`;
  switch (session.kind) {
    case 'couchdb-session':
      return [{ url: sessionUrl(session.url, session.session_path), what: `${what} backend`, login: true }];
    case 'oauth2-client-credentials':
      return [{ url: new URL(session.url), what: `${what} backend`, login: false }, { url: new URL(session.token_url), what: `${what} token endpoint`, login: false }];
    case 'cloudant-iam':
      return [{ url: new URL(session.url), what: `${what} backend`, login: false }, { url: new URL(session.iam_url), what: `${what} IAM token endpoint`, login: false }];
    default:
      return [{ url: new URL(session.url), what: `${what} backend`, login: false }];
  }
}

async function backendReachable(session: AnySessionConfig, target: { url: URL; what: string; login: boolean }): Promise<Finding> {
  const { url, what } = target;
  const overflow: Overflow = {};
  try {
    const res = await boundedBody(got.get(url, { throwHttpErrors: false, followRedirect: false, retry: { limit: 0 }, timeout: { request: session.timeout * 1000 }, decompress: false }), overflow);
    if (res.statusCode === 404 && target.login) return { ok: false, what, detail: `${displayUrl(url)} answered 404: no /_session there; check url`, exitCode: ExitCode.PROTOCOL };
    if (res.statusCode >= 500) return { ok: false, what, detail: `${displayUrl(url)} answered ${res.statusCode}`, exitCode: ExitCode.BACKEND_UNAVAILABLE };
    return { ok: true, what, detail: `${displayUrl(url)} answered ${res.statusCode}`, exitCode: ExitCode.OK };
  } catch (error) {
    if (overflow.cut) return { ok: false, what, detail: `${displayUrl(url)} answered with a body over ${MAX_LOGIN_BODY_BYTES} bytes; a CouchDB-style /_session answers a few hundred`, exitCode: ExitCode.COOKIE_REFUSED };
    return { ok: false, what, detail: `cannot reach ${displayUrl(url)}: ${describeSystemError(error)}`, exitCode: ExitCode.BACKEND_UNAVAILABLE };
  }
}

async function writableDir(dir: string, what: string, mayCreate: boolean): Promise<Finding> {
  try {
    await access(dir, constants.W_OK | constants.X_OK);
    return { ok: true, what, detail: `${dir} is writable`, exitCode: ExitCode.OK };
  } catch (error) {
    if (mayCreate) {
      try {
        await access(dirname(dir), constants.W_OK | constants.X_OK);
        return { ok: true, what, detail: `${dir} will be created`, exitCode: ExitCode.OK };
      } catch {
        /* fall through to the original problem */
      }
    }
    return { ok: false, what, detail: `${dir} is not writable by this user (${describeSystemError(error)})`, exitCode: ExitCode.CANNOT_WRITE };
  }
}

async function checkNginx(config: Config): Promise<Finding[]> {
  const out: Finding[] = [];
  if (config.nginx.test) {
    try {
      await testNginxConfig(config.nginx);
      out.push({ ok: true, what: 'nginx -t', detail: `${nginxTestArgv(config.nginx).join(' ')} passed`, exitCode: ExitCode.OK });
    } catch (error) {
      out.push(failure('nginx -t', error));
    }
  }
  if (config.nginx.reload_command === undefined) out.push(await pidFileFinding(config.nginx.pid_file));
  return out;
}

async function pidFileFinding(pidFile: string): Promise<Finding> {
  const what = 'nginx pid file';
  const notRunning = (why: string): Finding => ({ ok: true, what, detail: `${why}; nginx seems not to be running (refresh will write the include and skip the reload)`, exitCode: ExitCode.OK });
  const master = await lookupMaster(pidFile);
  switch (master.state) {
    case 'no-pid-file':
      return notRunning(`no pid file at ${pidFile}`);
    case 'empty':
      return notRunning(`${pidFile} is empty`);
    case 'gone':
      return notRunning(`${pidFile} is stale (pid ${master.pid} is gone)`);
    case 'nginx-master':
      return { ok: true, what, detail: `${pidFile} names the nginx master ${master.pid}`, exitCode: ExitCode.OK };
    case 'unreadable':
      return { ok: false, what, detail: `cannot read ${pidFile}: ${describeSystemError(master.error)}; check nginx.pid_file`, exitCode: ExitCode.RELOAD_FAILED };
    case 'not-a-pid':
      return { ok: false, what, detail: `${pidFile} does not hold a pid; check nginx.pid_file`, exitCode: ExitCode.RELOAD_FAILED };
    case 'other':
      return { ok: false, what, detail: `${pidFile} names pid ${master.pid} ("${master.command}"), which is not an nginx master; check nginx.pid_file`, exitCode: ExitCode.RELOAD_FAILED };
  }
}

function failure(what: string, error: unknown): Finding {
  if (error instanceof RefresherError) return { ok: false, what, detail: error.message, exitCode: error.exitCode };
  return { ok: false, what, detail: describeSystemError(error), exitCode: ExitCode.INTERNAL };
}
