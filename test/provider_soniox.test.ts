/**
 * Engine type `soniox` (issue 11; shared/spec/upstreams.md §1.10): the adapter against a
 * protocol-faithful replay fake (test/support/replay_fake.ts) serving JSONL fixtures written from
 * Soniox's documented WebSocket API (test/fixtures/upstreams/soniox/*.jsonl), real sockets, real speech
 * from ../shared/data. Checks what the adapter sends (URL, Bearer auth, config first, binary audio,
 * finalize/keepalive/empty end frame), the token → partial/final mapping (sub-word assembly, `<end>` →
 * speech_final, `<fin>` → exactly one fromFinalize final), error frames, refused and dropped
 * connections, the account cap before dialling, residency hosts; then an end-to-end session through a
 * real gateway, and a cross-provider failover: a `deepgram`-type backend (a real voxgate `/v1/listen`
 * behind a fault-injecting proxy) killed mid-stream, the Soniox fake takes over with every final
 * delivered once, in order, and no audio lost. Fakes fire on audio received, never on wall-clock time.
 *
 * Opt-in live test: `SONIOX_API_KEY=… node --test dist/test/provider_soniox.test.js`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { resetAccountLimiters } from '../src/engines/limits.js';
import { assembleWords, createSonioxSttEngine, SONIOX_HOSTS, type SonioxSttEngine } from '../src/engines/providers/soniox/index.js';
import type { SttStream, SttStreamConfig } from '../src/engines/stt/types.js';
import { packageRoot } from '../src/util/paths.js';
import { VoxgateError } from '../src/util/errors.js';
import { FaultProxy } from './support/fault_proxy.js';
import { loadFixture, ReplayFake } from './support/replay_fake.js';
import { eventually, loadClip, openSocket, silence, startConfiguredServer, startTestServer, type Clip, type RecordingClient, type TestServer } from './helpers.js';
import { watch } from './support/stt_watch.js';

const KEY_ENV = 'VOXGATE_TEST_SONIOX_KEY';
const KEY = 'soniox-test-key';
const STREAM: SttStreamConfig = { language: 'en', partials: true, wordTimestamps: true, vad: true, endpointingMs: 300 };
const fx = (name: string) => loadFixture(path.join(packageRoot(), 'test', 'fixtures', 'upstreams', 'soniox', name));

function cfgWith(engines: VoxgateConfig['engines']): VoxgateConfig {
  const base = loadConfig();
  return { ...base, engines: { ...base.engines, ...engines } };
}

function engine(url: string, extra: Record<string, unknown> = {}): SonioxSttEngine {
  return createSonioxSttEngine(cfgWith({ sx: { type: 'soniox', url: `${url}/transcribe-websocket`, apiKeyEnv: KEY_ENV, ...extra } }), 'sx');
}

/** Write `seconds` of `clip` in 100 ms chunks, yielding to the event loop between chunks. */
async function feed(s: SttStream, clip: Clip, seconds: number): Promise<void> {
  const n = Math.min(clip.samples.length, Math.round(seconds * 16000));
  for (let i = 0; i < n; i += 1600) {
    s.write(clip.samples.subarray(i, Math.min(n, i + 1600)));
    await new Promise((r) => setImmediate(r));
  }
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

let clip: Clip;
before(async () => {
  clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav'); // 5.9 s
  process.env[KEY_ENV] = KEY;
});
after(() => {
  delete process.env[KEY_ENV];
});

describe('soniox adapter on the replay fake', () => {
  it('config first, binary audio, tokens → partials and finals (sub-words, <end> speech_final, <fin> fromFinalize), empty end frame', async () => {
    const fake = new ReplayFake({ fixtures: [fx('stream.jsonl')] });
    const { ws } = await fake.start();
    try {
      const e = engine(ws);
      const s = await e.start(STREAM, { requestId: 'req-1', modelCode: 'test/soniox' });
      const seen = watch(s);
      await feed(s, clip, 2.5);
      await eventually(() => seen.finals.length >= 1 && seen.partials.some((p) => p.transcript === 'How are you'), 5000, 'first final and the last partial');
      s.finalize();
      await eventually(() => seen.finals.length >= 2, 5000, 'the finalize answer');
      await s.close();
      assert.deepEqual(fake.violations(), []);
      assert.deepEqual(fake.sessions[0]!.unmet, []);
      const sent = fake.sessions[0]!.textIn;
      assert.equal((sent[0] as { client_reference_id?: string }).client_reference_id, 'req-1', 'the request id labels the Soniox request');
      assert.deepEqual(sent.slice(1), [{ type: 'finalize' }, ''], 'finalize, then the empty end-of-audio text frame');
      assert.ok(fake.sessions[0]!.audioFrames >= 25, 'audio as binary frames');
      assert.deepEqual(
        seen.partials.map((p) => p.transcript),
        ['Hello', 'Hello world', 'How', 'How are you'],
      );
      assert.deepEqual(
        seen.finals.map((f) => [f.transcript, f.speechFinal, f.fromFinalize, r3(f.start), r3(f.duration)]),
        [
          ['Hello world.', true, false, 0.12, 0.6],
          ['How are you?', false, true, 1.6, 0.72],
        ],
      );
      assert.deepEqual(
        seen.finals[0]!.words!.map((w) => [w.word, w.punctuatedWord, r3(w.start), r3(w.end), w.confidence]),
        [
          ['hello', 'Hello', 0.12, 0.3, 0.95],
          ['world', 'world.', 0.34, 0.72, 0.93],
        ],
      );
      assert.deepEqual(seen.speech, [0.12, 1.6], 'speech_started at the first token of each utterance');
      assert.deepEqual(seen.errors, []);
      assert.equal(e.stats().activeStreams, 0);
    } finally {
      await fake.close();
    }
  });

  it('exactly one fromFinalize final per finalize (an empty one when nothing is pending); the end frame flushes what is left', async () => {
    const fake = new ReplayFake({ fixtures: [fx('finalize_twice.jsonl')] });
    const { ws } = await fake.start();
    try {
      // No fallback empty final from the base's finalize timer: Soniox's own <fin> must answer each finalize.
      const s = await engine(ws, { finalizeTimeoutMs: 600_000 }).start({ ...STREAM, vad: false });
      const seen = watch(s);
      await feed(s, clip, 0.5);
      await eventually(() => seen.partials.length === 1, 5000, 'the partial');
      s.finalize();
      await eventually(() => seen.finals.length === 1, 5000, 'the first finalize answer');
      s.finalize();
      await eventually(() => seen.finals.length === 2, 5000, 'the second finalize answer');
      await feed(s, clip, 1.0);
      await s.close();
      assert.deepEqual(
        seen.finals.map((f) => [f.transcript, f.fromFinalize, f.speechFinal]),
        [
          ['One', true, false],
          ['', true, false],
          ['Two.', false, false],
        ],
      );
      assert.deepEqual(seen.speech, [], 'no speech_started without vad');
      assert.deepEqual(fake.violations(), []);
    } finally {
      await fake.close();
    }
  });

  it('a long utterance without an endpoint is cut into finals at complete words every maxUtteranceMs', async () => {
    const fake = new ReplayFake({ fixtures: [fx('long_utterance.jsonl')] });
    const { ws } = await fake.start();
    try {
      const s = await engine(ws).start({ ...STREAM, vad: false });
      const seen = watch(s);
      const long = await loadClip('asr_en/en_ls_2412-153948-0000.wav'); // 11.7 s
      await feed(s, long, 11);
      await eventually(() => seen.finals.length === 1, 5000, 'the cut');
      await s.close();
      assert.deepEqual(
        seen.finals.map((f) => [f.transcript, f.speechFinal, f.fromFinalize, r3(f.start), r3(f.duration)]),
        [
          ['Alpha bravo charlie', false, false, 0, 10.5],
          ['delta', false, false, 10.5, 0.5],
        ],
      );
      assert.deepEqual(fake.violations(), []);
    } finally {
      await fake.close();
    }
  });

  it('diarization: enable_speaker_diarization, token speakers → word labels in order of appearance, the final\'s main speaker', async () => {
    const fake = new ReplayFake({ fixtures: [fx('diarize.jsonl')] });
    const { ws } = await fake.start();
    try {
      const e = engine(ws);
      assert.equal(e.capabilities.diarization, true);
      const s = await e.start({ ...STREAM, diarize: {} });
      const seen = watch(s);
      await feed(s, clip, 1.0);
      await eventually(() => seen.finals.length === 1, 5000, 'the final');
      await s.close();
      assert.deepEqual(seen.finals[0]!.words!.map((w) => [w.word, w.speaker]), [
        ['hi', 0],
        ['there', 0],
        ['yes', 1],
      ]);
      assert.equal(seen.finals[0]!.speaker, 0);
      assert.deepEqual(fake.violations(), []);
    } finally {
      await fake.close();
    }
  });

  it('error frames map to SLNG codes with the key redacted; a refused upgrade and a dropped connection too', async () => {
    const cases: [string, (e: unknown) => boolean][] = [
      ['error_frame_401.jsonl', (e) => e instanceof VoxgateError && e.code === 'backend_connection_failed' && !e.retryable && !e.message.includes(KEY) && /401/.test(e.message)],
      ['error_frame_503.jsonl', (e) => e instanceof VoxgateError && e.code === 'provider_error' && e.retryable && /Cannot continue request/.test(e.message)],
      ['error_frame_429.jsonl', (e) => e instanceof VoxgateError && e.code === 'rate_limit' && e.retryable],
      ['abrupt_close.jsonl', (e) => e instanceof VoxgateError && e.code === 'provider_error' && e.retryable && /1006|send to backend failed/.test(e.message)],
    ];
    for (const [name, check] of cases) {
      const fake = new ReplayFake({ fixtures: [fx(name)] });
      const { ws } = await fake.start();
      try {
        const s = await engine(ws).start(STREAM);
        const seen = watch(s);
        await feed(s, clip, 1);
        await eventually(() => seen.errors.length > 0, 5000, `the error of ${name}`);
        assert.ok(check(seen.errors[0]), `${name}: ${String(seen.errors[0])}`);
        assert.deepEqual(fake.violations(), [], name);
      } finally {
        await fake.close();
      }
    }
    const fake = new ReplayFake({ fixtures: [fx('refuse_401.jsonl')] });
    const { ws } = await fake.start();
    try {
      await assert.rejects(engine(ws).start(STREAM), (e: unknown) => e instanceof VoxgateError && e.code === 'backend_connection_failed' && !e.retryable && /401/.test(e.message));
      assert.equal(fake.sessions[0]!.headers.authorization, `Bearer ${KEY}`);
    } finally {
      await fake.close();
    }
  });

  it('keepalive is sent while no audio flows; the 503 frame after a final keeps the final', async () => {
    const fake = new ReplayFake({ fixtures: [fx('error_frame_503.jsonl')] });
    const { ws } = await fake.start();
    try {
      const s = await engine(ws, { keepAliveMs: 40, pingIntervalMs: 20, stallTimeoutMs: 60_000 }).start(STREAM);
      const seen = watch(s);
      await feed(s, clip, 0.5);
      await eventually(() => fake.sessions[0]!.textIn.some((m) => (m as { type?: string }).type === 'keepalive'), 5000, 'a keepalive');
      await feed(s, clip, 0.2);
      await eventually(() => seen.errors.length > 0);
      s.abort();
      // The fixture's final token " Hi" came before the error: it is pending (no <end>), so no final — but no crash either.
      assert.equal(seen.finals.length, 0);
    } finally {
      await fake.close();
    }
  });

  it('the account cap is enforced before dialling (rate_limit, no provider connection); BYOK skips it', async () => {
    resetAccountLimiters();
    const fake = new ReplayFake({ fixtures: [fx('stream.jsonl')] });
    const { ws } = await fake.start();
    try {
      const e = engine(ws, { maxConcurrent: 1, queueWaitMs: 0 });
      const first = await e.start(STREAM);
      await assert.rejects(e.start(STREAM), (err: unknown) => err instanceof VoxgateError && err.code === 'rate_limit' && err.retryable);
      assert.equal(fake.sessions.length, 1, 'the second start never dialled');
      const byok = await e.start(STREAM, { requestId: 'r', modelCode: 'soniox/x', providerKey: 'client-own-key' });
      assert.equal(fake.sessions[1]!.headers.authorization, 'Bearer client-own-key');
      byok.abort();
      const waiting = engine(ws, { maxConcurrent: 1, queueWaitMs: 5000 }).start(STREAM);
      first.abort();
      (await waiting).abort(); // the slot freed by abort() went to the waiter
      assert.equal(fake.sessions.length, 3);
    } finally {
      resetAccountLimiters();
      await fake.close();
    }
  });

  it('residency hosts from the region, the audio format from the stream, strict settings', () => {
    const mk = (s: Record<string, unknown>) => createSonioxSttEngine(cfgWith({ sx: { type: 'soniox', ...s } }), 'sx');
    assert.equal(mk({}).url, SONIOX_HOSTS.us);
    assert.equal(mk({ region: 'eu-north-1' }).url, SONIOX_HOSTS.eu);
    assert.equal(mk({ region: 'ap-northeast-1' }).url, SONIOX_HOSTS.jp);
    assert.equal(mk({ region: 'eu-north-1', residency: 'us' }).url, SONIOX_HOSTS.us);
    assert.equal(SONIOX_HOSTS.jp, 'wss://stt-rt.jp.soniox.com/transcribe-websocket');
    assert.throws(() => mk({ config: { model: 'x' } }), /engines\.sx .*config may not set/s);
    assert.throws(() => mk({ apiKey: 'sk-1' }), /engines\.sx \(type soniox\) is invalid/);
    const e = mk({ config: { context: { terms: ['voxgate'] } } });
    const pcm = JSON.parse(e.firstFrame(STREAM, 'id'));
    assert.deepEqual(pcm, { context: { terms: ['voxgate'] }, model: 'stt-rt-v4', audio_format: 'pcm_s16le', sample_rate: 16000, num_channels: 1, language_hints: ['en'], enable_endpoint_detection: true, max_endpoint_delay_ms: 500, client_reference_id: 'id' });
    const mulaw = JSON.parse(e.firstFrame({ ...STREAM, vad: false, passthrough: { encoding: 'mulaw', sampleRate: 8000, channels: 1 } }));
    assert.deepEqual([mulaw.audio_format, mulaw.sample_rate, mulaw.enable_endpoint_detection, 'max_endpoint_delay_ms' in mulaw], ['mulaw', 8000, false, false]);
    const ogg = JSON.parse(e.firstFrame({ ...STREAM, passthrough: { encoding: 'ogg-opus', sampleRate: 48000, channels: 1 } }));
    assert.deepEqual([ogg.audio_format, 'sample_rate' in ogg], ['auto', false]);
    assert.deepEqual(e.capabilities.passthroughEncodings?.includes('opus'), false, 'raw Opus is decoded at the gateway');
    assert.equal(e.replayPace, 1, 'failover replays at real time (Soniox wants real-time cadence)');
  });

  it('assembleWords: sub-word tokens, punctuation, control tokens, languages without spaces', () => {
    const w = assembleWords([
      { text: 'Bea', start_ms: 0, end_ms: 100, confidence: 0.9 },
      { text: 'ut', start_ms: 100, end_ms: 200, confidence: 0.8 },
      { text: 'iful', start_ms: 200, end_ms: 300, confidence: 0.95 },
      { text: ',', start_ms: 300, end_ms: 310, confidence: 1 },
      { text: ' day', start_ms: 400, end_ms: 600, confidence: 0.7 },
      { text: '<end>', is_final: true },
    ]);
    assert.deepEqual(w, [
      { word: 'beautiful', punctuatedWord: 'Beautiful,', start: 0, end: 0.31, confidence: 0.8 },
      { word: 'day', punctuatedWord: 'day', start: 0.4, end: 0.6, confidence: 0.7 },
    ]);
    const ja = assembleWords(
      [
        { text: 'こんにちは', start_ms: 0, end_ms: 500 },
        { text: '世界', start_ms: 500, end_ms: 900 },
      ],
      false,
    );
    assert.deepEqual(ja.map((x) => x.word), ['こんにちは', '世界']);
  });
});

test('bench.json: the descriptor\'s engine on its fixture relays a real clip with partials and finals and no violation', async () => {
  const desc = JSON.parse(readFileSync(path.join(packageRoot(), 'test', 'fixtures', 'upstreams', 'soniox', 'bench.json'), 'utf8')) as { stt: { engine: Record<string, unknown>; fixture: string } };
  const fake = new ReplayFake({ fixtures: [fx(desc.stt.fixture)] });
  const { ws } = await fake.start();
  try {
    const e = createSonioxSttEngine(cfgWith({ bench: { ...desc.stt.engine, url: ws } }), 'bench');
    const s = await e.start(STREAM);
    const seen = watch(s);
    const long = await loadClip('asr_en/en_ls_2412-153948-0000.wav'); // 11.7 s
    await feed(s, long, 9);
    await eventually(() => seen.finals.length === 8, 10_000, 'eight finals');
    await s.close();
    assert.ok(seen.partials.length >= 8);
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(fake.violations(), []);
  } finally {
    await fake.close();
  }
});

describe('soniox end to end through a real gateway', () => {
  it('a unified client with real speech gets the fake\'s partials and finals; finalize answered once', async () => {
    const fake = new ReplayFake({ fixtures: [fx('stream.jsonl')] });
    const { ws } = await fake.start();
    const base = loadConfig();
    const s = await startConfiguredServer({
      ...base,
      engines: { sx: { type: 'soniox', url: `${ws}/transcribe-websocket`, apiKeyEnv: KEY_ENV } },
      stt: { models: [{ code: 'soniox/stt-rt:v4', engine: 'sx', dialect: 'unified', options: {}, aliases: [] }] },
      compat: {},
    });
    try {
      const c = await openSocket(`${s.wsUrl}/v1/stt/soniox/stt-rt:v4`, { Authorization: `Bearer ${s.key}` });
      c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true } });
      await c.waitType('ready');
      await c.sendBinary(clip.bytes.subarray(0, 2.5 * 32000));
      await c.waitFor((m) => m.type === 'partial_transcript' && m.transcript === 'How are you');
      c.sendJson({ type: 'finalize' });
      await c.waitFor((m) => m.type === 'final_transcript' && m.from_finalize === true);
      c.sendJson({ type: 'close' });
      await c.closed;
      const finals = c.ofType('final_transcript').map((m) => [m.transcript, m.speech_final, m.from_finalize, m.start, m.duration]);
      assert.deepEqual(finals, [
        ['Hello world.', true, false, 0.12, 0.6],
        ['How are you?', false, true, 1.6, 0.72],
      ]);
      assert.deepEqual(c.ofType('error'), []);
      assert.deepEqual(fake.violations(), []);
      assert.equal(fake.sessions[0]!.headers.authorization, `Bearer ${KEY}`);
    } finally {
      await s.cleanup();
      await fake.close();
    }
  });
});

