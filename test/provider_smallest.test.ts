/**
 * Engine type `smallest` (issue 11; shared/spec/upstreams.md §1.12, protocols.md §4): Pulse STT and
 * Waves/Lightning TTS against ReplayFake fixtures (test/fixtures/upstreams/smallest/*.jsonl), the
 * language-dependent host choice, the account's 1-request TTS cap, and end-to-end sessions through a
 * real gateway with real audio. The last block runs the same cases against smallest.ai when
 * SMALLEST_API_KEY is set (never here).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { createSmallestSttEngine, createSmallestTtsEngine, pulseLanguages, SMALLEST_HOSTS } from '../src/engines/providers/smallest/index.js';
import { resetAccountLimiters } from '../src/engines/limits.js';
import type { SttFinal, SttPartial, SttStream, SttStreamConfig } from '../src/engines/stt/types.js';
import { VoxgateError } from '../src/util/errors.js';
import { packageRoot } from '../src/util/paths.js';
import { loadFixture, ReplayFake, type Fixture } from './support/replay_fake.js';
import { eventually, finalText, loadClip, openSocket, startConfiguredServer, type Clip } from './helpers.js';
import { openTts } from './tts_helpers.js';

const FX = path.join(packageRoot(), 'test', 'fixtures', 'upstreams', 'smallest');
const fx = (name: string): Fixture => loadFixture(path.join(FX, name));
const KEY = 'sk-smallest-fixture-key-0123456789';
let envSeq = 0;
/** A fresh env var holding the fixture key (each test its own account: limiters are per account). */
function keyEnv(): string {
  const name = `SMALLEST_TEST_KEY_${++envSeq}`;
  process.env[name] = KEY;
  return name;
}

function cfgWith(engines: Record<string, Record<string, unknown>>, extra: Partial<VoxgateConfig> = {}): VoxgateConfig {
  const base = loadConfig();
  return { ...base, engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 2 }, ...engines }, ...extra };
}

const STREAM: SttStreamConfig = { language: 'en', partials: true, wordTimestamps: true, vad: true, endpointingMs: 300 };

/** Collect a stream's events. */
function record(s: SttStream): { partials: SttPartial[]; finals: SttFinal[]; errors: Error[]; started: number[] } {
  const r = { partials: [] as SttPartial[], finals: [] as SttFinal[], errors: [] as Error[], started: [] as number[] };
  s.on('partial', (p) => r.partials.push(p));
  s.on('final', (f) => r.finals.push(f));
  s.on('error', (e) => r.errors.push(e));
  s.on('speech_started', (e) => r.started.push(e.timestamp));
  return r;
}

/** Write `seconds` of the clip's PCM (16 kHz mono) in 100 ms frames. */
function writeAudio(s: SttStream, clip: Clip, fromS: number, seconds: number): void {
  const per = 1600;
  const a = Math.round(fromS * 16000);
  const b = Math.min(clip.samples.length, Math.round((fromS + seconds) * 16000));
  for (let i = a; i < b; i += per) s.write(clip.samples.subarray(i, Math.min(b, i + per)));
}

let clip: Clip;
before(async () => {
  clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
  assert.equal(clip.sampleRate, 16000);
  assert.ok(clip.seconds > 3);
});
after(() => resetAccountLimiters());

