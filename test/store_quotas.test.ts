/**
 * Quotas and usage metering (issue 12 "Quotas and usage metering"), on both stores: the embedded
 * SQLite default and a real throw-away PostgreSQL (started once for the file). A real gateway on
 * 127.0.0.1:0 with the embedded engines (PocketSphinx, flite) and a scripted fake STT engine whose
 * `started` list shows whether a backend was ever dialled.
 *
 * - usage rows after a real STT session (real audio from ../shared/data) and real TTS sessions and
 *   requests, per key, model, provider and region; `GET /v1/usage` for the key itself (admin: `?key=`);
 * - day quotas exceeded → HTTP 429 before any backend is dialled, in the unified (SLNG) and Deepgram
 *   dialects, WebSocket and HTTP, STT and TTS;
 * - the CLI: `keys create --max-sessions … --chars-per-month`, `keys limits`, `usage --json`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import type { FakeSttEngine } from '../src/engines/stt/fake/index.js';
import type { UsageRecord } from '../src/store/types.js';
import { readFileSync } from 'node:fs';
import { loadClip, openSocket, repoRoot, sharedData, startConfiguredServer, type Clip, type TestServer } from './helpers.js';
import { startPostgres, type PostgresServer } from './support/servers.js';
import { openTts } from './tts_helpers.js';

const run = promisify(execFile);
const CLI = () => path.join(repoRoot(), 'bin', 'voxgate.cjs');
const FAKE = 'test/fake:quota';
const PSX = 'local/pocketsphinx:en';
const FLITE = 'local/flite:en';

/** The gateway of these tests: the default catalogue plus a fake STT model (the Deepgram routes' default). */
function quotaConfig(url?: string): VoxgateConfig {
  const base = loadConfig();
  return {
    ...base,
    engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 2 }, fake: { type: 'fake', script: { steps: [{ at: 0.2, final: { transcript: 'fake final' } }] } } },
    stt: { models: [...base.stt.models, { code: FAKE, engine: 'fake', dialect: 'unified', options: {}, aliases: [] }] },
    compat: { defaultSttModel: FAKE },
    storage: { ...base.storage!, url, usageFlushMs: 60_000, quotaCacheMs: 0 }, // rows are written by GET /v1/usage's flush; usage recorded straight into the store (as by another gateway) is seen at once
  };
}

/** A refused WebSocket upgrade: status, headers, JSON body. */
async function refusal(p: Promise<unknown>): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, string> }> {
  try {
    await p;
  } catch (err) {
    const e = err as { statusCode?: number; body?: string; headers?: Record<string, string> };
    assert.ok(e.statusCode, `expected an HTTP refusal, got ${String(err)}`);
    return { status: e.statusCode, body: JSON.parse(e.body ?? '{}') as Record<string, unknown>, headers: e.headers ?? {} };
  }
  assert.fail('the upgrade was accepted');
}

type Usage = { day: Record<string, number>; month: Record<string, number>; remaining: Record<string, number>; limits: Record<string, number>; key: { id: string }; breakdown: Record<string, unknown>[] };

async function usageOf(s: TestServer, key: string, query = ''): Promise<{ status: number; body: Usage }> {
  const r = await fetch(`${s.url}/v1/usage${query}`, { headers: { Authorization: `Bearer ${key}` } });
  return { status: r.status, body: (await r.json()) as Usage };
}

