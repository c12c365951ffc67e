/**
 * The front door's backend selection (issue 10 part 2 "Regions and world parts"; protocols.md §1.1):
 * a real gateway on 127.0.0.1:0 whose models are served by several instances of the scripted fake
 * engines, each in its own region and scripted to say which one it is, and real `ws`/HTTP clients.
 * Checks: home region first without a pin; `X-Region-Override` / `?region=` and
 * `X-World-Part-Override` / `?world-part=` pick the backend (header over query, region over world
 * part, LiveKit's comma list); unknown or unoffered values are refused before the upgrade with HTTP
 * 400 listing the valid ones in every dialect family; a pinned region whose only backend fails gives
 * `backend_connection_failed`, unpinned the next region serves; BYOK on a `slng/` route is refused;
 * `/v1/models`, `/metrics` and `/v1/status` show the backends. The fakes fire on audio time, so
 * nothing here depends on timing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import type { FakeSttEngine } from '../src/engines/stt/fake/index.js';
import { checkByok, resolveOverrides, RoutingError, selectBackends, type RoutingOverrides } from '../src/server/backends.js';
import { finalText, loadClip, openSocket, startConfiguredServer, type Clip, type RecordingClient, type TestServer } from './helpers.js';
import { openTts } from './tts_helpers.js';

const MULTI = 'slng/test/fake:multi';
const EXTERNAL = 'test/fake:external';
const ONLY_EU = 'test/fake:only-eu';
const TTS = 'slng/test/fake:tts';

/** The scripted final each STT instance gives: which backend served the session. */
const said = (id: string) => `served by ${id}`;
const script = (id: string) => ({ steps: [{ at: 0.3, final: { transcript: said(id) } }], finalizeTranscript: said(id) });

/**
 * A gateway with three fake STT instances (us-east-1 = home, eu-north-1, ap-southeast-2) and two
 * fake TTS instances. `slng/test/fake:multi` lists the EU backend first, so "home region first" is
 * visible.
 */
async function startRegionServer(): Promise<TestServer> {
  const base = loadConfig();
  const config: VoxgateConfig = {
    ...base,
    engines: {
      'fake-us': { type: 'fake', region: 'us-east-1', script: script('fake-us') },
      'fake-eu': { type: 'fake', region: 'eu-north-1', script: script('fake-eu') },
      'fake-ap': { type: 'fake', region: 'ap-southeast-2', script: script('fake-ap') },
      'tts-us': { type: 'fake', region: 'us-east-1' },
      'tts-eu': { type: 'fake', region: 'eu-north-1' },
    },
    gateway: { ...base.gateway, region: 'us-east-1' },
    stt: {
      models: [
        { code: MULTI, engine: 'fake-us', backends: ['fake-eu', 'fake-us', 'fake-ap'], dialect: 'unified', options: {}, aliases: [] },
        { code: EXTERNAL, engine: 'fake-us', backends: ['fake-us', 'fake-eu'], dialect: 'deepgram-style', options: {}, aliases: [] },
        { code: ONLY_EU, engine: 'fake-eu', backends: ['fake-eu'], dialect: 'unified', options: {}, aliases: [] },
      ],
    },
    tts: { ...base.tts, models: [{ code: TTS, engine: 'tts-us', backends: ['tts-eu', 'tts-us'], dialect: 'unified', audio: 'binary' }] },
    compat: { defaultSttModel: MULTI },
  };
  return startConfiguredServer(config);
}

let clip: Clip;

/** Open a unified session on `model` (path + query) with extra headers, send `init`, wait for `ready`. */
async function openUnified(s: TestServer, pathAndQuery: string, headers: Record<string, string> = {}): Promise<RecordingClient> {
  const c = await openSocket(`${s.wsUrl}/v1/stt/${pathAndQuery}`, { Authorization: `Bearer ${s.key}`, ...headers });
  c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16' } });
  await c.waitType('ready');
  return c;
}

/** Send one second of real speech and wait for the scripted final: the id of the backend that served. */
async function servedBy(c: RecordingClient): Promise<string> {
  await c.sendBinary(clip.bytes.subarray(0, 32000));
  const m = await c.waitFor((x) => x.type === 'final_transcript' || (x.type === 'Results' && x.is_final === true));
  c.ws.close();
  await c.closed;
  const text = m.type === 'final_transcript' ? (m.transcript as string) : finalText(c);
  return text.replace(/^served by /, '');
}

