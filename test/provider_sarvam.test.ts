/**
 * Engine type `sarvam` (issue 11; shared/spec/upstreams.md §1.11): streaming STT (saaras) and TTS
 * (bulbul) against a protocol-faithful replay fake (test/support/replay_fake.ts) serving JSONL fixtures
 * written from Sarvam's docs and the LiveKit plugin's wire (test/fixtures/upstreams/sarvam/*.jsonl).
 * Checks what the adapter sends (URL + query, `API-Subscription-Key`, base64 JSON audio, flush,
 * end_of_stream, keepalive as silent audio), the mapping (VAD events → speech_started and utterance
 * times on the stream clock, one final per `data`, the flush answer as the one fromFinalize final),
 * error frames, refusals, the account cap, TTS config/text/flush/audio/completion; then the Hindi
 * route: seed model `slng/deepgram/nova:3-hi` with a Sarvam backend in world part `ap` is served by the
 * Sarvam fake instead of being refused (unpinned, with `X-World-Part-Override: ap`, and when an
 * English-only engine is listed first), and a unified TTS session through a real gateway.
 * Fakes fire on audio received, never on wall-clock time.
 *
 * Opt-in live test: `SARVAM_API_KEY=… node --test dist/test/provider_sarvam.test.js`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { DEFAULT_STT_MODELS, loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { resetAccountLimiters } from '../src/engines/limits.js';
import { classifySarvamFrame, createSarvamSttEngine, createSarvamTtsEngine, sarvamPcm, splitText, type SarvamSttEngine } from '../src/engines/providers/sarvam/index.js';
import type { SttStream, SttStreamConfig } from '../src/engines/stt/types.js';
import { VoxgateError } from '../src/util/errors.js';
import { packageRoot } from '../src/util/paths.js';
import { loadFixture, ReplayFake, tonePcm } from './support/replay_fake.js';
import { eventually, loadClip, openSocket, startConfiguredServer, type Clip } from './helpers.js';
import { openTts } from './tts_helpers.js';
import { watch } from './support/stt_watch.js';

const KEY_ENV = 'VOXGATE_TEST_SARVAM_KEY';
const KEY = 'sarvam-test-key';
const HI: SttStreamConfig = { language: 'hi', partials: true, wordTimestamps: true, vad: true, endpointingMs: 300 };
const fx = (name: string) => loadFixture(path.join(packageRoot(), 'test', 'fixtures', 'upstreams', 'sarvam', name));
const NOVA_HI = 'slng/deepgram/nova:3-hi';

function cfgWith(engines: VoxgateConfig['engines']): VoxgateConfig {
  const base = loadConfig();
  return { ...base, engines: { ...base.engines, ...engines } };
}

function sttEngine(url: string, extra: Record<string, unknown> = {}): SarvamSttEngine {
  return createSarvamSttEngine(cfgWith({ sv: { type: 'sarvam', url, apiKeyEnv: KEY_ENV, closeDrainMs: 50, ...extra } }), 'sv');
}

let clip: Clip;
/** Position (samples) up to which {@link feedTo} has written, per stream. */
const written = new WeakMap<SttStream, number>();
/** Write the clip from where this stream left off up to `seconds`, 100 ms at a time. */
async function feedTo(s: SttStream, seconds: number): Promise<void> {
  const end = Math.round(seconds * 16000);
  for (let i = written.get(s) ?? 0; i < end; i += 1600) {
    s.write(clip.samples.subarray(i, Math.min(end, i + 1600)));
    await new Promise((r) => setImmediate(r));
  }
  written.set(s, end);
}

before(async () => {
  clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
  process.env[KEY_ENV] = KEY;
});
after(() => {
  delete process.env[KEY_ENV];
});