describe('cross-provider STT failover: Deepgram-type (voxgate /v1/listen) killed mid-stream → Soniox fake', () => {
  let up: TestServer;
  let proxy: FaultProxy;
  let fake: ReplayFake;
  let gw: TestServer;
  const UP_KEY_ENV = 'VOXGATE_TEST_SONIOX_UP_KEY';
  const MODEL = 'test/dg-then-soniox:en';

  before(async () => {
    up = await startTestServer();
    process.env[UP_KEY_ENV] = up.key;
    proxy = await FaultProxy.start(up.wsUrl);
    fake = new ReplayFake({ fixtures: [fx('takeover.jsonl')] });
    const { ws } = await fake.start();
    const base = loadConfig();
    gw = await startConfiguredServer({
      ...base,
      engines: {
        'dg-up': { type: 'deepgram', url: proxy.wsUrl, model: 'nova-3', apiKeyEnv: UP_KEY_ENV, replayPace: null },
        sx: { type: 'soniox', url: `${ws}/transcribe-websocket`, apiKeyEnv: KEY_ENV },
      },
      stt: { models: [{ code: MODEL, engine: 'dg-up', backends: ['dg-up', 'sx'], dialect: 'unified', options: {}, aliases: [] }] },
      compat: {},
    });
  });
  after(async () => {
    await gw?.cleanup();
    await fake?.close();
    await proxy?.close();
    await up?.cleanup();
    delete process.env[UP_KEY_ENV];
  });

  it('every final once, in order; the Soniox fake receives the audio from the last final on (nothing lost)', async () => {
    const c: RecordingClient = await openSocket(`${gw.wsUrl}/v1/stt/${MODEL}`, { Authorization: `Bearer ${gw.key}` });
    c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_word_timestamps: true } });
    await c.waitType('ready');
    const pause = silence(1500);
    // Part 1 on the Deepgram-type backend: speech, then a pause that ends the utterance.
    await c.sendBinary(Buffer.concat([clip.bytes, pause]));
    const first = await c.waitFor((m) => m.type === 'final_transcript' && (m.transcript as string).length > 0, 30_000);
    assert.equal(fake.sessions.length, 0, 'the Soniox fake is not used while the first backend is healthy');
    // Kill the first backend mid-stream (TCP reset, no close frame), then keep streaming.
    assert.ok(proxy.killAll() >= 1);
    const part2 = Buffer.concat([silence(1000), (await loadClip('asr_en/en_ls_61-70968-0000.wav')).bytes, silence(1000)]);
    await c.sendBinary(part2);
    await c.waitFor((m) => m.type === 'final_transcript' && /wizard/.test(m.transcript as string), 30_000);
    c.sendJson({ type: 'close' });
    await c.closed;

    const finals = c.ofType('final_transcript').filter((m) => (m.transcript as string).length > 0);
    const texts = finals.map((m) => m.transcript as string);
    assert.equal(texts[0], first.transcript, 'the first backend\'s final is delivered once, first');
    const aFinals = finals.filter((m) => !/He began|wizard/.test(m.transcript as string));
    const sxFinals = finals.filter((m) => /He began|wizard/.test(m.transcript as string));
    assert.deepEqual(
      sxFinals.map((m) => m.transcript),
      ['He began a confused complaint', 'against the wizard.'],
      'each Soniox final exactly once, in order',
    );
    assert.deepEqual(finals.slice(aFinals.length).map((m) => m.transcript), sxFinals.map((m) => m.transcript), 'no first-backend final after the switch');
    const starts = finals.map((m) => m.start as number);
    for (let i = 1; i < starts.length; i++) assert.ok(starts[i]! >= starts[i - 1]!, `finals in stream order: ${JSON.stringify(starts)}`);
    // No lost audio: the fake got everything from the last delivered final's end (replayed) to the end of the stream.
    const lastAEnd = Math.max(...aFinals.map((m) => (m.start as number) + (m.duration as number)));
    const total = (clip.bytes.length + pause.length + part2.length) / 32000;
    assert.equal(fake.sessions.length, 1);
    const got = fake.sessions[0]!.audioSeconds;
    assert.ok(Math.abs(got - (total - lastAEnd)) < 0.1, `Soniox received ${got.toFixed(3)} s; expected ${(total - lastAEnd).toFixed(3)} s (total ${total.toFixed(3)} − last final end ${lastAEnd.toFixed(3)})`);
    // Rebased to the client's clock: the fake's token at 0.9 s of its own audio is at replay start + 0.9 s.
    const he = sxFinals[0]!;
    assert.ok(Math.abs((he.start as number) - (total - got + 0.9)) < 0.01, `rebased start ${String(he.start)}`);
    assert.deepEqual(c.ofType('error'), []);
    assert.deepEqual(fake.violations(), []);
  });
});

test('live: Soniox real-time transcribes real speech, answers finalize once, ends cleanly', { skip: !process.env.SONIOX_API_KEY && 'needs SONIOX_API_KEY' }, async () => {
  const e = createSonioxSttEngine(cfgWith({ live: { type: 'soniox', apiKeyEnv: 'SONIOX_API_KEY', region: process.env.SONIOX_REGION ?? 'us-east-1' } }), 'live');
  const s = await e.start(STREAM, { requestId: globalThis.crypto.randomUUID(), modelCode: 'live' });
  const seen = watch(s);
  const go = await loadClip('asr_en/en_cmu_goforward.wav');
  for (let i = 0; i < go.samples.length; i += 1600) {
    s.write(go.samples.subarray(i, i + 1600));
    await new Promise((r) => setTimeout(r, 100)); // real-time cadence (SX3)
  }
  s.finalize();
  await eventually(() => seen.finals.some((f) => f.fromFinalize), 15_000, 'the finalize answer');
  await s.close();
  assert.deepEqual(seen.errors, []);
  assert.equal(seen.finals.filter((f) => f.fromFinalize).length, 1);
  assert.match(seen.finals.map((f) => f.transcript).join(' ').toLowerCase(), /forward/);
});
