/**
 * Real clients through the real stack while the backend keeps dropping the session: the
 * backend's cookie secret is changed through its `_config` every 3 s (data kept), and the daemon
 * runs with default settings (only paths and ports set). PouchDB (the npm `pouchdb` library)
 * pull-replicates a members-only database live with `retry: true` while the backend is
 * written to directly; the `nano` client makes 2,000 single-document writes at concurrency 20.
 * Both go through nginx without credentials: nginx sends the daemon's session cookie and routes
 * the backend's 401s to the daemon's fallback. What the clients got is checked on the backend
 * directly and in nginx's access log.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readAccessLog, tally } from '../helpers/access-log.js';
import { writeToBackend } from '../helpers/backend-writer.js';
import { backendRevs, backendState, createMembersOnlyDb, seedDocsWithAttachments } from '../helpers/couch-data.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';
import { diffStates, isEmptyDiff } from '../helpers/doc-diff.js';
import { writeWithNano } from '../helpers/nano-writes.js';
import { skipWithoutNginx } from '../helpers/nginx.js';
import { pullLive, waitForReplica, type PullReplica } from '../helpers/pouch-replica.js';
import { rotateSecretEvery } from '../helpers/secret-rotation.js';
import { startStack, type Stack } from '../helpers/stack.js';

const skip = skipWithoutNginx();

const ROTATE_EVERY_MS = 3_000;
const SEEDED_DOCS = 1_000;
const NANO_WRITES = 2_000;
const NANO_CONCURRENCY = 20;
/** Direct writes to the backend during the replication: 350 writes over at least 24 s (8 invalidations). */
const WRITER = { creates: 200, updates: 100, deletes: 50, spreadOverMs: 24_000 };
/** How long the replica may take to catch up once the writes are done. */
const CATCH_UP_MS = 45_000;

/** Keeps only what this stack must set (paths, ports, the account): everything else is the default. */
function defaultsOnly(stack: Stack): void {
  const keep = (o: Record<string, unknown>, keys: string[]) => Object.keys(o).filter((k) => !keys.includes(k)).forEach((k) => delete o[k]);
  keep(stack.config, ['state_dir', 'nginx', 'daemon', 'sessions']);
  keep(stack.config.nginx as Record<string, unknown>, ['binary', 'prefix', 'config', 'pid_file']);
  keep(stack.config.daemon as Record<string, unknown>, ['listen', 'admin_listen', 'fallback_key_file']);
  keep(stack.session, ['name', 'url', 'username', 'password_file', 'include']);
}

const sample = (ids: string[]) => ids.slice(0, 5).join(', ') + (ids.length > 5 ? ', …' : '');
const count = (xs: number[], status: number) => xs.filter((s) => s === status).length;