describe('smallest STT engine (Pulse get_text) on the replay fake', () => {
  it('sends the documented request and maps partials, finals, finalize and close', async () => {
    const fake = new ReplayFake({ fixtures: [fx('stt_session.jsonl')] });
    const { ws } = await fake.start();
    try {
      const env = keyEnv();
      const eng = createSmallestSttEngine(cfgWith({ sm: { type: 'smallest', region: 'ap-south-1', url: ws, apiKeyEnv: env } }), 'sm');
      await eng.init();
      const s = await eng.start(STREAM, { requestId: 'req-1', modelCode: 'smallest/pulse:en' });
      const r = record(s);
      writeAudio(s, clip, 0, 2.1);
      await eventually(() => r.partials.some((p) => p.transcript === 'I paid'), 5000, 'partial "I paid"');
      s.finalize();
      await eventually(() => r.finals.some((f) => f.fromFinalize), 5000, 'the finalize final');
      await s.close();
      assert.deepEqual(r.errors, []);
      assert.deepEqual(
        r.partials.map((p) => p.transcript),
        ['Hello', 'Hello, how are', 'I paid'],
      );
      assert.equal(r.finals.length, 2, JSON.stringify(r.finals));
      const [f1, f2] = r.finals as [SttFinal, SttFinal];
      assert.equal(f1.transcript, 'Hello, how are you?');
      assert.equal(f1.speechFinal, true);
      assert.equal(f1.fromFinalize, false);
      assert.equal(f1.start, 0.2);
      assert.ok(Math.abs(f1.duration - 0.9) < 1e-9);
      assert.deepEqual(
        f1.words!.map((w) => [w.word, w.start, w.end]),
        [
          ['Hello,', 0.2, 0.5],
          ['how', 0.55, 0.7],
          ['are', 0.72, 0.85],
          ['you?', 0.88, 1.1],
        ],
      );
      assert.equal(f2.transcript, 'I paid using my card.');
      assert.equal(f2.fromFinalize, true);
      assert.equal(f2.speechFinal, false);
      assert.equal(f2.language, 'en');
      assert.deepEqual(fake.violations(), []);
      const sess = fake.sessions[0]!;
      assert.deepEqual(sess.unmet, []);
      assert.equal(sess.headers.authorization, `Bearer ${KEY}`);
      assert.equal(sess.headers['x-request-id'], 'req-1');
      assert.equal(sess.query.eou_timeout_ms, '300');
      assert.equal(sess.query.vad_events, 'true');
      assert.ok(Math.abs(sess.audioSeconds - 2.1) < 0.001, `audio ${sess.audioSeconds}`);
      assert.equal(sess.audioFrames, 21, 'one binary frame per write (100 ms, 3200 bytes: smallest recommends 4096-byte chunks at 50–100 ms)');
      assert.deepEqual(sess.textIn, [{ type: 'finalize' }, { type: 'close_stream' }]);
    } finally {
      await fake.close();
    }
  });

  it('refused handshakes map to backend_connection_failed (401: not retryable; 503: retryable) and rate_limit (429)', async () => {
    for (const [file, code, retryable] of [
      ['refused_401.jsonl', 'backend_connection_failed', false],
      ['refused_429.jsonl', 'rate_limit', true],
      ['refused_503.jsonl', 'backend_connection_failed', true],
    ] as const) {
      const fake = new ReplayFake({ fixtures: [fx(file)] });
      const { ws } = await fake.start();
      try {
        const eng = createSmallestSttEngine(cfgWith({ sm: { type: 'smallest', url: ws, apiKeyEnv: keyEnv() } }), 'sm');
        const err = await eng.start(STREAM).then(
          () => null,
          (e: unknown) => e,
        );
        assert.ok(err instanceof VoxgateError, `${file}: ${String(err)}`);
        assert.equal(err.code, code, `${file}: ${err.message}`);
        assert.equal(err.retryable, retryable, file);
        assert.ok(!err.message.includes(KEY), 'the key is never in a message');
      } finally {
        await fake.close();
      }
    }
  });

  it('an error frame mid-stream and an abrupt close end the stream with a retryable provider_error', async () => {
    for (const file of ['stt_error_midstream.jsonl', 'stt_abrupt.jsonl']) {
      const fake = new ReplayFake({ fixtures: [fx(file)] });
      const { ws } = await fake.start();
      try {
        const eng = createSmallestSttEngine(cfgWith({ sm: { type: 'smallest', url: ws, apiKeyEnv: keyEnv() } }), 'sm');
        const s = await eng.start(STREAM);
        const r = record(s);
        writeAudio(s, clip, 0, 0.5);
        await eventually(() => r.errors.length > 0, 5000, `${file}: error`);
        const e = r.errors[0] as VoxgateError;
        assert.equal(e.code, 'provider_error', `${file}: ${e.message}`);
        assert.equal(e.retryable, true);
        assert.deepEqual(
          r.partials.map((p) => p.transcript),
          ['Hello'],
        );
        if (file === 'stt_error_midstream.jsonl') assert.match(e.message, /Internal inference failure/);
        assert.equal(eng.stats().activeStreams, 0);
      } finally {
        await fake.close();
      }
    }
  });

  it('the host and languages follow the residency: India host without zh/ja/ko, US host without ta/te/kn/ml', async () => {
    const cfg = cfgWith({ in: { type: 'smallest', region: 'ap-south-1' }, us: { type: 'smallest', region: 'us-east-1' }, pinned: { type: 'smallest', region: 'us-east-1', residency: 'in' } });
    const inEng = createSmallestSttEngine(cfg, 'in');
    const usEng = createSmallestSttEngine(cfg, 'us');
    assert.deepEqual(inEng.capabilities.languages, pulseLanguages('in'));
    assert.ok(inEng.capabilities.languages.includes('ta') && !inEng.capabilities.languages.includes('ja'));
    assert.ok(usEng.capabilities.languages.includes('ja') && !usEng.capabilities.languages.includes('ta'));
    assert.ok(createSmallestSttEngine(cfg, 'pinned').capabilities.languages.includes('ta'));
    const err = await inEng.start({ ...STREAM, language: 'ja' }).catch((e: unknown) => e);
    assert.ok(err instanceof VoxgateError && err.code === 'config_error', String(err));
    assert.equal(SMALLEST_HOSTS.us, 'wss://api.us.smallest.ai');
    assert.throws(() => createSmallestSttEngine(cfgWith({ bad: { type: 'smallest', bogus: 1 } }), 'bad'), /engines\.bad \(type smallest\) is invalid/);
    assert.throws(() => createSmallestSttEngine(cfgWith({ bad: { type: 'smallest', query: { language: 'en' } } }), 'bad'), /query may not set/);
  });

  it('maxConcurrent is enforced before dialling: a second stream waits queueWaitMs, then rate_limit; BYOK is not counted', async () => {
    const fake = new ReplayFake({ fixtures: [fx('stt_session.jsonl')] });
    const { ws } = await fake.start();
    try {
      const eng = createSmallestSttEngine(cfgWith({ sm: { type: 'smallest', url: ws, apiKeyEnv: keyEnv(), maxConcurrent: 1, queueWaitMs: 100 } }), 'sm');
      const first = await eng.start(STREAM);
      const t0 = performance.now();
      const err = await eng.start(STREAM).catch((e: unknown) => e);
      assert.ok(err instanceof VoxgateError && err.code === 'rate_limit' && err.retryable, String(err));
      assert.ok(performance.now() - t0 >= 90, 'it waited for a slot first');
      assert.equal(fake.sessions.length, 1, 'the refused stream never dialled');
      const byok = await eng.start(STREAM, { requestId: 'b', modelCode: 'x', providerKey: 'client-own-key' });
      assert.equal(fake.sessions.length, 2);
      byok.abort();
      first.abort();
      // The slot is free again once the first stream ended.
      const again = await eng.start(STREAM);
      again.abort();
      assert.equal(fake.sessions.length, 3);
    } finally {
      await fake.close();
    }
  });
});

