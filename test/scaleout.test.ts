/**
 * Scale-out with real processes (issue 12 "Tests"): three gateway `voxgate serve` processes and two
 * engine workers (`voxgate serve --worker`) on loopback, sharing one real Redis (Debian
 * `redis-server`, test/support/servers.ts) and one real PostgreSQL key store (`storage.url`). The
 * workers register in Redis; the gateways reach them through `workers`-type backends
 * (src/engines/stt/upstream/workers.ts, src/server/router.ts).
 *
 * The gateways and workers run deploy/gateway.json and deploy/worker.json (what deploy/docker-compose.yml
 * mounts), with this test's server URLs and shorter lease/report periods.
 *
 * Cases: a key created with the CLI on gateway A's config works on B and C, and revoked on C's is
 * refused on A within 5 s; least-loaded worker routing and a region without workers; a per-key cap of 3 sessions across
 * the three gateways (the 4th gets `rate_limit`); kill -9 of a gateway (its leases expire, the key's
 * sessions reopen elsewhere); Redis stopped mid-run (sessions continue, limits fall back to each
 * gateway, then reconverge after the restart); SIGTERM on a gateway with 3 live sessions (every final
 * arrives, `/healthz` 503 while draining, exit 0).
 *
 * Deterministic: every wait is on an observable state (a worker's log line, `/v1/status`, a refused
 * or accepted handshake), polled with a generous bound, never a fixed sleep.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadClip, openSocket, silence, type Clip, type RecordingClient } from './helpers.js';
import { spawnSync } from 'node:child_process';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from './support/servers.js';
import { startVoxgateProcess, stopAllProcesses, type VoxgateProcess } from './support/processes.js';
import { openStore } from '../src/store/index.js';
import { packageRoot } from '../src/util/paths.js';

const MODEL = 'slng/deepgram/nova:3-en';
/** Lease TTL of the gateways, ms: a killed gateway's slots free after at most this (+ a heartbeat). */
const LEASE_TTL_MS = 1500;

interface Cluster {
  instance: string;
  shared: boolean;
  fallback: boolean;
  sessions: { session_id: string; instance: string; key_id: string }[];
  workers: { id: string; sessions: number; load: number }[];
}