describe('real clients through nginx while the backend\'s secret changes every 3 s (default settings)', { skip }, () => {
  test('PouchDB replicates everything, nano loses no write, no 401 reaches either, and logins stay within invalidations + 1', { timeout: 240_000 }, async (t) => {
    const started = Date.now();
    const stack = await startStack({ fallback: true, accessLog: true });
    let daemon: Daemon | undefined;
    let replica: PullReplica | undefined;
    const { couch, nginx } = stack;
    try {
      defaultsOnly(stack);
      await stack.writeConfig();
      await createMembersOnlyDb(couch, 'clients', [couch.admin.name]);
      await createMembersOnlyDb(couch, 'writes', [couch.admin.name]);
      const anonymous = await fetch(`${couch.url}/clients`);
      assert.equal(anonymous.status, 401, 'the databases are members-only: a request without a valid session gets 401 at the backend');
      const seeded = await seedDocsWithAttachments(couch, 'clients', SEEDED_DOCS);

      daemon = await startDaemon(stack.configPath);
      await nginx.waitForGeneration(1);

      // The run: the session the daemon logged in with dies before any client starts, then again
      // every 3 s, while three workloads run at once.
      const runStarted = Date.now();
      await couch.rotateSecret();
      const rotation = rotateSecretEvery(couch, ROTATE_EVERY_MS);
      replica = pullLive(`${nginx.url}/clients`);
      const [written, nanoResult] = await Promise.all([writeToBackend(couch, 'clients', seeded, WRITER), writeWithNano(nginx.url, 'writes', NANO_WRITES, NANO_CONCURRENCY)]);
      const expected = await backendState(couch, 'clients');
      const workloadsEnded = Date.now();
      const caughtUp = await waitForReplica(replica, expected, CATCH_UP_MS);
      const rotations = 1 + (await rotation.stop());

      // One more client request once the secret stops changing: it lets a login due to the last
      // rotation happen, so the login count below is complete.
      const last = await fetch(`${nginx.url}/writes?after-run`);
      await last.arrayBuffer();
      const local = await replica.state();
      // How the replication stood before it is cancelled (cancelling completes it).
      const replication = { ...replica.report, errorStatuses: [...replica.report.errorStatuses] };
      await replica.close();
      await couch.settle();
      const logins = couch.logins();
      const nanoRevs = await backendRevs(couch, 'writes', [...nanoResult.acknowledged.keys(), ...nanoResult.failed.map((f) => f.id)]);
      const log = await readAccessLog(nginx.accessLog!);

      const diff = diffStates(expected, local);
      const live = [...expected.values()].filter((d) => !d.deleted).length;
      // A write nano got an HTTP error answer for was refused; one without an answer had its kept-alive
      // connection closed under it (nginx closes idle client connections when a reload retires a
      // worker): reported, not asserted, since no cookie handling can prevent it.
      const refused = nanoResult.failed.filter((f) => f.status !== 0);
      const dropped = nanoResult.failed.filter((f) => f.status === 0);
      const lost = [...nanoResult.acknowledged].filter(([id, rev]) => nanoRevs.get(id) !== rev).map(([id]) => id);
      const unauthorized = log.filter((e) => e.status === 401);
      const replayed = log.filter((e) => e.upstream_status.startsWith('401')).length;
      const pouch401 = unauthorized.filter((e) => e.uri.startsWith('/clients')).length;
      const nano401 = unauthorized.filter((e) => e.uri.startsWith('/writes/')).length;
      const other401 = unauthorized.length - pouch401 - nano401;
      const nanoWindow = rotation.times.filter((at) => at >= nanoResult.startedAt && at <= nanoResult.endedAt).length;
      const secs = (ms: number) => (ms / 1000).toFixed(1);
      t.diagnostic(`duration ${secs(Date.now() - started)} s (setup ${secs(runStarted - started)}, workloads ${secs(workloadsEnded - runStarted)}, catch-up and checks ${secs(Date.now() - workloadsEnded)}); rotations ${rotations} (1 before the clients started, ${nanoWindow} during the nano writes); logins ${logins}; nginx reloads ${await nginx.reloads()}`);
      t.diagnostic(
        `pouchdb: backend ${expected.size} docs (${live} live, ${expected.size - live} deleted; seeded ${SEEDED_DOCS}, then ${written.creates} created, ${written.updates} updated, ${written.deletes} deleted during the run); ` +
          `replica ${local.size} docs, caught up ${caughtUp.matched} after ${caughtUp.waitedMs} ms; missing ${diff.missing.length}, wrong revision ${diff.wrongRevision.length}, extra ${diff.extra.length}, ` +
          `attachments checked ${diff.attachmentsChecked}, wrong ${diff.wrongAttachment.length}; replication ${replication.ended ?? 'live'}${replication.fatal ? ` (${replication.fatal})` : ''}, docs written ${replication.docsWritten}, errors seen ${JSON.stringify(replication.errorStatuses)}`,
      );
      t.diagnostic(
        `nano: ${nanoResult.acknowledged.size} of ${NANO_WRITES} writes acknowledged in ${secs(nanoResult.endedAt - nanoResult.startedAt)} s, refused ${refused.length} ${JSON.stringify(tally(refused, (f) => String(f.status)))}, ` +
          `failed without an answer ${dropped.length}${dropped.length ? ` (${dropped[0]!.message}; on the backend all the same: ${dropped.filter((f) => nanoRevs.get(f.id) !== undefined).length})` : ''}, ` +
          `acknowledged but not on the backend with that revision ${lost.length}`,
      );
      t.diagnostic(
        `nginx access log: ${log.length} requests, ${unauthorized.length} answered 401 (pouchdb ${pouch401}, nano ${nano401}, the request after the run ${other401}), ${replayed} routed to the fallback after a backend 401; statuses ${JSON.stringify(tally(log, (e) => String(e.status)))}; ` +
          `401s by request ${JSON.stringify(tally(unauthorized, (e) => `${e.method} ${e.uri.replace(/^(\/[^/?]+\/?[^/?]*).*$/, '$1').replace(/\/(doc|live|w)-\d+$/, '/$1-N')}`))}`,
      );

      // The daemon's own account, for whoever reads a failure: warnings and errors, and the replay outcomes.
      const events = daemon.events();
      const warnings = tally(events.filter((e) => ['warn', 'error', 'fatal'].includes(String(e.level))), (e) => `${String(e.msg)}${e.outcome ? ` (${String(e.outcome)})` : ''}`);
      t.diagnostic(`daemon: replay outcomes ${JSON.stringify(tally(events.filter((e) => e.outcome !== undefined), (e) => String(e.outcome)))}; warnings and errors ${JSON.stringify(warnings)}`);

      // Preconditions: without them the figures below would prove nothing.
      assert.deepEqual(rotation.failures.map((e) => e.message), [], 'every secret rotation was accepted by the backend');
      assert.ok(rotations >= 5, `the secret changed ${rotations} times during the run; at least 5 are needed for the run to test anything`);
      // Every write nano got an HTTP answer for must be in the log (a connection error has none).
      const answered = NANO_WRITES - dropped.length;
      const loggedNanoPuts = log.filter((e) => e.method === 'PUT' && e.uri.startsWith('/writes/')).length;
      assert.ok(loggedNanoPuts >= answered, `nginx's access log holds ${loggedNanoPuts} nano writes, nano had ${answered} answers: the log does not record every client request`);

      await t.test('PouchDB received every document, revision and attachment the backend holds', () => {
        assert.ok(live >= SEEDED_DOCS, `at least ${SEEDED_DOCS} live documents to replicate (${live})`);
        assert.equal(replication.ended, undefined, `the live replication stopped on its own: ${replication.fatal ?? 'complete'}`);
        assert.ok(
          isEmptyDiff(diff),
          `the replica differs from the backend: ${diff.missing.length} of ${expected.size} documents missing (${sample(diff.missing)}), ` +
            `${diff.wrongRevision.length} with other revisions (${sample(diff.wrongRevision)}), ${diff.extra.length} extra, ${diff.wrongAttachment.length} attachments differ (${sample(diff.wrongAttachment)})`,
        );
      });

      await t.test('nano: no write was refused, and every acknowledged write is on the backend with its revision', () => {
        assert.deepEqual(lost, [], `${lost.length} acknowledged writes are missing on the backend or carry another revision`);
        assert.equal(refused.length, 0, `${refused.length} of ${NANO_WRITES} writes were refused ${JSON.stringify(tally(refused, (f) => String(f.status)))}, e.g. ${JSON.stringify(refused.slice(0, 3))}`);
      });

      await t.test('no response with status 401 reached either client', () => {
        // The clients' own view must agree with the log; this also checks that the log is read right.
        const nanoSaw401 = count(nanoResult.failed.map((f) => f.status), 401);
        assert.ok(nano401 >= nanoSaw401, `nano saw ${nanoSaw401} 401s, the access log shows ${nano401}`);
        assert.equal(unauthorized.length, 0, `${unauthorized.length} responses with status 401 reached clients (pouchdb ${pouch401}, nano ${nano401}, the request after the run ${other401}); PouchDB itself reported ${count(replication.errorStatuses, 401)}, nano ${nanoSaw401}`);
      });

      await t.test('the daemon logged in at most once per invalidation, plus once at start', () => {
        assert.ok(logins <= rotations + 1, `${logins} logins for ${rotations} invalidations`);
      });
    } finally {
      await replica?.close().catch(() => undefined);
      await daemon?.stop();
      await stack.stop();
    }
  });
});