describe('smallest TTS engine (Waves tts/live) on the replay fake', () => {
  it('speaks a segment: documented request frame, base64 PCM16 chunks until complete', async () => {
    const fake = new ReplayFake({ fixtures: [fx('tts_segment.jsonl')] });
    const { ws } = await fake.start();
    try {
      const eng = createSmallestTtsEngine(cfgWith({ sm: { type: 'smallest', url: ws, apiKeyEnv: keyEnv() } }), 'sm');
      await eng.init();
      const synth = eng.synthesize({ text: 'Hello from voxgate.', voice: 'magnus', speed: 1 });
      assert.equal(synth.sampleRate, 24000);
      let samples = 0;
      for await (const c of synth) samples += c.length;
      assert.equal(samples, Math.round(0.1 * 24000) + Math.round(0.15 * 24000) + Math.round(0.05 * 24000));
      assert.deepEqual(fake.violations(), []);
      assert.equal(fake.sessions[0]!.headers.authorization, `Bearer ${KEY}`);
      assert.deepEqual((fake.sessions[0]!.textIn[0] as Record<string, unknown>).text, 'Hello from voxgate.');
      assert.equal(eng.limiter.inUse, 0, 'the request slot is released at complete');
    } finally {
      await fake.close();
    }
  });

  it('the server closing right after `complete` does not fail a segment whose consumer has not read all its audio yet', async () => {
    const fake = new ReplayFake({ fixtures: [fx('tts_segment.jsonl')] });
    const { ws } = await fake.start();
    try {
      const eng = createSmallestTtsEngine(cfgWith({ sm: { type: 'smallest', url: ws, apiKeyEnv: keyEnv() } }), 'sm');
      await eng.init();
      const it = eng.synthesize({ text: 'Hello from voxgate.', voice: 'magnus', speed: 1 })[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.done, false);
      let samples = (first.value as Int16Array).length;
      // A slow consumer: the provider has sent everything, `complete`, and closed before it reads on.
      await eventually(() => fake.sessions[0]?.ended === true && eng.openConnections === 0, 5000, 'upstream closed');
      for (let r = await it.next(); !r.done; r = await it.next()) samples += r.value.length;
      assert.equal(samples, 0.3 * 24000);
    } finally {
      await fake.close();
    }
  });

  it('an error frame fails the segment with a retryable provider_error; 401 is backend_connection_failed, not retryable', async () => {
    const fake = new ReplayFake({ fixtures: ({ path: p }) => fx(p.startsWith('/refuse') ? 'refused_401.jsonl' : 'tts_error.jsonl') });
    const { ws } = await fake.start();
    try {
      const env = keyEnv();
      const speak = async (url: string) => {
        const eng = createSmallestTtsEngine(cfgWith({ sm: { type: 'smallest', url, apiKeyEnv: env } }), 'sm');
        await eng.init();
        try {
          for await (const _ of eng.synthesize({ text: 'Hi.', voice: 'magnus', speed: 1 }));
          return null;
        } catch (e) {
          return e as VoxgateError;
        }
      };
      const e1 = await speak(ws);
      assert.equal(e1?.code, 'provider_error');
      assert.equal(e1?.retryable, true);
      assert.match(e1!.message, /Voice not found/);
      const e2 = await speak(ws + '/refuse');
      assert.equal(e2?.code, 'backend_connection_failed');
      assert.equal(e2?.retryable, false);
    } finally {
      await fake.close();
    }
  });
});