/** Poll `fn` every 50 ms until it resolves truthy; throws after `ms`. */
async function until<T>(fn: () => Promise<T | false | null | undefined>, ms: number, what: string): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('three gateways and two registering workers on one Redis', () => {
  let redis: RedisServer;
  let pg: PostgresServer;
  let shared: string;
  let capped: string;
  let cappedId: string;
  let workerKey: string;
  let w1: VoxgateProcess;
  let w2: VoxgateProcess;
  const gws: VoxgateProcess[] = [];
  let clip: Clip;
  const clients: RecordingClient[] = [];

  /** The deploy/ config files (docker-compose.yml mounts them), with this test's servers and shorter periods. */
  const deployConfig = (file: string) => JSON.parse(readFileSync(path.join(packageRoot(), 'deploy', file), 'utf8')) as Record<string, Record<string, unknown>>;
  const gatewayConfig = () => {
    const base = deployConfig('gateway.json');
    return { ...base, state: { ...base.state, redisUrl: redis.url, leaseTtlMs: LEASE_TTL_MS }, storage: { url: pg.url }, limits: { initTimeoutSeconds: 60 } };
  };
  const startGateway = (name: string) => startVoxgateProcess({ role: 'gateway', name, dataDir: shared, config: gatewayConfig(), env: { VOXGATE_WORKER_KEY: workerKey }, logLevel: 'warn', drainTimeoutMs: 20_000 });
  const startWorker = (name: string) =>
    startVoxgateProcess({
      role: 'worker',
      name,
      dataDir: shared,
      region: 'us-east-1',
      args: ['--worker'],
      config: (() => {
        const base = deployConfig('worker.json');
        return { ...base, state: { redisUrl: redis.url, leaseTtlMs: LEASE_TTL_MS }, storage: { url: pg.url }, worker: { ...base.worker, intervalMs: 250 } };
      })(),
    });

  const status = async (g: VoxgateProcess) => (await g.status()) as unknown as { cluster: Cluster };
  /** Open an STT socket on gateway `g` with `key` (no init: an open socket holds its slot). */
  const open = async (g: VoxgateProcess, key: string, headers: Record<string, string> = {}) => {
    const c = await openSocket(`${g.wsUrl}/v1/stt/${MODEL}`, { Authorization: `Bearer ${key}`, ...headers });
    clients.push(c);
    return c;
  };
  /** The refusal of an upgrade that must be refused: status and parsed body. */
  const refused = async (g: VoxgateProcess, key: string) => {
    try {
      const c = await open(g, key);
      c.ws.close();
      return null;
    } catch (err) {
      const e = err as { statusCode?: number; body?: string };
      return { status: e.statusCode, body: JSON.parse(e.body ?? '{}') as Record<string, unknown> };
    }
  };
  const closeAll = async () => {
    const open = clients.splice(0).filter((c) => c.ws.readyState === c.ws.OPEN || c.ws.readyState === c.ws.CONNECTING);
    for (const c of open) c.ws.close();
    await Promise.all(open.map((c) => c.closed));
  };
  /** Registry sessions of `keyId` seen by gateway `g`. */
  const registered = async (g: VoxgateProcess, keyId: string) => (await status(g)).cluster.sessions.filter((s) => s.key_id === keyId);
  const init = (c: RecordingClient) => c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true } });
  const readyOn = (w: VoxgateProcess) => w.logsWithMsg('session ready').length;

  before(async () => {
    [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
    // One data dir for every process: the admin key bootstrapped in PostgreSQL is saved there once.
    shared = mkdtempSync(path.join(tmpdir(), 'voxgate-shared-'));
    const store = await openStore({ dataDir: shared, storage: { url: pg.url } });
    await store.bootstrapAdminKey();
    const c = await store.createKey('capped', { limits: { maxSessions: 3 } });
    capped = c.key;
    cappedId = c.info.id;
    workerKey = (await store.createKey('gateways-to-workers')).key;
    await store.close();
    clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    [w1, w2] = await Promise.all([startWorker('worker-1'), startWorker('worker-2')]);
    gws.push(...(await Promise.all([startGateway('gw-a'), startGateway('gw-b'), startGateway('gw-c')])));
    await until(async () => (await status(gws[0]!)).cluster.workers.length === 2, 10_000, 'both workers registered');
  });
  after(async () => {
    await closeAll().catch(() => undefined);
    await stopAllProcesses(2000);
    await redis?.stop();
    await pg?.stop();
    if (shared) rmSync(shared, { recursive: true, force: true });
  });

  it('a key created with the CLI on A works on B and C; revoked on C, it is refused on A within 5 s', async () => {
    const [a, b, c] = gws as [VoxgateProcess, VoxgateProcess, VoxgateProcess];
    const cli = (args: string[]) => spawnSync(process.execPath, [path.join(packageRoot(), 'bin/voxgate.cjs'), ...args], { encoding: 'utf8', env: { ...process.env, VOXGATE_DATABASE_URL: '' } });
    const made = cli(['keys', 'create', '--name', 'roaming', '--config', a.configFile]);
    assert.equal(made.status, 0, made.stderr);
    const key = made.stdout.trim();
    const id = /created key ([0-9a-f]{12})/.exec(made.stderr)![1]!;
    for (const g of [a, b, c]) assert.equal(await refused(g, key), null, `the new key works on ${g.name}`);
    const revoked = cli(['keys', 'revoke', id, '--config', c.configFile]);
    assert.equal(revoked.status, 0, revoked.stderr);
    const t0 = Date.now();
    const r = await until(async () => ((await refused(a, key))?.status === 401 ? true : null), 5000, 'A to refuse the revoked key');
    assert.ok(r && Date.now() - t0 <= 5000);
    await closeAll();
  });

  it('gateways route to the least-loaded registered worker of the region; a region without workers fails cleanly', async () => {
    const [a] = gws as [VoxgateProcess];
    const before1 = readyOn(w1);
    const before2 = readyOn(w2);
    const s1 = await open(a, a.key);
    init(s1);
    await s1.waitType('ready');
    // Which worker took it: its `session ready` log line (read through a pipe, so waited for).
    const first = await until(async () => (readyOn(w1) > before1 ? w1 : readyOn(w2) > before2 ? w2 : null), 5000, 'a worker to log the session');
    const other = first === w1 ? w2 : w1;
    const firstCount = readyOn(first);
    // Wait until the gateway has seen the busy worker's next load report, then open the second session.
    await until(async () => (await status(a)).cluster.workers.some((w) => w.sessions >= 1), 5000, 'a load report with one session');
    const otherBefore = readyOn(other);
    const s2 = await open(a, a.key);
    init(s2);
    await s2.waitType('ready');
    await until(async () => readyOn(other) === otherBefore + 1, 5000, 'the idle worker to take the second session');
    assert.equal(readyOn(first), firstCount, 'the busy worker took no second session');
    // The relayed session transcribes.
    await s1.sendBinary(Buffer.concat([clip.bytes.subarray(0, 16000 * 2 * 4), silence(800)]));
    s1.sendJson({ type: 'finalize' });
    const fin = await s1.waitFor((m) => m.type === 'final_transcript' && typeof m.transcript === 'string' && (m.transcript as string).length > 0);
    assert.ok((fin.transcript as string).length > 0);
    // eu-north-1 has no worker: the placeholder refuses with backend_connection_failed, in-session.
    const s3 = await open(a, a.key, { 'X-Region-Override': 'eu-north-1' });
    init(s3);
    const err = await s3.waitType('error');
    assert.equal(err.code, 'backend_connection_failed', JSON.stringify(err));
    await closeAll();
  });

  it('a per-key cap of 3 sessions holds across the three gateways: the 4th gets rate_limit; a freed slot is usable anywhere', async () => {
    const [a, b, c] = gws as [VoxgateProcess, VoxgateProcess, VoxgateProcess];
    await open(a, capped);
    await open(b, capped);
    const onC = await open(c, capped);
    for (const g of [a, b, c]) {
      const r = await refused(g, capped);
      assert.ok(r, `the 4th session on ${g.name} was admitted`);
      assert.equal(r.status, 429);
      assert.equal(r.body.error, 'rate_limit', JSON.stringify(r.body));
    }
    assert.equal((await registered(b, cappedId)).length, 3, 'the registry lists the three sessions');
    onC.ws.close();
    await onC.closed;
    await until(async () => (await refused(b, capped)) === null, 3000, 'the slot C freed to be usable on B');
    await closeAll();
  });

  it('kill -9 of a gateway: its leases expire and the key\u2019s sessions reopen on the others', async () => {
    const [a, , c] = gws as [VoxgateProcess, VoxgateProcess, VoxgateProcess];
    for (let i = 0; i < 3; i++) await open(c, capped);
    assert.equal((await refused(a, capped))?.status, 429, 'C holds all three slots');
    const cInstance = (await status(c)).cluster.instance;
    c.kill('SIGKILL');
    await c.waitExit();
    // Within the lease TTL (+ a heartbeat) the slots are free again: three sessions open on A.
    await until(async () => (await refused(a, capped)) === null, LEASE_TTL_MS * 4, 'the dead gateway\u2019s leases to expire');
    await closeAll();
    for (let i = 0; i < 3; i++) await open(a, capped);
    assert.equal((await refused(a, capped))?.status, 429, 'the cap holds again');
    await until(async () => !(await status(a)).cluster.sessions.some((s) => s.instance === cInstance), LEASE_TTL_MS * 4, 'the dead gateway\u2019s registry entries to be swept');
    await closeAll();
    gws[2] = await startGateway('gw-c2');
  });

  it('Redis stopped mid-run: sessions continue, limits fall back to each gateway, then reconverge after the restart', async () => {
    const [a, b, c] = gws as [VoxgateProcess, VoxgateProcess, VoxgateProcess];
    const live = await open(a, a.key);
    init(live);
    await live.waitType('ready');
    await live.sendBinary(clip.bytes.subarray(0, 16000 * 2 * 3));
    await redis.stop();
    await until(async () => (await status(a)).cluster.fallback, 5000, 'gateway A to notice the outage');
    // The session goes on without Redis.
    await live.sendBinary(Buffer.concat([clip.bytes.subarray(16000 * 2 * 3, 16000 * 2 * 6), silence(800)]));
    live.sendJson({ type: 'finalize' });
    await live.waitFor((m) => m.type === 'final_transcript' && (m.transcript as string).length > 0);
    // Local limits: 3 on A, the 4th on A refused — and B, which knows nothing of A's, admits one more.
    for (let i = 0; i < 3; i++) await open(a, capped);
    assert.equal((await refused(a, capped))?.status, 429, 'A enforces the cap on its own sessions');
    await open(b, capped);
    const metrics = await (await fetch(`${a.httpUrl}/metrics`, { headers: { Authorization: `Bearer ${a.key}` } })).text();
    assert.match(metrics, /^voxgate_state_fallback 1$/m);
    assert.match(metrics, /^voxgate_state_fallback_decisions_total\{limit="max_sessions"\} [1-9]/m);
    // Redis back (empty): every gateway writes its live leases back, so the key holds 4 > 3 and C refuses.
    await redis.restart();
    await until(async () => (await registered(c, cappedId)).length === 4, 5000, 'the four sessions admitted during the outage to be registered again');
    assert.equal((await refused(c, capped))?.status, 429, 'reconverged: the cap counts the sessions admitted during the outage');
    await closeAll();
    await until(async () => (await refused(c, capped)) === null, 3000, 'slots to free after the sessions closed');
    await closeAll();
    for (const g of gws) await until(async () => (await status(g)).cluster.workers.length === 2, 5000, 'workers registered again');
  });

  it('SIGTERM on a gateway with 3 live sessions: every final arrives, /healthz is 503 while it drains, exit 0', async () => {
    const b = gws[1]!;
    const sessions = await Promise.all([0, 1, 2].map(() => open(b, b.key)));
    for (const s of sessions) init(s);
    await Promise.all(sessions.map((s) => s.waitType('ready')));
    for (const s of sessions) await s.sendBinary(clip.bytes.subarray(0, 16000 * 2 * 4));
    await Promise.all(sessions.map((s) => s.waitFor((m) => m.type === 'partial_transcript' && (m.transcript as string).length > 0, 20_000)));
    // An upload in flight keeps the listener open through the drain, so /healthz can be read during it.
    const upload = http.request(`${b.httpUrl}/v1/stt/${MODEL}`, { method: 'POST', headers: { Authorization: `Bearer ${b.key}`, 'Content-Type': 'audio/l16;rate=16000' } });
    const uploadDone = new Promise<number>((resolve) => {
      upload.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      upload.on('error', () => resolve(-1));
    });
    upload.write(silence(200));
    const bInstance = (await status(b)).cluster.instance;
    await until(async () => (await status(b)).cluster.sessions.filter((s) => s.instance === bInstance).length >= 4, 5000, 'the upload to be admitted');
    b.kill('SIGTERM');
    const health = await until(async () => {
      const r = await fetch(`${b.httpUrl}/healthz`);
      return r.status === 503 ? ((await r.json()) as { status: string }) : null;
    }, 5000, '/healthz 503');
    assert.equal(health.status, 'draining');
    // The utterances in progress end (the rest of the speech, then silence): the drain waits for their finals.
    const finalsBefore = sessions.map((s) => s.ofType('final_transcript').length);
    for (const s of sessions) await s.sendBinary(Buffer.concat([clip.bytes.subarray(16000 * 2 * 4, 16000 * 2 * 6), silence(1500)]));
    const closes = await Promise.all(sessions.map((s) => s.closed));
    for (const [i, s] of sessions.entries()) {
      // A final with words arrived after SIGTERM (the utterance in progress was delivered, not dropped).
      const finals = s.ofType('final_transcript').slice(finalsBefore[i]).filter((m) => (m.transcript as string).length > 0);
      assert.ok(finals.length >= 1, `session ${i} got no final after SIGTERM: ${JSON.stringify(s.messages)}`);
      assert.equal(closes[i]!.code, 1001);
    }
    upload.end(silence(200));
    await uploadDone;
    await b.waitExit();
    assert.equal(b.exit?.code, 0, b.tail());
  });
});