/** The refusal of an upgrade: status, headers and parsed JSON body. */
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

describe('routing: regions and world parts pick the backend', () => {
  let s: TestServer;
  before(async () => {
    clip = await loadClip('asr_en/en_cmu_goforward.wav');
    assert.equal(clip.sampleRate, 16000);
    s = await startRegionServer();
  });
  after(async () => s?.cleanup());

  // Mid-stream failover seen from the front door: the session moves to the next backend without an
  // error, the active-session gauge follows it and the failover gap is measured (issue 10 metrics).
  it('mid-stream: the home backend dies after its first final; the next serves the rest, no error; gauge and gap metrics follow', async () => {
    const s = await startRegionServer(); // its own gateway: the failed backend cools down
    const us = s.engines.get('fake-us') as FakeSttEngine;
    us.script = { steps: [{ at: 0.3, final: { transcript: said('fake-us') } }, { at: 0.6, error: { message: 'worker went away', retryable: true } }] };
    try {
      const c = await openUnified(s, MULTI);
      await c.sendBinary(clip.bytes.subarray(0, 32000));
      await c.waitFor((m) => m.type === 'final_transcript' && m.transcript === said('fake-eu'));
      assert.equal(c.ofType('error').length, 0, JSON.stringify(c.messages));
      assert.equal(c.ofType('final_transcript')[0]!.transcript, said('fake-us'));
      const live = await (await fetch(`${s.url}/metrics`, { headers: { Authorization: `Bearer ${s.key}` } })).text();
      assert.match(live, /voxgate_backend_failover_gap_seconds_count\{backend="fake-eu"\} 1/);
      assert.match(live, /voxgate_backend_active_sessions\{backend="fake-eu"\} 1/);
      assert.match(live, /voxgate_backend_active_sessions\{backend="fake-us"\} 0/);
      c.ws.close();
      await c.closed;
    } finally {
      await s.cleanup();
    }
  });

  it('no override: the home region serves, although the model lists another first', async () => {
    assert.equal(await servedBy(await openUnified(s, MULTI)), 'fake-us');
  });

  it('X-Region-Override and ?region= pick the instance of that region', async () => {
    assert.equal(await servedBy(await openUnified(s, MULTI, { 'X-Region-Override': 'eu-north-1' })), 'fake-eu');
    assert.equal(await servedBy(await openUnified(s, `${MULTI}?region=ap-southeast-2`)), 'fake-ap');
    assert.equal(await servedBy(await openUnified(s, MULTI, { 'X-Region-Override': '  EU-North-1 ' })), 'fake-eu', 'trimmed and lower-cased');
  });

  it('the header wins over the query', async () => {
    assert.equal(await servedBy(await openUnified(s, `${MULTI}?region=ap-southeast-2`, { 'X-Region-Override': 'eu-north-1' })), 'fake-eu');
    assert.equal(await servedBy(await openUnified(s, `${MULTI}?world-part=ap`, { 'X-World-Part-Override': 'eu' })), 'fake-eu');
  });

  it('world part alone picks a backend of that world part; a region pin wins over it', async () => {
    assert.equal(await servedBy(await openUnified(s, `${MULTI}?world-part=ap`)), 'fake-ap');
    assert.equal(await servedBy(await openUnified(s, MULTI, { 'X-World-Part-Override': 'eu' })), 'fake-eu');
    assert.equal(await servedBy(await openUnified(s, `${MULTI}?region=us-east-1&world-part=eu`)), 'fake-us');
    assert.equal(await servedBy(await openUnified(s, MULTI, { 'X-Region-Override': 'ap-southeast-2', 'X-World-Part-Override': 'eu' })), 'fake-ap');
  });

  it("LiveKit's comma-separated priority list is tried in order", async () => {
    assert.equal(await servedBy(await openUnified(s, MULTI, { 'X-Region-Override': 'ap-southeast-2, eu-north-1' })), 'fake-ap');
    // A region the model is not offered in may lead the list when an offered one follows.
    assert.equal(await servedBy(await openUnified(s, ONLY_EU, { 'X-Region-Override': 'us-east-1, eu-north-1' })), 'fake-eu');
  });

  it('every streaming dialect routes: Deepgram-style, /v1/listen, smallest.ai', async () => {
    const dg = await openSocket(`${s.wsUrl}/v1/stt/${EXTERNAL}?region=eu-north-1`, { Authorization: `Bearer ${s.key}` });
    dg.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16' } });
    await dg.waitType('Metadata');
    assert.equal(await servedBy(dg), 'fake-eu');
    const listen = await openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000`, { Authorization: `Token ${s.key}`, 'X-Region-Override': 'ap-southeast-2' });
    assert.equal(await servedBy(listen), 'fake-ap');
    const pulse = await openSocket(`${s.wsUrl}/waves/v1/pulse/get_text?language=en&encoding=linear16&sample_rate=16000&world-part=eu`, { Authorization: `Bearer ${s.key}` });
    await pulse.sendBinary(clip.bytes.subarray(0, 32000));
    const m = await pulse.waitFor((x) => x.is_final === true);
    assert.match(String(m.transcript).toLowerCase(), /fake-eu/);
    pulse.ws.close();
    await pulse.closed;
  });

  it('pre-recorded POST routes route too (query pin on /v1/listen, header on /v1/stt/…)', async () => {
    const wav = clip.bytes.subarray(0, 32000);
    const r1 = await fetch(`${s.url}/v1/listen?encoding=linear16&sample_rate=16000&region=eu-north-1`, { method: 'POST', headers: { Authorization: `Token ${s.key}`, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(wav) });
    assert.equal(r1.status, 200);
    assert.match(JSON.stringify(await r1.json()), /served by fake-eu/);
    const r2 = await fetch(`${s.url}/v1/stt/${MULTI}?encoding=linear16&sample_rate=16000`, { method: 'POST', headers: { Authorization: `Bearer ${s.key}`, 'Content-Type': 'application/octet-stream', 'X-Region-Override': 'ap-southeast-2' }, body: new Uint8Array(wav) });
    assert.equal(r2.status, 200);
    assert.match(JSON.stringify(await r2.json()), /served by fake-ap/);
  });

  it('an unknown region is refused before the upgrade with 400 listing the valid values, in each dialect family', async () => {
    const valid = { regions: ['eu-north-1', 'us-east-1', 'ap-southeast-2'], world_parts: ['eu', 'na', 'ap'] };
    // SLNG unified.
    const u = await refusal(openSocket(`${s.wsUrl}/v1/stt/${MULTI}?region=mars-1`, { Authorization: `Bearer ${s.key}` }));
    assert.equal(u.status, 400);
    assert.equal(u.body.error, 'config_error');
    assert.match(String(u.body.message), /unknown region "mars-1"/);
    assert.deepEqual({ regions: u.body.regions, world_parts: u.body.world_parts }, valid);
    // Deepgram /v1/listen: Deepgram's body and dg-error header.
    const d = await refusal(openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000`, { Authorization: `Token ${s.key}`, 'X-Region-Override': 'mars-1' }));
    assert.equal(d.status, 400);
    assert.equal(typeof d.body.err_code, 'string');
    assert.match(String(d.body.err_msg), /unknown region/);
    assert.match(d.headers['dg-error'] ?? '', /unknown region/);
    assert.ok(d.headers['dg-request-id']);
    assert.deepEqual(d.body.regions, valid.regions);
    // smallest.ai.
    const p = await refusal(openSocket(`${s.wsUrl}/waves/v1/pulse/get_text?language=en&world-part=moon`, { Authorization: `Bearer ${s.key}` }));
    assert.equal(p.status, 400);
    assert.equal(p.body.status, 'error');
    assert.match(String((p.body.error as { message: string }).message), /unknown world part "moon"/);
    assert.deepEqual(p.body.world_parts, valid.world_parts);
    // TTS WebSocket.
    const t = await refusal(openTts(s, `/v1/tts/${TTS}?region=mars-1`));
    assert.equal(t.status, 400);
    assert.equal(t.body.error, 'config_error');
    assert.deepEqual({ regions: t.body.regions, world_parts: t.body.world_parts }, { regions: ['eu-north-1', 'us-east-1'], world_parts: ['eu', 'na'] });
    // A known region this model is not offered in.
    const n = await refusal(openSocket(`${s.wsUrl}/v1/stt/${ONLY_EU}`, { Authorization: `Bearer ${s.key}`, 'X-Region-Override': 'us-east-1' }));
    assert.equal(n.status, 400);
    assert.match(String(n.body.message), /not offered in region "us-east-1"/);
    assert.deepEqual(n.body.regions, ['eu-north-1']);
  });

  it('HTTP routes refuse a bad pin with 400 before reading the body (STT and TTS, SLNG and Deepgram)', async () => {
    const r1 = await fetch(`${s.url}/v1/stt/${MULTI}?world-part=moon`, { method: 'POST', headers: { Authorization: `Bearer ${s.key}`, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(clip.bytes.subarray(0, 3200)) });
    assert.equal(r1.status, 400);
    const b1 = (await r1.json()) as Record<string, unknown>;
    assert.equal(b1.error, 'config_error');
    assert.deepEqual(b1.world_parts, ['eu', 'na', 'ap']);
    const r2 = await fetch(`${s.url}/v1/tts/${TTS}`, { method: 'POST', headers: { Authorization: `Bearer ${s.key}`, 'Content-Type': 'application/json', 'X-Region-Override': 'ap-southeast-2' }, body: JSON.stringify({ text: 'hello' }) });
    assert.equal(r2.status, 400);
    const b2 = (await r2.json()) as Record<string, unknown>;
    assert.deepEqual(b2.regions, ['eu-north-1', 'us-east-1']);
    const r3 = await fetch(`${s.url}/v1/tts/${TTS}`, { method: 'POST', headers: { Authorization: `Bearer ${s.key}`, 'Content-Type': 'application/json', 'X-Region-Override': 'eu-north-1' }, body: JSON.stringify({ text: 'hello' }) });
    assert.equal(r3.status, 200);
    await r3.arrayBuffer();
  });

  it('TTS: a region pin picks the instance that synthesises', async () => {
    const eu = s.ttsEngines.get('tts-eu')!;
    const before = eu.stats();
    const c = await openTts(s, `/v1/tts/${TTS}`, { Authorization: `Bearer ${s.key}`, 'X-Region-Override': 'eu-north-1' });
    c.send({ type: 'init', config: { encoding: 'linear16', sample_rate: 16000 } });
    await c.waitType('ready');
    c.send({ type: 'text', text: 'Hello there.' });
    c.send({ type: 'flush' });
    await c.waitType('flushed');
    c.ws.close();
    await c.closed;
    assert.ok(eu.stats().finishedJobs > before.finishedJobs, `tts-eu synthesised: ${JSON.stringify(eu.stats())}`);
    assert.equal(s.ttsEngines.get('tts-us')!.stats().finishedJobs, 0, 'tts-us (home) synthesised nothing');
  });

  it('X-Slng-Provider-Key on a slng/ route is refused with 400 before the upgrade; external routes take it', async () => {
    const r = await refusal(openSocket(`${s.wsUrl}/v1/stt/${MULTI}`, { Authorization: `Bearer ${s.key}`, 'X-Slng-Provider-Key': 'sk-provider' }));
    assert.equal(r.status, 400);
    assert.equal(r.body.message, 'BYOK is only supported for external STT/TTS routes');
    const t = await refusal(openTts(s, `/v1/tts/${TTS}`, { Authorization: `Bearer ${s.key}`, 'X-Slng-Provider-Key': 'sk-provider' }));
    assert.equal(t.status, 400);
    assert.equal(t.body.message, 'BYOK is only supported for external STT/TTS routes');
    const h = await fetch(`${s.url}/v1/stt/${MULTI}`, { method: 'POST', headers: { Authorization: `Bearer ${s.key}`, 'Content-Type': 'application/octet-stream', 'X-Slng-Provider-Key': 'sk-provider' }, body: new Uint8Array(clip.bytes.subarray(0, 3200)) });
    assert.equal(h.status, 400);
    assert.equal(((await h.json()) as { message: string }).message, 'BYOK is only supported for external STT/TTS routes');
    const ok = await openSocket(`${s.wsUrl}/v1/stt/${EXTERNAL}`, { Authorization: `Bearer ${s.key}`, 'X-Slng-Provider-Key': 'sk-provider' });
    ok.ws.close();
    await ok.closed;
  });

  it('GET /v1/models lists regions, world parts and backend counts, without settings or secrets', async () => {
    const r = await fetch(`${s.url}/v1/models`);
    const text = await r.text();
    const { models } = JSON.parse(text) as { models: Record<string, unknown>[] };
    const multi = models.find((m) => m.code === MULTI)!;
    assert.deepEqual({ regions: multi.regions, world_parts: multi.world_parts, backends: multi.backends }, { regions: ['eu-north-1', 'us-east-1', 'ap-southeast-2'], world_parts: ['eu', 'na', 'ap'], backends: 3 });
    const only = models.find((m) => m.code === ONLY_EU)!;
    assert.deepEqual({ regions: only.regions, world_parts: only.world_parts, backends: only.backends }, { regions: ['eu-north-1'], world_parts: ['eu'], backends: 1 });
    const tts = models.find((m) => m.code === TTS)!;
    assert.deepEqual({ regions: tts.regions, world_parts: tts.world_parts, backends: tts.backends }, { regions: ['eu-north-1', 'us-east-1'], world_parts: ['eu', 'na'], backends: 2 });
    assert.doesNotMatch(text, /served by|"script"|https?:\/\//, 'no engine settings or upstream URLs');
  });
});