describe('smallest behind a real gateway', () => {
  it('a unified client streaming real audio gets the provider\'s partials and finals; finalize and close map through', async () => {
    const fake = new ReplayFake({ fixtures: [fx('stt_session.jsonl')] });
    const { ws } = await fake.start();
    const base = loadConfig();
    const gw = await startConfiguredServer({
      ...cfgWith({ 'smallest-in': { type: 'smallest', region: 'ap-south-1', url: ws, apiKeyEnv: keyEnv() } }),
      stt: { models: [{ ...base.stt.models[0]!, code: 'smallest/pulse:en', engine: 'smallest-in', dialect: 'unified', aliases: [], backends: undefined, options: {} }] },
    });
    try {
      const c = await openSocket(`${gw.wsUrl}/v1/stt/smallest/pulse:en`, { Authorization: `Bearer ${gw.key}` });
      c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_word_timestamps: true, enable_partial_transcripts: true } });
      await c.waitType('ready');
      await c.sendBinary(clip.bytes.subarray(0, 2.1 * 32000));
      await c.waitFor((m) => m.type === 'partial_transcript' && m.transcript === 'I paid');
      c.sendJson({ type: 'finalize' });
      await c.waitFor((m) => m.type === 'final_transcript' && m.from_finalize === true);
      c.sendJson({ type: 'close' });
      await c.closed;
      assert.equal(finalText(c), 'Hello, how are you? I paid using my card.');
      const f1 = c.ofType('final_transcript')[0]!;
      assert.equal(f1.speech_final, true);
      assert.ok(Array.isArray(f1.words) && (f1.words as unknown[]).length === 4);
      assert.deepEqual(c.ofType('error'), []);
      await eventually(() => fake.sessions[0]?.ended === true, 3000, 'upstream closed');
      assert.deepEqual(fake.violations(), []);
      assert.deepEqual(fake.sessions[0]!.unmet, []);
    } finally {
      await gw.cleanup();
      await fake.close();
    }
  });

  it('a voxgate serving Pulse get_text is a faithful upstream: real speech is transcribed through two gateways', async () => {
    // B serves smallest's protocol on PocketSphinx; A relays to it with the smallest engine type.
    const b = await startConfiguredServer(cfgWith({}));
    const env = keyEnv();
    process.env[env] = b.key;
    const base = loadConfig();
    const a = await startConfiguredServer({
      ...cfgWith({ 'smallest-b': { type: 'smallest', url: b.wsUrl, apiKeyEnv: env, languages: ['en'] } }),
      stt: { models: [{ ...base.stt.models[0]!, code: 'smallest/pulse:en', engine: 'smallest-b', dialect: 'unified', aliases: [], backends: undefined, options: {} }] },
    });
    try {
      const c = await openSocket(`${a.wsUrl}/v1/stt/smallest/pulse:en`, { Authorization: `Bearer ${a.key}` });
      c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_word_timestamps: true } });
      await c.waitType('ready');
      await c.sendBinary(clip.bytes);
      await c.sendBinary(Buffer.alloc(32000));
      c.sendJson({ type: 'close' });
      await c.closed;
      assert.deepEqual(c.ofType('error'), []);
      const hyp = finalText(c).toLowerCase().replace(/[^a-z' ]/g, ' ').split(/\s+/).filter(Boolean);
      const ref = 'mister quilter is the apostle of the middle classes and we are glad to welcome his gospel'.split(' ');
      const hit = ref.filter((w) => hyp.includes(w)).length;
      assert.ok(hit >= ref.length / 2, `relayed transcript "${hyp.join(' ')}"`);
      for (const f of c.ofType('final_transcript')) {
        for (const w of (f.words ?? []) as { start: number; end: number }[]) assert.ok(w.start >= 0 && w.end <= clip.seconds + 1.01, JSON.stringify(w));
      }
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });

  it('a session goes to the host that serves its language: ja → US host, ta → India host, en → the home-region one', async () => {
    const fakeIn = new ReplayFake({ fixtures: [fx('stt_short.jsonl')] });
    const fakeUs = new ReplayFake({ fixtures: [fx('stt_short.jsonl')] });
    const inUrl = (await fakeIn.start()).ws;
    const usUrl = (await fakeUs.start()).ws;
    const base = loadConfig();
    const env = keyEnv();
    const gw = await startConfiguredServer({
      ...cfgWith({ 'smallest-in': { type: 'smallest', region: 'ap-south-1', url: inUrl, apiKeyEnv: env }, 'smallest-us': { type: 'smallest', region: 'us-east-1', url: usUrl, apiKeyEnv: env } }),
      gateway: { ...base.gateway, region: 'ap-south-1' },
      stt: { models: [{ ...base.stt.models[0]!, code: 'smallest/pulse:multi', engine: 'smallest-in', backends: ['smallest-in', 'smallest-us'], dialect: 'unified', aliases: [], options: {} }] },
    });
    try {
      const session = async (language: string) => {
        const c = await openSocket(`${gw.wsUrl}/v1/stt/smallest/pulse:multi`, { Authorization: `Bearer ${gw.key}` });
        c.sendJson({ type: 'init', config: { language, sample_rate: 16000, encoding: 'linear16', enable_partial_transcripts: true } });
        const first = await c.waitFor((m) => m.type === 'ready' || m.type === 'error');
        assert.equal(first.type, 'ready', `${language}: ${JSON.stringify(first)}`);
        await c.sendBinary(clip.bytes.subarray(0, 0.5 * 32000));
        await c.waitType('partial_transcript');
        c.sendJson({ type: 'close' });
        await c.closed;
      };
      await session('ja');
      assert.equal(fakeUs.sessions.length, 1, 'ja went to the US host');
      assert.equal(fakeIn.sessions.length, 0);
      assert.equal(fakeUs.sessions[0]!.query.language, 'ja');
      await session('ta');
      assert.equal(fakeIn.sessions.length, 1, 'ta went to the India host');
      assert.equal(fakeIn.sessions[0]!.query.language, 'ta');
      await session('en');
      assert.equal(fakeIn.sessions.length, 2, 'en went to the home-region (India) backend');
      assert.equal(fakeUs.sessions.length, 1);
      // A language neither host serves is refused in the client's dialect.
      const c = await openSocket(`${gw.wsUrl}/v1/stt/smallest/pulse:multi`, { Authorization: `Bearer ${gw.key}` });
      c.sendJson({ type: 'init', config: { language: 'sw', sample_rate: 16000, encoding: 'linear16' } });
      const e = await c.waitType('error');
      assert.equal(e.code, 'config_error');
      await c.closed;
    } finally {
      await gw.cleanup();
      await fakeIn.close();
      await fakeUs.close();
    }
  });

  it('TTS: one active request per account — a second concurrent session waits queueWaitMs, then gets rate_limit in its dialect; never dialled', async () => {
    const fake = new ReplayFake({ fixtures: [fx('tts_held.jsonl')] });
    const { ws } = await fake.start();
    const base = loadConfig();
    const gw = await startConfiguredServer({
      ...cfgWith({ 'smallest-tts': { type: 'smallest', url: ws, apiKeyEnv: keyEnv(), queueWaitMs: 300 } }),
      tts: {
        ...base.tts,
        models: [
          { code: 'smallest/lightning:v3.1', engine: 'smallest-tts', dialect: 'unified', audio: 'binary' },
        ],
      },
    });
    try {
      const a = await openTts(gw, '/v1/tts/smallest/lightning:v3.1');
      a.send({ type: 'init', voice: 'magnus', config: { sample_rate: 24000, encoding: 'linear16' } });
      await a.waitType('ready');
      a.send({ type: 'text', text: 'The first session holds the account.', flush: true });
      await a.waitIndex((f) => f.kind === 'bin');
      assert.equal(fake.sessions.length, 1);
      // Unified dialect: an `error` frame with code rate_limit.
      const b = await openTts(gw, '/v1/tts/smallest/lightning:v3.1');
      b.send({ type: 'init', voice: 'magnus', config: { sample_rate: 24000, encoding: 'linear16' } });
      await b.waitType('ready');
      const t0 = performance.now();
      b.send({ type: 'text', text: 'The second one must wait.', flush: true });
      const i = await b.waitType('error');
      assert.ok(performance.now() - t0 >= 280, 'it waited queueWaitMs first');
      assert.equal(b.json(i).code, 'rate_limit', JSON.stringify(b.json(i)));
      assert.equal(fake.sessions.length, 1, 'the second request never reached the provider');
      b.ws.close();
      a.ws.close();
      await a.closed;
      await eventually(() => fake.sessions[0]!.ended, 3000, 'first request closed upstream');
    } finally {
      await gw.cleanup();
      await fake.close();
    }
  });

  it('TTS: a unified client gets the provider\'s audio for a flushed sentence', async () => {
    const fake = new ReplayFake({ fixtures: [fx('tts_segment.jsonl')] });
    const { ws } = await fake.start();
    const base = loadConfig();
    const gw = await startConfiguredServer({
      ...cfgWith({ 'smallest-tts': { type: 'smallest', url: ws, apiKeyEnv: keyEnv() } }),
      tts: { ...base.tts, models: [{ code: 'smallest/lightning:v3.1', engine: 'smallest-tts', dialect: 'unified', audio: 'binary' }] },
    });
    try {
      const c = await openTts(gw, '/v1/tts/smallest/lightning:v3.1');
      c.send({ type: 'init', voice: 'magnus', config: { sample_rate: 24000, encoding: 'linear16' } });
      await c.waitType('ready');
      c.send({ type: 'text', text: 'Hello from the gateway.', flush: true });
      const end = await c.waitType('flushed');
      assert.equal(c.audio(0, end).length, 0.3 * 24000 * 2);
      c.ws.close();
      assert.deepEqual(fake.violations(), []);
    } finally {
      await gw.cleanup();
      await fake.close();
    }
  });
});

