/**
 * Live per-key limits (issue 12; src/state/live.ts, src/server/admission.ts) on one gateway in this
 * process — the single-box default, no Redis — and the Redis-backed pieces against a real
 * `redis-server` (test/support/servers.ts): leases of a dead holder expire, backend health is shared.
 * The multi-gateway behaviour with real processes is test/scaleout.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { eventually, openSocket, startTestServer, type TestServer } from './helpers.js';
import { startRedis, type RedisServer } from './support/servers.js';
import { LiveState } from '../src/state/live.js';
import { RedisLink } from '../src/state/redis.js';
import { HealthShare } from '../src/state/health_share.js';
import { WorkerAnnouncer, WorkerDirectory } from '../src/state/workers.js';
import { BackendHealth } from '../src/engines/health.js';

const STT = '/v1/stt/local/pocketsphinx:en';
const log = pino({ level: 'silent' });

/** Try an upgrade on `path`; null when it opened (then closed again), else the refusal's status and body. */
async function tryOpen(s: TestServer, path: string, key: string): Promise<{ status?: number; body: Record<string, unknown> } | null> {
  try {
    const c = await openSocket(`${s.wsUrl}${path}`, { Authorization: `Bearer ${key}` });
    c.ws.close();
    await c.closed;
    return null;
  } catch (err) {
    const e = err as { statusCode?: number; body?: string };
    return { status: e.statusCode, body: JSON.parse(e.body ?? '{}') as Record<string, unknown> };
  }
}

describe('per-key live limits on a single gateway (in memory, no Redis)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s?.cleanup();
  });

  it('maxSessions 1: a second session is refused with rate_limit / 429 on STT, Deepgram and TTS routes before any backend; the slot frees when the session ends', async () => {
    const { key } = await s.store.createKey('one', { limits: { maxSessions: 1 } });
    const first = await openSocket(`${s.wsUrl}${STT}`, { Authorization: `Bearer ${key}` });
    const stt = await tryOpen(s, STT, key);
    assert.equal(stt?.status, 429);
    assert.equal(stt?.body.error, 'rate_limit', JSON.stringify(stt?.body));
    assert.match(String(stt?.body.message), /maximum of 1 concurrent sessions/);
    assert.equal((await tryOpen(s, '/v1/listen?encoding=linear16&sample_rate=16000', key))?.status, 429);
    assert.equal((await tryOpen(s, '/v1/tts/local/flite:en', key))?.status, 429);
    const http = await fetch(`${s.url}/v1/tts/local/flite:en`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ text: 'hi' }) });
    assert.equal(http.status, 429);
    // The client vanishes without a close frame: its slot is freed, once.
    first.ws.terminate();
    await eventually(() => s.gateway.live.localCount === 0, 5000, 'the slot to be released');
    assert.equal(await tryOpen(s, STT, key), null, 'the freed slot is usable');
  });

  it('each lease is released exactly once: after many sessions the cap still admits one and refuses the second', async () => {
    const { key } = await s.store.createKey('churn', { limits: { maxSessions: 1 } });
    for (let i = 0; i < 15; i++) {
      const c = await openSocket(`${s.wsUrl}${STT}`, { Authorization: `Bearer ${key}` });
      if (i % 3 === 0) c.ws.terminate();
      else if (i % 3 === 1) c.ws.close();
      else c.sendJson({ type: 'init', config: { language: 'xx' } }); // refused in-session (config_error), the server closes
      await c.closed;
    }
    await eventually(() => s.gateway.live.localCount === 0, 5000, 'every slot released');
    const held = await openSocket(`${s.wsUrl}${STT}`, { Authorization: `Bearer ${key}` });
    assert.equal((await tryOpen(s, STT, key))?.status, 429, 'a double release would have let a second session in');
    held.ws.close();
    await held.closed;
  });

  it('rpm 2: the third request within the minute is refused with rate_limit', async () => {
    const { key } = await s.store.createKey('rpm', { limits: { rpm: 2 } });
    assert.equal(await tryOpen(s, STT, key), null);
    assert.equal(await tryOpen(s, STT, key), null);
    const third = await tryOpen(s, STT, key);
    assert.equal(third?.status, 429);
    assert.match(String(third?.body.message), /2 requests per minute/);
  });
});