describe('sarvam STT adapter on the replay fake', () => {
  it('query + key header, base64 JSON audio, VAD events → speech_started and utterance times, data → final, flush → the one fromFinalize final, end_of_stream then a clean close', async () => {
    const fake = new ReplayFake({ fixtures: [fx('stt_stream.jsonl')] });
    const { ws } = await fake.start();
    try {
      const e = sttEngine(ws);
      assert.equal(e.capabilities.partials, false, 'saaras sends no partials');
      assert.equal(e.capabilities.wordTimestamps, false, 'no word times on the WebSocket');
      const s = await e.start(HI);
      const seen = watch(s);
      await feedTo(s, 0.3);
      await eventually(() => seen.speech.length === 1, 5000, 'START_SPEECH');
      await feedTo(s, 1.5);
      await eventually(() => seen.finals.length === 1, 5000, 'the first utterance');
      await feedTo(s, 2.0);
      await eventually(() => seen.speech.length === 2, 5000, 'the second START_SPEECH');
      await feedTo(s, 2.5);
      s.finalize();
      await eventually(() => seen.finals.length === 2, 5000, 'the flush answer');
      await s.close();
      assert.deepEqual(fake.violations(), []);
      assert.deepEqual(fake.sessions[0]!.unmet, []);
      assert.deepEqual(seen.speech, [0.3, 2.0], 'speech_started on the stream clock (audio sent when the event came)');
      assert.deepEqual(
        seen.finals.map((f) => [f.transcript, f.speechFinal, f.fromFinalize, f.start, Math.round(f.duration * 1000) / 1000, f.language]),
        [
          ['नमस्ते दुनिया', true, false, 0.3, 1.2, 'hi'],
          ['आप कैसे हैं', false, true, 2.0, 0.5, 'hi'],
        ],
      );
      assert.equal(fake.sessions[0]!.audioSeconds, 2.5, 'every sample reached Sarvam, base64-framed');
      assert.equal(fake.sessions[0]!.clientCloseCode, 1000);
      assert.deepEqual(seen.errors, []);
    } finally {
      await fake.close();
    }
  });

  it('keepalive is 100 ms of silent audio (Sarvam rejects frames without audio), not counted as stream audio', async () => {
    const fake = new ReplayFake({ fixtures: [fx('stt_hindi.jsonl')] });
    const { ws } = await fake.start();
    try {
      const s = await sttEngine(ws, { keepAliveMs: 40, pingIntervalMs: 20, stallTimeoutMs: 60_000 }).start(HI);
      await feedTo(s, 0.1);
      await eventually(() => fake.sessions[0]!.audioBytes >= 3200 + 2 * 3200, 5000, 'two keepalives');
      assert.equal(s.audioSeconds, 0.1, 'keepalive silence is not client audio');
      assert.deepEqual(fake.sessions[0]!.textIn, [], 'no non-audio frame was sent');
      s.abort();
      assert.deepEqual(fake.violations(), []);
    } finally {
      await fake.close();
    }
  });

  it('error frames and refusals map to SLNG codes with the key redacted; the account cap is enforced before dialling', async () => {
    const cases: [string, (e: unknown) => boolean][] = [
      ['stt_error_auth.jsonl', (e) => e instanceof VoxgateError && e.code === 'backend_connection_failed' && !e.retryable && !e.message.includes(KEY)],
      ['stt_error_internal.jsonl', (e) => e instanceof VoxgateError && e.code === 'provider_error' && e.retryable],
    ];
    for (const [name, check] of cases) {
      const fake = new ReplayFake({ fixtures: [fx(name)] });
      const { ws } = await fake.start();
      try {
        const s = await sttEngine(ws).start(HI);
        const seen = watch(s);
        await feedTo(s, 0.5);
        await eventually(() => seen.errors.length > 0, 5000, name);
        assert.ok(check(seen.errors[0]), `${name}: ${String(seen.errors[0])}`);
      } finally {
        await fake.close();
      }
    }
    const fake = new ReplayFake({ fixtures: [fx('stt_refuse_429.jsonl')] });
    const { ws } = await fake.start();
    try {
      await assert.rejects(sttEngine(ws).start(HI), (e: unknown) => e instanceof VoxgateError && e.code === 'rate_limit' && e.retryable);
      resetAccountLimiters();
      fake.setFixtures([fx('stt_hindi.jsonl')]);
      const e = sttEngine(ws, { maxConcurrent: 1, queueWaitMs: 0 });
      const first = await e.start(HI);
      const n = fake.sessions.length;
      await assert.rejects(e.start(HI), (err: unknown) => err instanceof VoxgateError && err.code === 'rate_limit');
      assert.equal(fake.sessions.length, n, 'refused before dialling');
      first.abort();
      (await e.start(HI)).abort();
    } finally {
      resetAccountLimiters();
      await fake.close();
    }
    assert.throws(() => createSarvamSttEngine(cfgWith({ sv: { type: 'sarvam', passthroughEncodings: ['opus'] } }), 'sv'), /engines\.sv \(type sarvam\) is invalid/);
    assert.equal(createSarvamSttEngine(cfgWith({ sv: { type: 'sarvam' } }), 'sv').url, 'wss://api.sarvam.ai/speech-to-text/ws');
  });
});