describe('routing: failures at start', () => {
  let s: TestServer;
  before(async () => {
    clip ??= await loadClip('asr_en/en_cmu_goforward.wav');
    s = await startRegionServer();
    const fail = { failAtStart: { code: 'provider_error', message: 'upstream refused the connection', retryable: true } };
    (s.engines.get('fake-eu') as FakeSttEngine).script = fail;
    (s.engines.get('fake-us') as FakeSttEngine).script = fail;
  });
  after(async () => s?.cleanup());

  it('a pinned region whose only backend fails: backend_connection_failed in the dialect, no other region', async () => {
    const c = await openSocket(`${s.wsUrl}/v1/stt/${MULTI}`, { Authorization: `Bearer ${s.key}`, 'X-Region-Override': 'eu-north-1' });
    c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16' } });
    const closed = await c.closed;
    assert.deepEqual(c.messages.at(-1), { type: 'error', code: 'backend_connection_failed', message: 'Failed to connect to backend: upstream refused the connection' });
    assert.equal(closed.code, 1011);
    assert.equal((s.engines.get('fake-ap') as FakeSttEngine).started.length, 0, 'the AP backend was never tried');
    // Deepgram /v1/listen: the close frame carries it.
    const d = await openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000&region=eu-north-1`, { Authorization: `Token ${s.key}` });
    const dc = await d.closed;
    assert.equal(dc.code, 1011);
    assert.match(dc.reason, /Failed to connect to backend/);
  });

  it('unpinned: the home backend fails and the next region serves, transparently', async () => {
    const c = await openUnified(s, MULTI);
    assert.equal(await servedBy(c), 'fake-ap', 'us (home) and eu fail: ap serves');
    assert.equal(c.messages.filter((m) => m.type === 'error').length, 0);
  });

  it('metrics and /v1/status show the backends: connects, failures, failovers, health with region and world part', async () => {
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: { Authorization: `Bearer ${s.key}` } })).text();
    assert.match(metrics, /voxgate_backend_connect_seconds_count\{backend="fake-ap"\} [1-9]/);
    assert.match(metrics, /voxgate_backend_failures_total\{backend="fake-eu",reason="provider_error"\} [1-9]/);
    // fake-eu was already cooling (the pinned test): the unpinned session went from fake-us to fake-ap.
    assert.match(metrics, /voxgate_backend_failovers_total\{from="fake-us",to="fake-ap"\} [1-9]/);
    assert.match(metrics, /voxgate_backend_failovers_total\{from="fake-eu",to="none"\} [1-9]/);
    assert.match(metrics, /voxgate_backend_active_sessions\{backend="fake-ap"\} 0/);
    const status = (await (await fetch(`${s.url}/v1/status`, { headers: { Authorization: `Bearer ${s.key}` } })).json()) as { backends: Record<string, Record<string, unknown>> };
    assert.equal(status.backends['fake-eu']!.state, 'cooling');
    assert.equal(status.backends['fake-eu']!.region, 'eu-north-1');
    assert.equal(status.backends['fake-eu']!.world_part, 'eu');
    assert.equal(status.backends['fake-ap']!.state, 'healthy');
    assert.equal(status.backends['fake-ap']!.world_part, 'ap');
    assert.equal(status.backends['tts-us']!.region, 'us-east-1');
    assert.ok((status.backends['fake-ap']!.successes as number) >= 1);
  });

  it('the active-session gauge counts a live session on its backend and releases it at the end', async () => {
    const c = await openUnified(s, `${MULTI}?region=ap-southeast-2`);
    await c.sendBinary(clip.bytes.subarray(0, 3200));
    const live = await (await fetch(`${s.url}/metrics`, { headers: { Authorization: `Bearer ${s.key}` } })).text();
    assert.match(live, /voxgate_backend_active_sessions\{backend="fake-ap"\} 1/);
    c.ws.close();
    await c.closed;
    const t0 = Date.now();
    for (;;) {
      const m = await (await fetch(`${s.url}/metrics`, { headers: { Authorization: `Bearer ${s.key}` } })).text();
      if (/voxgate_backend_active_sessions\{backend="fake-ap"\} 0/.test(m)) break;
      assert.ok(Date.now() - t0 < 5000, 'the gauge went back to 0');
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});

describe('backends.ts: overrides and candidate order (pure)', () => {
  const cfg = {
    engines: { a: { region: 'eu-north-1' }, b: { region: 'us-east-1' }, c: { region: 'ap-southeast-2' }, d: { region: 'us-east-1' }, e: { region: 'eu-north-1' } },
    gateway: { region: 'us-east-1', regions: { 'us-east-1': { worldPart: 'na' }, 'eu-north-1': { worldPart: 'eu' }, 'ap-southeast-2': { worldPart: 'ap' }, 'asia-south1': { worldPart: 'ap' } } },
  };
  const model = { code: 'slng/x/y:z', engine: 'a', backends: ['a', 'b', 'c', 'd', 'e'] };
  const healthy = { isAvailable: () => true };
  const ids = (o: RoutingOverrides, h: { isAvailable(id: string): boolean } = healthy) => selectBackends(model, o, cfg, h).map((c) => c.id);

  it('resolveOverrides: header over query, lists lower-cased and trimmed, empty = absent', () => {
    const u = new URL('http://x/v1/stt/m?region=ap-southeast-2&world-part=AP');
    assert.deepEqual(resolveOverrides({ 'x-region-override': ' EU-North-1 , us-east-1,' }, u), { region: ['eu-north-1', 'us-east-1'], worldPart: ['ap'] });
    assert.deepEqual(resolveOverrides({}, u), { region: ['ap-southeast-2'], worldPart: ['ap'] });
    assert.deepEqual(resolveOverrides({ 'x-world-part-override': 'eu' }, new URL('http://x/?region=')), { worldPart: ['eu'] });
  });

  it('no pin: home region first, then the others in model order; cooling backends after available ones in each group', () => {
    assert.deepEqual(ids({}), ['b', 'd', 'a', 'c', 'e']);
    assert.deepEqual(ids({}, { isAvailable: (id) => id !== 'b' && id !== 'a' }), ['d', 'b', 'c', 'e', 'a']);
  });

  it('region pin: only that region, list order; world part: only that part, home region first', () => {
    assert.deepEqual(ids({ region: ['eu-north-1'] }), ['a', 'e']);
    assert.deepEqual(ids({ region: ['ap-southeast-2', 'us-east-1'] }), ['c', 'b', 'd']);
    assert.deepEqual(ids({ region: ['eu-north-1'] }, { isAvailable: (id) => id !== 'a' }), ['e', 'a']);
    assert.deepEqual(ids({ worldPart: ['na', 'eu'] }), ['b', 'd', 'a', 'e']);
    assert.deepEqual(ids({ region: ['eu-north-1'], worldPart: ['moon'] }), ['a', 'e'], 'region wins; the world part is not even checked');
  });

  it('bad pins: RoutingError config_error listing the valid values', () => {
    for (const o of [{ region: ['mars-1'] }, { region: ['asia-south1'] }, { worldPart: ['moon'] }, { region: ['mars-1', 'eu-north-1'] }]) {
      assert.throws(
        () => ids(o),
        (e: unknown) => e instanceof RoutingError && e.code === 'config_error' && e.httpStatus === 400 && JSON.stringify(e.extra) === JSON.stringify({ regions: ['eu-north-1', 'us-east-1', 'ap-southeast-2'], world_parts: ['eu', 'na', 'ap'] }),
        JSON.stringify(o),
      );
    }
  });

  it('BYOK: refused on slng/ models only', () => {
    assert.equal(checkByok({ 'x-slng-provider-key': 'k' }, 'slng/deepgram/nova:3-en')?.message, 'BYOK is only supported for external STT/TTS routes');
    assert.equal(checkByok({ 'x-slng-provider-key': 'k' }, 'deepgram/nova:3'), null);
    assert.equal(checkByok({}, 'slng/deepgram/nova:3-en'), null);
  });
});