describe('shared live state on a real Redis', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  it('caps hold across instances; a holder that stops heartbeating loses its leases after the TTL', async () => {
    const a = new LiveState({ redisUrl: redis.url, leaseTtlMs: 600, log, keyPrefix: 't1:' });
    const b = new LiveState({ redisUrl: redis.url, leaseTtlMs: 600, log, keyPrefix: 't1:' });
    try {
      await eventually(() => a.shared && b.shared, 5000, 'both connected');
      const la = await a.acquire({ sessionId: 's-a', keyId: 'k', model: 'm', kind: 'stt' }, 2);
      const lb = await b.acquire({ sessionId: 's-b', keyId: 'k', model: 'm', kind: 'stt' }, 2);
      assert.ok(la && !la.local && lb && !lb.local);
      assert.equal(await a.acquire({ sessionId: 's-a2', keyId: 'k', model: 'm', kind: 'stt' }, 2), null, 'B\u2019s lease counts on A');
      assert.deepEqual((await a.sessions()).map((x) => x.session_id).sort(), ['s-a', 's-b']);
      await b.close(); // "dies": no release, no heartbeat
      let got = null;
      for (let i = 0; i < 100 && !got; i++) {
        got = await a.acquire({ sessionId: `s-a3-${i}`, keyId: 'k', model: 'm', kind: 'stt' }, 2);
        if (!got) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(got, 'the dead holder\u2019s slot expired');
      la.release();
      got.release();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('leases taken while Redis was down are written back when it returns, so the caps reconverge', async () => {
    const a = new LiveState({ redisUrl: redis.url, leaseTtlMs: 5000, log, keyPrefix: 't3:' });
    const b = new LiveState({ redisUrl: redis.url, leaseTtlMs: 5000, log, keyPrefix: 't3:' });
    try {
      await eventually(() => a.shared && b.shared, 5000, 'both connected');
      await redis.stop();
      await eventually(() => !a.shared && !b.shared, 5000, 'both to see the outage');
      const l1 = await a.acquire({ sessionId: 'x1', keyId: 'k', model: 'm', kind: 'stt' }, 2);
      const l2 = await a.acquire({ sessionId: 'x2', keyId: 'k', model: 'm', kind: 'stt' }, 2);
      assert.ok(l1?.local && l2?.local, 'granted locally');
      assert.equal(await a.acquire({ sessionId: 'x3', keyId: 'k', model: 'm', kind: 'stt' }, 2), null, 'the local fallback enforces the cap on its own sessions');
      await redis.restart(); // empty: nothing persisted
      await eventually(() => a.shared && b.shared, 10_000, 'both reconnected');
      await a.heartbeat(); // joins the one the reconnect started
      assert.equal(await b.acquire({ sessionId: 'y1', keyId: 'k', model: 'm', kind: 'stt' }, 2), null, 'B counts the two leases A took during the outage');
      l1!.release();
      let got = null;
      for (let i = 0; i < 40 && !got; i++) {
        got = await b.acquire({ sessionId: `y2-${i}`, keyId: 'k', model: 'm', kind: 'stt' }, 2);
        if (!got) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(got && !got.local, 'a released slot is usable on B through Redis');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('workers report load and are marked full at the threshold; gateways pick the least-loaded available worker of the region', async () => {
    const link = new RedisLink(redis.url, log);
    const load: Record<string, { sessions: number; freeStreams: number }> = { w1: { sessions: 1, freeStreams: 3 }, w2: { sessions: 0, freeStreams: 4 }, w3: { sessions: 0, freeStreams: 4 } };
    const mk = (id: string, region: string) => new WorkerAnnouncer(link, 't4:', { id, url: `ws://${id}:8080`, region, stt: ['local/pocketsphinx:en'], tts: [] }, () => load[id]!, 60_000, 0.75, log);
    const ws = [mk('w1', 'us-east-1'), mk('w2', 'us-east-1'), mk('w3', 'eu-north-1')];
    const dir = new WorkerDirectory(link, 't4:', 60_000);
    try {
      await eventually(() => link.up, 5000, 'connected');
      await Promise.all(ws.map((w) => w.report()));
      await dir.poll();
      assert.deepEqual(dir.pick('stt', 'local/pocketsphinx:en', 'us-east-1').map((w) => w.id), ['w2', 'w1'], 'least loaded first, only the region asked for');
      assert.deepEqual(dir.pick('stt', 'local/pocketsphinx:en', 'eu-north-1').map((w) => w.id), ['w3']);
      assert.deepEqual(dir.pick('stt', 'other/model', 'us-east-1'), []);
      load.w2 = { sessions: 3, freeStreams: 1 }; // 0.75: full
      await ws[1]!.report();
      await dir.poll();
      assert.equal(dir.all().find((w) => w.id === 'w2')?.full, true);
      assert.deepEqual(dir.pick('stt', 'local/pocketsphinx:en', 'us-east-1').map((w) => w.id), ['w1'], 'a full worker gets nothing new');
      await ws[0]!.markDraining(); // a draining worker is full at once
      await dir.poll();
      assert.deepEqual(dir.pick('stt', 'local/pocketsphinx:en', 'us-east-1'), []);
      await ws[2]!.stop(); // removes its entry
      await dir.poll();
      assert.equal(dir.all().some((w) => w.id === 'w3'), false);
    } finally {
      dir.close();
      for (const w of ws) await w.stop();
      await link.close();
    }
  });

  it('a backend failure seen by one gateway cools it down on the others; a success there heals it everywhere', async () => {
    const la = new RedisLink(redis.url, log);
    const lb = new RedisLink(redis.url, log);
    const ha = new BackendHealth({ coolDownMs: 60_000 });
    const hb = new BackendHealth({ coolDownMs: 60_000 });
    try {
      new HealthShare(la, ha, 't2:', 'gw-a', log);
      new HealthShare(lb, hb, 't2:', 'gw-b', log);
      await eventually(() => la.up && lb.up, 5000, 'connected');
      await new Promise((r) => setTimeout(r, 200)); // subscriptions in place (SUBSCRIBE acknowledged)
      ha.failure('deepgram-us', 'connect refused');
      await eventually(() => hb.state('deepgram-us') === 'cooling', 5000, 'B to cool the backend down');
      assert.equal(hb.snapshot('deepgram-us').lastError, 'connect refused');
      ha.success('deepgram-us');
      await eventually(() => hb.state('deepgram-us') === 'healthy', 5000, 'B to see it healthy again');
      // A gateway connecting during a cool-down learns it from the shared hash.
      ha.failure('deepgram-eu', 'HTTP 503');
      const lc = new RedisLink(redis.url, log);
      const hc = new BackendHealth();
      new HealthShare(lc, hc, 't2:', 'gw-c', log);
      await eventually(() => hc.state('deepgram-eu') === 'cooling', 5000, 'a late gateway to load the cool-down');
      await lc.close();
    } finally {
      await la.close();
      await lb.close();
    }
  });
});