describe('sarvam is the Hindi route: seed model slng/deepgram/nova:3-hi', () => {
  /** A gateway whose nova:3-hi entry lists `backends`, with a Sarvam STT instance in asia-south1 (world part ap). */
  async function hindiGateway(fakeUrl: string, backends: string[]) {
    const base = loadConfig();
    const models = DEFAULT_STT_MODELS.map((m) => (m.code === NOVA_HI ? { ...m, backends } : m));
    return startConfiguredServer({
      ...base,
      engines: {
        pocketsphinx: { minIdleDecoders: 1, maxDecoders: 2 },
        // A Deepgram Hindi backend in the same world part that is down (nothing listens on port 1).
        'dg-hi': { type: 'deepgram', region: 'ap-south-1', url: 'ws://127.0.0.1:1', model: 'nova-3', languages: ['hi'], connectTimeoutMs: 2000 },
        'sarvam-in': { type: 'sarvam', region: 'asia-south1', url: fakeUrl, apiKeyEnv: KEY_ENV, closeDrainMs: 50 },
      },
      stt: { models },
    });
  }

  /** One unified session on nova:3-hi with `headers`; returns the finals and the fake session count. */
  async function hindiSession(wsUrl: string, key: string, headers: Record<string, string>) {
    const c = await openSocket(`${wsUrl}/v1/stt/${NOVA_HI}`, { Authorization: `Bearer ${key}`, ...headers });
    c.sendJson({ type: 'init', config: { sample_rate: 16000, encoding: 'linear16', dialect: 'unified' } });
    await c.waitType('ready');
    await c.sendBinary(clip.bytes.subarray(0, 2 * 32000));
    const f = await c.waitFor((m) => m.type === 'final_transcript');
    c.sendJson({ type: 'close' });
    await c.closed;
    assert.deepEqual(c.ofType('error'), []);
    return f;
  }

  it('served by the Sarvam fake: unpinned, with X-World-Part-Override: ap, with an English-only engine listed first, and as the failover of a Deepgram Hindi backend that is down', async () => {
    const fake = new ReplayFake({ fixtures: [fx('stt_hindi.jsonl')] });
    const { ws } = await fake.start();
    try {
      for (const [backends, headers] of [
        [['sarvam-in'], {}],
        [['sarvam-in'], { 'X-World-Part-Override': 'ap' }],
        [['pocketsphinx', 'sarvam-in'], { 'X-World-Part-Override': 'ap' }],
        [['pocketsphinx', 'sarvam-in'], {}],
        [['dg-hi', 'sarvam-in'], { 'X-World-Part-Override': 'ap' }],
      ] as [string[], Record<string, string>][]) {
        const s = await hindiGateway(ws, backends);
        try {
          const n = fake.sessions.length;
          const f = await hindiSession(s.wsUrl, s.key, headers);
          assert.equal(f.transcript, 'मेरा नाम सर्वम है', JSON.stringify({ backends, headers }));
          assert.equal(f.language, 'hi');
          assert.equal(f.speech_final, true);
          assert.equal(fake.sessions.length, n + 1, 'one Sarvam connection per session');
        } finally {
          await s.cleanup();
        }
      }
      assert.deepEqual(fake.violations(), []);
      assert.ok(fake.sessions.every((x) => x.query['language-code'] === 'hi-IN' && x.headers['api-subscription-key'] === KEY));
    } finally {
      await fake.close();
    }
  });

  it('without a Sarvam backend the English-only engine still refuses nova:3-hi (config_error before the upgrade)', async () => {
    const s = await hindiGateway('ws://127.0.0.1:1', ['pocketsphinx']);
    try {
      await assert.rejects(openSocket(`${s.wsUrl}/v1/stt/${NOVA_HI}`, { Authorization: `Bearer ${s.key}` }), (e: { statusCode?: number; body?: string }) => e.statusCode === 400 && /needs language hi/.test(e.body ?? ''));
    } finally {
      await s.cleanup();
    }
  });
});