// ---------------------------------------------------------------- live (opt-in)

const LIVE = process.env.SMALLEST_API_KEY;
test('live smallest.ai: Pulse STT transcribes real speech, finalize answers once; Lightning TTS speaks', { skip: !LIVE && 'needs SMALLEST_API_KEY' }, async () => {
  const cfg = cfgWith({ live: { type: 'smallest', residency: 'in', apiKeyEnv: 'SMALLEST_API_KEY' } });
  const stt = createSmallestSttEngine(cfg, 'live');
  const s = await stt.start(STREAM, { requestId: 'voxgate-live-test', modelCode: 'smallest/pulse:en' });
  const r = record(s);
  const t0 = performance.now();
  // Real-time pace (smallest wants live cadence): 100 ms frames.
  for (let k = 0; k * 0.1 < Math.min(clip.seconds, 6); k++) {
    writeAudio(s, clip, k * 0.1, 0.1);
    const due = t0 + (k + 1) * 100;
    await new Promise((res) => setTimeout(res, Math.max(0, due - performance.now())));
  }
  s.finalize();
  await eventually(() => r.finals.some((f) => f.fromFinalize), 15000, 'finalize final');
  await s.close();
  assert.deepEqual(r.errors, []);
  assert.equal(r.finals.filter((f) => f.fromFinalize).length, 1);
  assert.ok(r.finals.map((f) => f.transcript).join(' ').trim().length > 0, 'some transcript');
  const tts = createSmallestTtsEngine(cfg, 'live');
  await tts.init();
  let samples = 0;
  for await (const c of tts.synthesize({ text: 'Hello from voxgate.', voice: 'magnus', speed: 1 })) samples += c.length;
  assert.ok(samples > 24000 * 0.3, `audio samples ${samples}`);
});