/** GET /v1/usage until `pred` holds (the session's end is recorded once the server saw the close). */
async function usageWhen(s: TestServer, key: string, pred: (u: Usage) => boolean): Promise<Usage> {
  for (let i = 0; ; i++) {
    const { status, body } = await usageOf(s, key);
    assert.equal(status, 200, JSON.stringify(body));
    if (pred(body)) return body;
    if (i > 100) assert.fail(`usage never matched: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A usage row of `seconds` STT audio / `chars` TTS characters for `keyId`, recorded now. */
function row(keyId: string, o: Partial<UsageRecord>): UsageRecord {
  return { keyId, at: new Date(), service: 'stt', transport: 'ws', model: FAKE, provider: 'fake', backend: 'fake', region: 'local', requests: 1, audioSecondsIn: 0, charsIn: 0, audioSecondsOut: 0, ...o };
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`quotas and usage metering (${kind})`, () => {
    let db: PostgresServer | undefined;
    let s: TestServer;
    let clip: Clip;
    let fake: FakeSttEngine;
    before(async () => {
      clip = await loadClip('asr_en/en_cmu_goforward.wav');
      if (kind === 'postgres') db = await startPostgres();
      s = await startConfiguredServer(quotaConfig(db?.url));
      assert.equal(s.store.kind, kind);
      fake = s.engines.get('fake') as FakeSttEngine;
    });
    after(async () => {
      await s?.cleanup();
      await db?.stop();
    });

    it('a real STT session (WebSocket, unified) and a pre-recorded request are metered per key, model, provider and region', async () => {
      const { key } = await s.store.createKey('stt-meter');
      const c = await openSocket(`${s.wsUrl}/v1/stt/${PSX}`, { Authorization: `Bearer ${key}` });
      c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16' } });
      await c.waitType('ready');
      await c.sendBinary(clip.bytes);
      c.sendJson({ type: 'finalize' });
      await c.waitType('final_transcript', 30000);
      c.ws.close();
      await c.closed;
      const u = await usageWhen(s, key, (x) => x.day.requests >= 1);
      assert.ok(Math.abs(u.day.audio_seconds_in - clip.seconds) < 0.05, `audio seconds in ${u.day.audio_seconds_in} vs clip ${clip.seconds}`);
      assert.deepEqual(u.breakdown.map((b) => [b.service, b.model, b.provider, b.region, b.requests]), [['stt', PSX, 'pocketsphinx', s.config.gateway.region, 1]]);
      // Pre-recorded (HTTP): the same clip as a WAV body.
      const wav = readFileSync(sharedData('asr_en/en_cmu_goforward.wav'));
      const r = await fetch(`${s.url}/v1/stt/${PSX}`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'audio/wav' }, body: new Uint8Array(wav) });
      assert.equal(r.status, 200, await r.text());
      const u2 = await usageWhen(s, key, (x) => x.day.requests >= 2);
      assert.ok(Math.abs(u2.day.audio_seconds_in - 2 * clip.seconds) < 0.1, JSON.stringify(u2.day));
      const rows = await s.store.queryUsage({ keyId: (await s.store.listKeys()).find((k) => k.name === 'stt-meter')!.id });
      assert.equal(rows.length, 1, 'one group: same key, service, model, provider, region');
      assert.equal(rows[0]!.requests, 2);
    });

    it('TTS: a WebSocket session and an HTTP request record characters in and audio seconds out', async () => {
      const { key } = await s.store.createKey('tts-meter');
      const text = 'Turn left at the next intersection.';
      const c = await openTts(s, `/v1/tts/${FLITE}`, { Authorization: `Bearer ${key}` });
      c.send({ type: 'init' });
      await c.waitType('ready');
      c.send({ type: 'text', text, flush: true });
      await c.waitType('flushed', 30000);
      c.ws.close();
      await c.closed;
      const u = await usageWhen(s, key, (x) => x.day.requests >= 1);
      assert.equal(u.day.chars_in, text.length);
      assert.ok(u.day.audio_seconds_out > 0.5, JSON.stringify(u.day));
      const r = await fetch(`${s.url}/v1/tts/${FLITE}`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ text }) });
      assert.equal(r.status, 200);
      const seconds = Number(r.headers.get('x-duration'));
      await r.arrayBuffer();
      const u2 = await usageWhen(s, key, (x) => x.day.requests >= 2);
      assert.equal(u2.day.chars_in, 2 * text.length);
      assert.ok(Math.abs(u2.day.audio_seconds_out - u.day.audio_seconds_out - seconds) < 0.01, `${u2.day.audio_seconds_out} - ${u.day.audio_seconds_out} vs X-Duration ${seconds}`);
      assert.deepEqual(u2.breakdown.map((b) => [b.service, b.model, b.provider]), [['tts', FLITE, 'flite']]);
    });

    it('STT day quota used up → 429 before any backend is dialled: unified and Deepgram, WebSocket and HTTP', async () => {
      const { key, info } = await s.store.createKey('stt-quota', { limits: { audioSecondsPerDay: 2 } });
      await s.store.recordUsage([row(info.id, { audioSecondsIn: 2.5 })]);
      const started = fake.started.length;
      const uni = await refusal(openSocket(`${s.wsUrl}/v1/stt/${FAKE}`, { Authorization: `Bearer ${key}` }));
      assert.equal(uni.status, 429);
      assert.equal(uni.body.error, 'rate_limit');
      assert.match(String(uni.body.message), /quota exceeded.*2\.5 of its 2 audio seconds per UTC day \(audioSecondsPerDay\)/);
      const dg = await refusal(openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000`, { Authorization: `Token ${key}` }));
      assert.equal(dg.status, 429);
      assert.equal(dg.body.err_code, 'TOO_MANY_REQUESTS');
      assert.match(dg.headers['dg-error'] ?? '', /quota exceeded/);
      const http = await fetch(`${s.url}/v1/listen?encoding=linear16&sample_rate=16000`, { method: 'POST', headers: { Authorization: `Token ${key}`, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(clip.bytes) });
      assert.equal(http.status, 429);
      assert.equal(((await http.json()) as { err_code: string }).err_code, 'TOO_MANY_REQUESTS');
      assert.equal(fake.started.length, started, 'the engine was never started for a refused request');
      // TTS is not limited by an audio quota; another key is not limited by this one's.
      const tts = await openTts(s, `/v1/tts/${FLITE}`, { Authorization: `Bearer ${key}` });
      tts.send({ type: 'init' });
      await tts.waitType('ready');
      tts.ws.close();
      await tts.closed;
      const other = await s.store.createKey('no-quota');
      const ok = await openSocket(`${s.wsUrl}/v1/stt/${FAKE}`, { Authorization: `Bearer ${other.key}` });
      ok.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16' } });
      await ok.waitType('ready');
      ok.ws.close();
      await ok.closed;
      assert.equal(fake.started.length, started + 1);
      // Raising the quota admits the key again (the limits are read at authentication).
      await s.store.updateLimits(info.id, { audioSecondsPerDay: 3600 });
      await new Promise((r) => setTimeout(r, (s.config.storage?.keyCacheTtlMs ?? 0) + 50)); // Postgres: this instance re-reads the key after its cache TTL
      const again = await openSocket(`${s.wsUrl}/v1/stt/${FAKE}`, { Authorization: `Bearer ${key}` });
      again.ws.close();
      await again.closed;
    });

    it('STT month quota: usage earlier this month counts', async () => {
      const { key, info } = await s.store.createKey('stt-month', { limits: { audioSecondsPerMonth: 10, audioSecondsPerDay: 1000 } });
      const now = new Date();
      const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
      await s.store.recordUsage([row(info.id, { at: new Date(monthStart.getTime() + 1000), audioSecondsIn: 6 }), row(info.id, { audioSecondsIn: 4 })]);
      await s.store.recordUsage([row(info.id, { at: new Date(monthStart.getTime() - 1000), audioSecondsIn: 500 })]); // last month: not counted
      const r = await refusal(openSocket(`${s.wsUrl}/v1/stt/${FAKE}`, { Authorization: `Bearer ${key}` }));
      assert.equal(r.status, 429);
      assert.match(String(r.body.message), /10\.0 of its 10 audio seconds per UTC month/);
      const u = await usageOf(s, key);
      assert.equal(u.body.month.audio_seconds_in, 10);
      assert.equal(u.body.remaining.audioSecondsPerMonth, 0);
    });

    it('TTS character quota: an HTTP request that would pass it → 429 before synthesis; used up → 429 on /v1/speak and the unified upgrade', async () => {
      const { key, info } = await s.store.createKey('tts-quota', { limits: { charsPerDay: 40 } });
      const post = (text: string, route = `/v1/tts/${FLITE}`) => fetch(`${s.url}${route}`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ text }) });
      const big = await post('x'.repeat(41));
      assert.equal(big.status, 429);
      const bb = (await big.json()) as { error: string; message: string };
      assert.equal(bb.error, 'rate_limit');
      assert.match(bb.message, /0 of its 40 characters per UTC day \(charsPerDay\) \(this request: 41 more\)/);
      const small = await post('Hello there, friend.'); // 20 chars
      assert.equal(small.status, 200);
      await small.arrayBuffer();
      const third = await post('Hello there, friend and more.'); // 20 + 29 > 40
      assert.equal(third.status, 429);
      await third.arrayBuffer();
      await s.store.recordUsage([row(info.id, { service: 'tts', charsIn: 30 })]); // 50 ≥ 40
      const speak = await refusal(openTts(s, '/v1/speak?model=aura-asteria-en', { Authorization: `Token ${key}` }));
      assert.equal(speak.status, 429);
      assert.equal(speak.body.err_code, 'TOO_MANY_REQUESTS');
      const uni = await refusal(openTts(s, `/v1/tts/${FLITE}`, { Authorization: `Bearer ${key}` }));
      assert.equal(uni.status, 429);
      assert.equal(uni.body.error, 'rate_limit');
      const sp = await post('Hi.', '/v1/speak?model=aura-asteria-en');
      assert.equal(sp.status, 429);
      assert.equal(((await sp.json()) as { err_code: string }).err_code, 'TOO_MANY_REQUESTS');
      const u = await usageOf(s, key);
      assert.equal(u.body.day.chars_in, 50, 'refused requests used nothing');
      assert.equal(u.body.remaining.charsPerDay, 0);
    });

    it("GET /v1/usage: the key's own totals and limits; another key's only with an admin key", async () => {
      const a = await s.store.createKey('ua', { limits: { rpm: 60, charsPerMonth: 1000 } });
      const b = await s.store.createKey('ub');
      const own = await usageOf(s, a.key);
      assert.equal(own.status, 200);
      assert.equal(own.body.key.id, a.info.id);
      assert.deepEqual(own.body.limits, { rpm: 60, charsPerMonth: 1000 });
      assert.deepEqual(own.body.remaining, { charsPerMonth: 1000 });
      assert.equal((await usageOf(s, b.key, `?key=${a.info.id}`)).status, 401);
      const admin = await s.store.createKey('adm', { admin: true });
      const viaAdmin = await usageOf(s, admin.key, `?key=${a.info.id}`);
      assert.equal(viaAdmin.status, 200);
      assert.equal(viaAdmin.body.key.id, a.info.id);
      assert.equal((await usageOf(s, admin.key, '?key=000000000000')).status, 404);
      assert.equal((await usageOf(s, a.key, '?since=yesterday')).status, 400);
      assert.equal((await fetch(`${s.url}/v1/usage`)).status, 401);
    });

    it('CLI: keys create with every limit flag, keys limits, usage --json', async () => {
      const where = db ? ['--database-url', db.url] : ['--data-dir', s.dataDir];
      const created = await run(process.execPath, [CLI(), 'keys', 'create', '--name', 'cli-q', '--max-sessions', '3', '--rpm', '60', '--audio-seconds-per-day', '100', '--audio-seconds-per-month', '1000', '--chars-per-day', '500', '--chars-per-month', '5000.5', ...where]);
      const key = created.stdout.trim();
      const id = key.split('_')[1]!;
      const info = await s.store.verifyKey(key);
      assert.ok(info, 'the running gateway accepts the new key');
      assert.deepEqual(info.limits, { maxSessions: 3, rpm: 60, audioSecondsPerDay: 100, audioSecondsPerMonth: 1000, charsPerDay: 500, charsPerMonth: 5000.5 });
      const upd = await run(process.execPath, [CLI(), 'keys', 'limits', id, '--rpm', 'none', '--max-sessions', '5', '--json', ...where]);
      assert.deepEqual(JSON.parse(upd.stdout), { maxSessions: 5, audioSecondsPerDay: 100, audioSecondsPerMonth: 1000, charsPerDay: 500, charsPerMonth: 5000.5 });
      assert.deepEqual((await s.store.getKey(id))!.limits, JSON.parse(upd.stdout));
      const bad = await run(process.execPath, [CLI(), 'keys', 'limits', id, '--rpm', '-3', ...where]).catch((e: { code: number; stderr: string }) => e);
      assert.equal((bad as { code: number }).code, 1);
      assert.match((bad as { stderr: string }).stderr, /--rpm must be a non-negative number/);
      await s.store.recordUsage([row(id, { audioSecondsIn: 12.5 }), row(id, { service: 'tts', model: FLITE, provider: 'flite', charsIn: 42, audioSecondsOut: 3 })]);
      const u = await run(process.execPath, [CLI(), 'usage', '--key', id, '--since', '7d', '--json', ...where]);
      const j = JSON.parse(u.stdout) as { rows: { service: string; audioSecondsIn: number; charsIn: number; keyName: string }[] };
      assert.deepEqual(j.rows.map((r) => [r.service, r.audioSecondsIn, r.charsIn, r.keyName]), [['stt', 12.5, 0, 'cli-q'], ['tts', 0, 42, 'cli-q']]);
      const table = await run(process.execPath, [CLI(), 'usage', '--key', id, ...where]);
      assert.match(table.stdout, /cli-q\s+stt\s+test\/fake:quota\s+fake\s+local\s+1\s+12\.5/);
    });
  });
}