describe('sarvam TTS (bulbul)', () => {
  it('frames and helpers: WAV header skipped, completion event ends the segment, long text split at ≤ 2500 chars', () => {
    const pcm = tonePcm(0.01, 16000);
    const wav = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVEfmt '), Buffer.from([16, 0, 0, 0]), Buffer.alloc(16), Buffer.from('data'), Buffer.from([pcm.length & 255, pcm.length >> 8, 0, 0]), pcm]);
    assert.deepEqual(sarvamPcm(wav.toString('base64')), pcm);
    assert.deepEqual(sarvamPcm(pcm.toString('base64')), pcm);
    assert.deepEqual(classifySarvamFrame({ type: 'event', data: { event_type: 'final' } }), { kind: 'flushed' });
    assert.deepEqual(classifySarvamFrame({ type: 'error', data: { message: 'bad', code: 422 } }), { kind: 'error', code: '422', message: 'bad' });
    const parts = splitText('word '.repeat(1200));
    assert.ok(parts.length === 3 && parts.every((p) => p.length <= 2500) && parts.join('') === 'word '.repeat(1200));
  });

  it('a unified TTS session through a real gateway: config first, text + flush, base64 audio until the completion event; an error frame before audio is a provider_error', async () => {
    const fake = new ReplayFake({ fixtures: [fx('tts_speak.jsonl')] });
    const { ws } = await fake.start();
    const base = loadConfig();
    const s = await startConfiguredServer({
      ...base,
      engines: { 'sarvam-tts': { type: 'sarvam', region: 'asia-south1', url: ws, apiKeyEnv: KEY_ENV, idleConnectionMs: 0 } },
      tts: { ...base.tts, models: [{ code: 'sarvam/bulbul:v2', engine: 'sarvam-tts', dialect: 'unified', audio: 'binary' }] },
    });
    try {
      const c = await openTts(s, '/v1/tts/sarvam/bulbul:v2');
      c.send({ type: 'init', voice: 'anushka', config: { encoding: 'linear16', sample_rate: 22050 } });
      await c.waitType('ready');
      c.send({ type: 'text', text: 'नमस्ते, आप कैसे हैं?' });
      c.send({ type: 'flush' });
      const i = await c.waitType('flushed');
      assert.equal(c.audio(0, i).length, Math.round(0.4 * 22050) * 2 + Math.round(0.3 * 22050) * 2, 'all the fake\'s PCM, unchanged');
      assert.deepEqual(c.messages.filter((m) => m.type === 'error'), []);
      assert.deepEqual(fake.violations(), []);
      assert.deepEqual(fake.sessions[0]!.textIn[1], { type: 'text', data: { text: 'नमस्ते, आप कैसे हैं?' } });

      fake.setFixtures([fx('tts_error.jsonl')]);
      c.send({ type: 'text', text: 'दूसरा वाक्य।' });
      c.send({ type: 'flush' });
      await c.waitType('error', 15000, i + 1);
      const err = c.messages.find((m) => m.type === 'error')!;
      assert.equal(err.code, 'provider_error');
      assert.doesNotMatch(String(err.message), new RegExp(KEY));
      c.send({ type: 'close' });
      await c.closed;
    } finally {
      await s.cleanup();
      await fake.close();
    }
  });
});

test('bench.json: both descriptors run cleanly on their fixtures (STT finals, TTS audio until the completion event)', async () => {
  const desc = JSON.parse(readFileSync(path.join(packageRoot(), 'test', 'fixtures', 'upstreams', 'sarvam', 'bench.json'), 'utf8')) as {
    stt: { engine: Record<string, unknown>; fixture: string };
    tts: { engine: Record<string, unknown>; fixture: string; voice: string };
  };
  const fake = new ReplayFake({ fixtures: ({ path: p }) => fx(p.startsWith('/text') ? desc.tts.fixture : desc.stt.fixture) });
  const { ws } = await fake.start();
  try {
    const cfg = cfgWith({ stt: { ...desc.stt.engine, url: ws }, tts: { ...desc.tts.engine, url: ws } });
    const s = await createSarvamSttEngine(cfg, 'stt').start(HI);
    const seen = watch(s);
    const long = await loadClip('asr_en/en_ls_2412-153948-0000.wav');
    for (let i = 0; i < 9 * 16000; i += 1600) {
      s.write(long.samples.subarray(i, i + 1600));
      await new Promise((r) => setImmediate(r));
    }
    await eventually(() => seen.finals.length === 8, 10_000, 'eight finals');
    await s.close();
    assert.deepEqual(seen.errors, []);
    const tts = createSarvamTtsEngine(cfg, 'tts');
    await tts.init();
    let samples = 0;
    for await (const chunk of tts.synthesize({ text: 'नमस्ते।', voice: desc.tts.voice, speed: 1 })) samples += chunk.length;
    await tts.shutdown();
    assert.equal(samples, 3 * Math.round(0.25 * 22050));
    assert.deepEqual(fake.violations(), []);
  } finally {
    await fake.close();
  }
});

test('live: Sarvam STT and TTS', { skip: !process.env.SARVAM_API_KEY && 'needs SARVAM_API_KEY' }, async () => {
  const cfg = cfgWith({ stt: { type: 'sarvam', apiKeyEnv: 'SARVAM_API_KEY', languages: ['en', 'hi'] }, tts: { type: 'sarvam', apiKeyEnv: 'SARVAM_API_KEY' } });
  const e = createSarvamSttEngine(cfg, 'stt');
  const s = await e.start({ ...HI, language: 'en' });
  const seen = watch(s);
  const go = await loadClip('asr_en/en_cmu_goforward.wav');
  for (let i = 0; i < go.samples.length; i += 1600) {
    s.write(go.samples.subarray(i, i + 1600));
    await new Promise((r) => setTimeout(r, 100));
  }
  s.finalize();
  await eventually(() => seen.finals.some((f) => f.fromFinalize), 15_000, 'the flush answer');
  await s.close();
  assert.deepEqual(seen.errors, []);
  assert.match(seen.finals.map((f) => f.transcript).join(' ').toLowerCase(), /forward/);
  const tts = createSarvamTtsEngine(cfg, 'tts');
  await tts.init();
  let bytes = 0;
  for await (const chunk of tts.synthesize({ text: 'नमस्ते, आप कैसे हैं?', voice: 'anushka', speed: 1 })) bytes += chunk.length * 2;
  await tts.shutdown();
  assert.ok(bytes > 22050 * 2 * 0.3, `at least 0.3 s of audio (${bytes} bytes)`);
});
