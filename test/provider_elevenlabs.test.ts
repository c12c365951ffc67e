/**
 * Provider `elevenlabs` (issue 11): Scribe realtime STT and stream-input / multi-stream-input TTS
 * against a protocol-faithful replay fake (test/support/replay_fake.ts) on a real loopback socket,
 * fixtures in test/fixtures/upstreams/elevenlabs/*.jsonl; real audio from ../shared/data; an
 * end-to-end session through a real voxgate gateway; a cross-provider STT failover from a
 * `deepgram`-type backend (a real voxgate `/v1/listen` behind a fault proxy) to the ElevenLabs fake.
 * The opt-in live cases at the end run only with ELEVENLABS_API_KEY set.
 *
 * Nothing here depends on wall-clock speed: the fake's results are gated on the audio it received.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { resetAccountLimiters } from '../src/engines/limits.js';
import { createElevenLabsSttEngine, createElevenLabsTtsEngine, elevenLabsBase, elevenLabsTtsUrl, scribeError, type ElevenLabsSttEngine, type ElevenLabsTtsEngine } from '../src/engines/providers/elevenlabs/index.js';
import { elevenLabsTtsError, elevenLabsTtsSettingsSchema } from '../src/engines/providers/elevenlabs/tts.js';
import { BackendHealth } from '../src/engines/health.js';
import { FailoverTtsEngine } from '../src/engines/tts/failover.js';
import { createDeepgramTtsEngine } from '../src/engines/tts/upstream/deepgram.js';
import { createSttEngines } from '../src/engines/stt/registry.js';
import type { SttFinal, SttPartial, SttStream, SttStreamConfig } from '../src/engines/stt/types.js';
import type { TtsStreamEvent } from '../src/engines/tts/types.js';
import { VoxgateError } from '../src/util/errors.js';
import { packageRoot } from '../src/util/paths.js';
import { eventually, loadClip, openSocket, silence, startConfiguredServer, startTestServer, type Clip, type TestServer } from './helpers.js';
import { FaultProxy } from './support/fault_proxy.js';
import { loadFixture, ReplayFake, type Fixture } from './support/replay_fake.js';

const KEY_ENV = 'VOXGATE_TEST_ELEVENLABS_KEY';
const KEY = 'sk_test_el_0123456789abcdef';
const STREAM: SttStreamConfig = { language: 'en', partials: true, wordTimestamps: true, vad: true, endpointingMs: 300 };

const fx = (name: string): Fixture => loadFixture(path.join(packageRoot(), 'test', 'fixtures', 'upstreams', 'elevenlabs', name));

function cfgWith(engines: Record<string, Record<string, unknown>>): VoxgateConfig {
  const base = loadConfig();
  return { ...base, engines: { ...base.engines, ...engines } };
}

function sttEngine(url: string, extra: Record<string, unknown> = {}, id = 'el-stt'): ElevenLabsSttEngine {
  return createElevenLabsSttEngine(cfgWith({ [id]: { type: 'elevenlabs', url, apiKeyEnv: KEY_ENV, ...extra } }), id);
}

async function ttsEngine(url: string, extra: Record<string, unknown> = {}, id = 'el-tts'): Promise<ElevenLabsTtsEngine> {
  const e = createElevenLabsTtsEngine(cfgWith({ [id]: { type: 'elevenlabs', url, apiKeyEnv: KEY_ENV, ...extra } }), id);
  await e.init();
  return e;
}

interface Recorded {
  finals: SttFinal[];
  partials: SttPartial[];
  errors: VoxgateError[];
}

function record(s: SttStream): Recorded {
  const r: Recorded = { finals: [], partials: [], errors: [] };
  s.on('final', (f) => r.finals.push(f));
  s.on('partial', (p) => r.partials.push(p));
  s.on('error', (e) => r.errors.push(e as VoxgateError));
  return r;
}

/** Write 16-bit PCM to a stream in 100 ms chunks, yielding between chunks; `realTime` paces them at 1× (live provider). */
async function writeAudio(s: SttStream, samples: Int16Array, realTime = false): Promise<void> {
  for (let o = 0; o < samples.length; o += 1600) {
    s.write(samples.subarray(o, o + 1600));
    await new Promise((r) => (realTime ? setTimeout(r, 100) : setImmediate(r)));
  }
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

let clip: Clip;
let fakes: ReplayFake[] = [];
async function fake(...fixtures: Fixture[]): Promise<{ f: ReplayFake; ws: string }> {
  const f = new ReplayFake({ fixtures });
  const { ws } = await f.start();
  fakes.push(f);
  return { f, ws };
}

before(async () => {
  process.env[KEY_ENV] = KEY;
  clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
});
after(() => {
  delete process.env[KEY_ENV];
});
afterEach(async () => {
  await Promise.all(fakes.map((f) => f.close()));
  fakes = [];
  resetAccountLimiters();
});

describe('elevenlabs STT (Scribe realtime) against the replay fake', () => {
  it('maps the request (URL, query, xi-api-key, base64 JSON audio), partials, VAD and commit finals, one fromFinalize final, close = commit + normal close', async () => {
    const { f, ws } = await fake(fx('stt_session.jsonl'));
    const e = sttEngine(ws, { keyterms: ['voxgate', 'Scribe'] });
    await e.init();
    const s = await e.start(STREAM, { requestId: 'req-el-1', modelCode: 'test/el:en' });
    const rec = record(s);
    await writeAudio(s, clip.samples.subarray(0, 16000 * 3));
    await eventually(() => rec.finals.length >= 1, 10000, 'the VAD final');
    s.finalize();
    await s.close();
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(f.violations(), []);
    const sess = f.sessions[0]!;
    assert.equal(sess.headers['xi-api-key'], KEY);
    assert.equal(sess.headers['x-request-id'], 'req-el-1');
    assert.equal(sess.query.vad_silence_threshold_secs, '0.3');
    assert.equal(sess.query.keyterms, 'Scribe', 'keyterms sent (repeated key; the fake keeps the last)');
    assert.ok(Math.abs(sess.audioSeconds - 3) < 1e-6, `the fake decoded 3 s of base64 audio, got ${sess.audioSeconds}`);
    assert.deepEqual(sess.unmet, [], 'commit (finalize), commit (close) and the close all reached the fake');
    assert.equal(sess.clientCloseCode, 1000);

    assert.deepEqual(
      rec.finals.map((x) => [x.transcript, x.fromFinalize, x.speechFinal]),
      [
        ['Hello world.', false, true],
        ['This is a test.', true, false],
        ['', false, false],
      ],
    );
    assert.deepEqual(
      rec.finals[0]!.words!.map((w) => [w.word, w.start, w.end, r3(w.confidence)]),
      [
        ['Hello', 0.3, 0.62, r3(Math.exp(-0.05))],
        ['world.', 0.7, 1.1, r3(Math.exp(-0.1))],
      ],
      'spacing entries dropped, word times as Scribe gave them (stream clock), confidence = exp(logprob)',
    );
    // Finals tile the stream: the VAD final ends at its last word + the VAD silence; the finalize's at the commit point (3 s sent).
    assert.equal(rec.finals[0]!.start, 0);
    assert.equal(r3(rec.finals[0]!.duration), 1.4);
    assert.equal(r3(rec.finals[1]!.start), 1.4);
    assert.equal(r3(rec.finals[1]!.start + rec.finals[1]!.duration), 3);
    assert.deepEqual(rec.finals[1]!.words!.map((w) => w.word), ['This', 'is', 'a', 'test.']);
    assert.deepEqual(rec.partials.map((p) => p.transcript), ['hello', 'this is']);
    assert.equal(r3(rec.partials[1]!.start), 1.4, 'a partial starts where the last final ended');
    assert.equal(e.stats().activeStreams, 0);
  });

  it('a server that sends committed_transcript without its _with_timestamps twin: every commit still becomes exactly one (word-less) final', async () => {
    const { f, ws } = await fake(fx('stt_no_twin.jsonl'));
    const s = await sttEngine(ws).start(STREAM);
    const rec = record(s);
    await writeAudio(s, clip.samples.subarray(0, 16000));
    await eventually(() => rec.finals.length >= 1, 10000, 'the first final');
    s.finalize();
    await eventually(() => rec.finals.length >= 2, 10000, 'the finalize answer');
    await s.close();
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(f.violations(), []);
    assert.deepEqual(
      rec.finals.map((x) => [x.transcript, x.fromFinalize, x.speechFinal, x.words?.length]),
      [
        ['only text', false, true, 0],
        ['second', true, false, 0],
        ['', false, false, 0],
      ],
    );
  });

  it('a large write (a failover replay) goes up in pieces of at most 0.5 s', async () => {
    const { f, ws } = await fake(fx('stt_session.jsonl'));
    const s = await sttEngine(ws).start(STREAM);
    s.write(clip.samples.subarray(0, 16000 * 3));
    await eventually(() => f.sessions[0]!.audioSeconds >= 3 - 1e-6, 5000, '3 s received');
    assert.equal(f.sessions[0]!.audioFrames, 6);
    s.abort();
  });

  it('capabilities declare what Scribe lacks: no speech_started events, no diarization, no passthrough', () => {
    const e = sttEngine('ws://127.0.0.1:9');
    assert.equal(e.capabilities.vadEvents, false);
    assert.equal(e.capabilities.diarization, false);
    assert.deepEqual(e.capabilities.passthroughEncodings, []);
    assert.equal(e.capabilities.partials, true);
    assert.equal(e.capabilities.wordTimestamps, true);
  });

  it('a stream without VAD/endpointing uses manual commits (no vad_ keys); instance VAD settings reach the query', async () => {
    const { f, ws } = await fake(fx('stt_session.jsonl'));
    const e = sttEngine(ws, { vadThreshold: 0.6, minSilenceDurationMs: 200 });
    const s1 = await e.start({ ...STREAM, vad: false });
    s1.abort();
    const s2 = await e.start({ ...STREAM, endpointingMs: 5000 });
    s2.abort();
    await eventually(() => f.sessions.length === 2);
    assert.equal(f.sessions[0]!.query.commit_strategy, 'manual');
    assert.equal(f.sessions[0]!.query.vad_silence_threshold_secs, undefined);
    assert.equal(f.sessions[1]!.query.commit_strategy, 'vad');
    assert.equal(f.sessions[1]!.query.vad_silence_threshold_secs, '3', 'endpointing clamped to Scribe’s 3.0 s maximum');
    assert.equal(f.sessions[1]!.query.vad_threshold, '0.6');
    assert.equal(f.sessions[1]!.query.min_silence_duration_ms, '200');
  });

  it('keepalive: an empty non-commit chunk after keepAliveMs without a send', async () => {
    const { f, ws } = await fake(fx('stt_session.jsonl'));
    const e = sttEngine(ws, { keepAliveMs: 100, pingIntervalMs: 50 });
    const s = await e.start(STREAM);
    s.write(clip.samples.subarray(0, 1600));
    await eventually(() => f.sessions[0]!.textIn.some((m) => (m as { commit?: boolean; audio_base_64?: string }).commit === false && (m as { audio_base_64?: string }).audio_base_64 === ''), 5000, 'a keepalive chunk');
    s.abort();
  });

  it('error frames map: quota_exceeded → retryable rate_limit; auth_error → non-retryable backend_connection_failed; a close naming rate_limited → rate_limit; an abrupt close → retryable provider_error', async () => {
    for (const [name, code, retryable] of [
      ['stt_error_quota.jsonl', 'rate_limit', true],
      ['stt_error_auth.jsonl', 'backend_connection_failed', false],
      ['stt_abrupt.jsonl', 'provider_error', true],
      ['stt_close_reason.jsonl', 'rate_limit', true],
    ] as const) {
      const { ws } = await fake(fx(name));
      const s = await sttEngine(ws).start(STREAM);
      const rec = record(s);
      const samples = clip.samples.subarray(0, 16000);
      for (let o = 0; o < samples.length && rec.errors.length === 0; o += 1600) {
        s.write(samples.subarray(o, o + 1600));
        await new Promise((r) => setImmediate(r));
      }
      await eventually(() => rec.errors.length > 0, 5000, `${name}: an error`);
      assert.equal(rec.errors.length, 1, name);
      assert.equal(rec.errors[0]!.code, code, `${name}: ${rec.errors[0]!.message}`);
      assert.equal(rec.errors[0]!.retryable, retryable, name);
      assert.ok(!rec.errors[0]!.message.includes(KEY));
    }
  });

  it('scribeError maps every documented error type', () => {
    const m = (t: string) => {
      const e = scribeError(t, 'detail', []);
      return [e.code, e.retryable];
    };
    assert.deepEqual(m('rate_limited'), ['rate_limit', true]);
    assert.deepEqual(m('commit_throttled'), ['rate_limit', true]);
    assert.deepEqual(m('resource_exhausted'), ['rate_limit', true]);
    assert.deepEqual(m('queue_overflow'), ['rate_limit', true]);
    assert.deepEqual(m('unaccepted_terms_error'), ['backend_connection_failed', false]);
    assert.deepEqual(m('input_error'), ['invalid_audio', false]);
    assert.deepEqual(m('chunk_size_exceeded'), ['invalid_audio', false]);
    assert.deepEqual(m('transcriber_error'), ['provider_error', true]);
    assert.deepEqual(m('session_time_limit_exceeded'), ['provider_error', true]);
    assert.deepEqual(m('something_new'), ['provider_error', true]);
    assert.equal(scribeError('error', `bad key ${KEY}`, [KEY]).message.includes(KEY), false, 'redacted');
  });

  it('refused upgrades: 401 → non-retryable backend_connection_failed (key never echoed); 429 → rate_limit; 503 → retryable backend_connection_failed', async () => {
    const { f, ws } = await fake(fx('stt_refused_401.jsonl'));
    const e = sttEngine(ws);
    const err = await e.start(STREAM).then(
      () => assert.fail('started'),
      (x: VoxgateError) => x,
    );
    assert.equal(err.code, 'backend_connection_failed');
    assert.equal(err.retryable, false);
    assert.match(err.message, /401/);
    assert.ok(!err.message.includes(KEY));
    for (const [status, code, retryable] of [
      [429, 'rate_limit', true],
      [503, 'backend_connection_failed', true],
    ] as const) {
      f.refuseStatus = status;
      const x = await e.start(STREAM).then(
        () => assert.fail('started'),
        (y: VoxgateError) => y,
      );
      assert.equal(x.code, code);
      assert.equal(x.retryable, retryable);
    }
  });

  it('maxConcurrent is enforced before dialling, per account (apiKeyEnv) across instances; BYOK skips it', async () => {
    const { f, ws } = await fake(fx('stt_session.jsonl'));
    const a = sttEngine(ws, { maxConcurrent: 1, queueWaitMs: 30 }, 'el-a');
    const b = sttEngine(ws, { maxConcurrent: 1, queueWaitMs: 30, residency: 'eu' }, 'el-b');
    const s1 = await a.start(STREAM);
    const err = await b.start(STREAM).then(
      () => assert.fail('started'),
      (x: VoxgateError) => x,
    );
    assert.equal(err.code, 'rate_limit');
    assert.equal(err.retryable, true);
    assert.equal(f.sessions.length, 1, 'the refused session never dialled');
    const byok = await b.start(STREAM, { requestId: 'r', modelCode: 'm', providerKey: 'client-own-key' });
    assert.equal(f.sessions.length, 2);
    assert.equal(f.sessions[1]!.headers['xi-api-key'], 'client-own-key');
    byok.abort();
    // A waiter gets the slot the moment it is released.
    const waiting = b.start(STREAM, undefined);
    s1.abort();
    (await waiting).abort();
    assert.equal(f.sessions.length, 3);
  });

  it('residency picks the host (US, EU, India, Singapore); url overrides it; settings are strict', () => {
    assert.equal(elevenLabsBase({ residency: 'global' }), 'wss://api.elevenlabs.io');
    assert.equal(elevenLabsBase({ residency: 'us' }), 'wss://api.us.elevenlabs.io');
    assert.equal(elevenLabsBase({ residency: 'eu' }), 'wss://api.eu.residency.elevenlabs.io');
    assert.equal(elevenLabsBase({ residency: 'in' }), 'wss://api.in.residency.elevenlabs.io');
    assert.equal(elevenLabsBase({ residency: 'sg' }), 'wss://api.sg.residency.elevenlabs.io');
    assert.equal(elevenLabsBase({ residency: 'eu', url: 'ws://127.0.0.1:1/' }), 'ws://127.0.0.1:1');
    const eu = createElevenLabsSttEngine(cfgWith({ e: { type: 'elevenlabs', residency: 'eu', apiKeyEnv: 'EL_EU_KEY' } }), 'e');
    const req = (eu as unknown as { request(c: SttStreamConfig): { url: string } }).request(STREAM);
    assert.match(req.url, /^wss:\/\/api\.eu\.residency\.elevenlabs\.io\/v1\/speech-to-text\/realtime\?model_id=scribe_v2_realtime&audio_format=pcm_16000&/);
    assert.match(elevenLabsTtsUrl(elevenLabsTtsSettingsSchema.parse({ residency: 'sg' }), 'stream-input', 'V1', 22050), /^wss:\/\/api\.sg\.residency\.elevenlabs\.io\/v1\/text-to-speech\/V1\/stream-input\?model_id=eleven_flash_v2_5&output_format=pcm_22050&inactivity_timeout=20$/);
    assert.throws(() => createElevenLabsSttEngine(cfgWith({ e: { type: 'elevenlabs', bogus: 1 } }), 'e'), /engines\.e \(type elevenlabs\) is invalid.*bogus/s);
    assert.throws(() => createElevenLabsSttEngine(cfgWith({ e: { type: 'elevenlabs', apiKeyEnv: 'sk_live abc' } }), 'e'), /NAME of an environment variable/);
    assert.throws(() => createElevenLabsTtsEngine(cfgWith({ t: { type: 'elevenlabs', voices: [{ id: 'v', languages: ['en'], sampleRate: 48000 }] } }), 't'), /48000 Hz is not an ElevenLabs pcm_ output format/);
  });

  it('the registry builds the type from the config', async () => {
    const { ws } = await fake(fx('stt_session.jsonl'));
    const base = loadConfig();
    const cfg: VoxgateConfig = { ...base, engines: { el: { type: 'elevenlabs', url: ws, apiKeyEnv: KEY_ENV } }, stt: { models: [{ ...base.stt.models[0]!, code: 'elevenlabs/scribe:en', engine: 'el', aliases: [], backends: undefined }] } };
    const engines = await createSttEngines(cfg);
    assert.equal(engines.get('el')?.constructor.name, 'ElevenLabsSttEngine');
  });
});

describe('elevenlabs TTS against the replay fake', () => {
  const collect = async (it: AsyncIterable<Int16Array>): Promise<number> => {
    let n = 0;
    for await (const c of it) n += c.length;
    return n;
  };

  it('multi-stream-input per segment: one context per segment on one warm socket, base64 pcm_24000 → PCM, alignment read past', async () => {
    const { f, ws } = await fake(fx('tts_multi_segments.jsonl'));
    const e = await ttsEngine(ws);
    const v = '21m00tcm4tlvdq8ikwam';
    const s1 = e.synthesize({ text: 'Hello from ElevenLabs.', voice: v, speed: 1 });
    assert.equal(s1.sampleRate, 24000);
    assert.equal(await collect(s1), 12000);
    assert.equal(await collect(e.synthesize({ text: 'Second sentence.', voice: v, speed: 1 })), 4800);
    assert.deepEqual(f.violations(), []);
    assert.equal(f.sessions.length, 1, 'the second segment reused the socket');
    assert.equal(f.sessions[0]!.headers['xi-api-key'], KEY);
    await e.shutdown();
  });

  it('stream-input per segment: init, text+flush, end; audio until isFinal; the speed goes in voice_settings', async () => {
    const { f, ws } = await fake(fx('tts_stream_input.jsonl'));
    const e = await ttsEngine(ws, { endpoint: 'stream-input', voices: [{ id: 'voice16k', languages: ['en'], sampleRate: 16000 }] });
    assert.equal(await collect(e.synthesize({ text: 'Hello there.', voice: 'voice16k', speed: 1.1 })), 6400);
    assert.deepEqual(f.violations(), []);
    assert.deepEqual((f.sessions[0]!.textIn[0] as { voice_settings?: unknown }).voice_settings, { speed: 1.1 });
    assert.deepEqual(e.capabilities.speed, { min: 0.7, max: 1.2 });
    await e.shutdown();
  });

  it('an error frame mid-segment → the segment fails with a retryable provider_error naming it', async () => {
    const { ws } = await fake(fx('tts_error_frame.jsonl'));
    const e = await ttsEngine(ws);
    await assert.rejects(collect(e.synthesize({ text: 'Hi.', voice: '21m00tcm4tlvdq8ikwam', speed: 1 })), (x: VoxgateError) => x.code === 'provider_error' && x.retryable === true && /max_active_conversations/.test(x.message));
    await e.shutdown();
  });

  it('a refused upgrade (401) → non-retryable backend_connection_failed', async () => {
    const { f, ws } = await fake(fx('tts_multi_segments.jsonl'));
    f.refuseStatus = 401;
    const e = await ttsEngine(ws);
    await assert.rejects(collect(e.synthesize({ text: 'Hi.', voice: '21m00tcm4tlvdq8ikwam', speed: 1 })), (x: VoxgateError) => x.code === 'backend_connection_failed' && x.retryable === false);
    await e.shutdown();
  });

  it('streaming error frames map: a key refusal → non-retryable backend_connection_failed; quota/concurrency → rate_limit; others → retryable provider_error', () => {
    const m = (code: string | undefined, msg: string) => {
      const e = elevenLabsTtsError('el', code, msg);
      return [e.code, e.retryable];
    };
    assert.deepEqual(m('invalid_api_key', 'Invalid API key'), ['backend_connection_failed', false]);
    assert.deepEqual(m(undefined, 'Unauthorized'), ['backend_connection_failed', false]);
    assert.deepEqual(m('quota_exceeded', 'This request exceeds your quota.'), ['rate_limit', true]);
    assert.deepEqual(m('too_many_concurrent_requests', 'Too many concurrent requests'), ['rate_limit', true]);
    assert.deepEqual(m('max_active_conversations', 'Maximum simultaneous contexts'), ['provider_error', true]);
  });

  it('as the second TTS backend: the first (deepgram type, unreachable) fails before any audio → ElevenLabs speaks the segment, resampled to the first backend’s rate', async () => {
    const { f, ws } = await fake(fx('tts_multi_segments.jsonl'));
    const dead = createDeepgramTtsEngine(cfgWith({ dg: { type: 'deepgram', url: 'ws://127.0.0.1:9', voices: [{ id: '21m00Tcm4TlvDq8ikWAM', languages: ['en'], sampleRate: 16000 }] } }), 'dg');
    await dead.init();
    const el = await ttsEngine(ws);
    const health = new BackendHealth();
    const failed: string[] = [];
    const fo = new FailoverTtsEngine(
      [
        { id: 'dg', engine: dead, region: 'us-east-1', worldPart: 'us' },
        { id: 'el', engine: el, region: 'us-east-1', worldPart: 'us' },
      ],
      { health, onFailover: (from) => failed.push(from.id) },
    );
    const syn = fo.synthesize({ text: 'Hello from ElevenLabs.', voice: '21m00tcm4tlvdq8ikwam', speed: 1 });
    assert.equal(syn.sampleRate, 16000);
    const n = await collect(syn);
    assert.ok(Math.abs(n - 8000) <= 16, `0.5 s at 16 kHz, got ${n} samples`);
    assert.deepEqual(failed, ['dg']);
    assert.equal(fo.lastBackend?.id, 'el');
    assert.deepEqual(f.violations(), []);
    await el.shutdown();
    await dead.shutdown();
  });

  it('openStream (multi-stream-input): text streams in as whole words, contexts = segments in order, flush ↔ isFinal, close_socket on close', async () => {
    const { f, ws } = await fake(fx('tts_stream.jsonl'));
    const e = await ttsEngine(ws);
    const st = e.openStream({ voice: '21m00Tcm4TlvDq8ikWAM', speed: 1 });
    assert.equal(st.sampleRate, 24000);
    st.pushText('Hello ');
    st.pushText('stream');
    st.pushText('ing world.');
    st.flush();
    st.pushText('Bye.');
    st.flush();
    const seen: string[] = [];
    let flushed = 0;
    for await (const ev of st as AsyncIterable<TtsStreamEvent>) {
      if (ev.kind === 'audio') seen.push(`audio:${ev.pcm.length}`);
      else if (ev.kind === 'segment_start' || ev.kind === 'segment_end') seen.push(`${ev.kind}:${ev.segmentId}`);
      else seen.push(ev.kind);
      if (ev.kind === 'flushed' && ++flushed === 2) break;
    }
    assert.deepEqual(seen, ['segment_start:seg_001', 'audio:2400', 'audio:2400', 'segment_end:seg_001', 'flushed', 'segment_start:seg_002', 'audio:1200', 'audio:1200', 'segment_end:seg_002', 'flushed']);
    st.close();
    await eventually(() => f.sessions[0]!.ended, 5000, 'socket closed');
    assert.deepEqual(f.violations(), []);
    assert.deepEqual(f.sessions[0]!.unmet, [], 'close_socket sent');
    await e.shutdown();
  });
});

describe('elevenlabs TTS streaming session: barge-in and the contexts cap', () => {
  /** Iterate `st` until `stop` says so; returns the events (audio as `audio:<samples>`). */
  async function events(st: AsyncIterable<TtsStreamEvent>, stop: (ev: TtsStreamEvent, seen: string[]) => boolean, onEvent?: (ev: TtsStreamEvent) => void): Promise<string[]> {
    const seen: string[] = [];
    for await (const ev of st) {
      seen.push(ev.kind === 'audio' ? `audio:${ev.pcm.length}@${ev.gen}` : ev.kind === 'segment_start' || ev.kind === 'segment_end' ? `${ev.kind}:${ev.segmentId}@${ev.gen}` : `${ev.kind}@${ev.gen}`);
      onEvent?.(ev);
      if (stop(ev, seen)) break;
    }
    return seen;
  }

  it('clear() closes the speaking context (close_context), its late audio is dropped, the next text opens a new context on the same socket', async () => {
    const { f, ws } = await fake(fx('tts_stream_clear.jsonl'));
    const e = await ttsEngine(ws);
    const st = e.openStream({ voice: '21m00tcm4tlvdq8ikwam', speed: 1 });
    st.pushText('A long answer that will be interrupted');
    const seen = await events(
      st,
      (ev) => ev.kind === 'flushed',
      (ev) => {
        if (ev.kind === 'audio' && ev.gen === 0) {
          st.clear();
          st.pushText('New.');
          st.flush();
        }
      },
    );
    assert.deepEqual(seen, ['segment_start:seg_001@0', 'audio:2400@0', 'segment_start:seg_002@1', 'audio:1200@1', 'segment_end:seg_002@1', 'flushed@1']);
    st.close();
    await eventually(() => f.sessions[0]!.ended, 5000, 'socket closed');
    assert.deepEqual(f.violations(), []);
    assert.equal(f.sessions.length, 1, 'one socket for both contexts');
    await e.shutdown();
  });

  it('a refused upgrade makes iteration throw backend_connection_failed (401 not retryable); a provider silent after a flush fails it with a retryable provider_error', async () => {
    const { f, ws } = await fake(fx('tts_stream_cap.jsonl'));
    f.refuseStatus = 401;
    const e = await ttsEngine(ws, { stallTimeoutMs: 300 });
    const st = e.openStream({ voice: '21m00tcm4tlvdq8ikwam', speed: 1 });
    st.pushText('First.');
    st.flush();
    await assert.rejects(events(st, () => false), (x: VoxgateError) => x.code === 'backend_connection_failed' && x.retryable === false && !x.message.includes(KEY));
    f.refuseStatus = null;
    const st2 = e.openStream({ voice: '21m00tcm4tlvdq8ikwam', speed: 1 });
    st2.pushText('First.');
    st2.flush();
    let seen: string[] = [];
    await assert.rejects(
      events(st2, () => false, (ev) => (seen = [...seen, ev.kind])),
      (x: VoxgateError) => x.code === 'provider_error' && x.retryable === true && /no audio or message from upstream for 300 ms/.test(x.message),
    );
    assert.deepEqual(seen, ['segment_start', 'audio'], 'the audio that came is delivered before the failure');
    await e.shutdown();
  });

  it('a socket the provider closes normally while idle (inactivity) is reopened for the next text, without an error', async () => {
    const f = new ReplayFake({ fixtures: [fx('tts_stream_idle_a.jsonl'), fx('tts_stream_idle_b.jsonl')] });
    const { ws } = await f.start();
    fakes.push(f);
    const e = await ttsEngine(ws);
    const st = e.openStream({ voice: '21m00tcm4tlvdq8ikwam', speed: 1 });
    const it = st[Symbol.asyncIterator]();
    const until = async (kind: string): Promise<string[]> => {
      const got: string[] = [];
      for (;;) {
        const r = await it.next();
        assert.ok(!r.done);
        got.push(r.value.kind === 'audio' ? `audio:${r.value.pcm.length}` : r.value.kind);
        if (r.value.kind === kind) return got;
      }
    };
    st.pushText('One.');
    st.flush();
    assert.deepEqual(await until('flushed'), ['segment_start', 'audio:2400', 'segment_end', 'flushed']);
    await eventually(() => f.sessions[0]!.ended, 5000, 'the provider closed the idle socket');
    st.pushText('Two.');
    st.flush();
    assert.deepEqual(await until('flushed'), ['segment_start', 'audio:1200', 'segment_end', 'flushed']);
    st.close();
    await eventually(() => f.sessions[1]!.ended, 5000, 'closed');
    assert.equal(f.sessions.length, 2);
    assert.deepEqual(f.violations(), []);
    assert.deepEqual(f.sessions[1]!.unmet, []);
    await e.shutdown();
  });

  it('at the open-contexts cap a new context waits for an answer (its frames are not sent), so the provider never sees more than maxContexts', async () => {
    const { f, ws } = await fake(fx('tts_stream_cap.jsonl'));
    const e = await ttsEngine(ws, { maxContexts: 1 });
    const st = e.openStream({ voice: '21m00tcm4tlvdq8ikwam', speed: 1 });
    st.pushText('First.');
    st.flush();
    st.pushText('Second.');
    st.flush();
    assert.ok(st.busy);
    await events(st, (ev) => ev.kind === 'audio');
    st.close();
    await eventually(() => f.sessions[0]!.ended, 5000, 'socket closed');
    assert.deepEqual(f.violations(), [], 'no frame of the second context reached the provider');
    assert.deepEqual(f.sessions[0]!.unmet, []);
    await e.shutdown();
  });
});

describe('elevenlabs through a real voxgate gateway', () => {
  it('STT end to end: a unified client streams real speech to a catalogue model on the elevenlabs engine and gets its finals', async () => {
    const { f, ws } = await fake(fx('stt_session.jsonl'));
    const base = loadConfig();
    const gw = await startConfiguredServer({
      ...base,
      engines: { el: { type: 'elevenlabs', region: 'us-east-1', url: ws, apiKeyEnv: KEY_ENV } },
      stt: { models: [{ ...base.stt.models[0]!, code: 'elevenlabs/scribe:en', engine: 'el', dialect: 'unified', aliases: [], backends: undefined }] },
    });
    try {
      const c = await openSocket(`${gw.wsUrl}/v1/stt/elevenlabs/scribe:en`, { Authorization: `Bearer ${gw.key}` });
      c.sendJson({ type: 'init', config: { language: 'en', sample_rate: clip.sampleRate, encoding: 'linear16', enable_word_timestamps: true, enable_partials: true, endpointing: 300 } });
      await c.waitType('ready');
      await c.sendBinary(clip.bytes.subarray(0, clip.sampleRate * 2 * 3), 3200);
      await c.waitFor((m) => m.type === 'final_transcript' && m.transcript === 'Hello world.', 15000);
      c.sendJson({ type: 'finalize' });
      await c.waitFor((m) => m.type === 'final_transcript' && m.from_finalize === true, 15000);
      c.sendJson({ type: 'close' });
      assert.equal((await c.closed).code, 1000);
      const finals = c.ofType('final_transcript');
      assert.deepEqual(finals.map((m) => m.transcript).filter(Boolean), ['Hello world.', 'This is a test.']);
      assert.equal(finals.filter((m) => m.from_finalize === true).length, 1);
      assert.ok(c.ofType('partial_transcript').some((m) => m.transcript === 'hello'));
      assert.ok(!c.messages.some((m) => m.type === 'error'), JSON.stringify(c.messages));
      assert.deepEqual(f.violations(), []);
    } finally {
      await gw.cleanup();
    }
  });

  it('TTS end to end: a unified /v1/tts client gets the ElevenLabs audio of a flushed sentence (the session drives the native multi-stream-input stream)', async () => {
    const { f, ws } = await fake(fx('tts_gateway_stream.jsonl'));
    const base = loadConfig();
    const gw = await startConfiguredServer({
      ...base,
      engines: { eltts: { type: 'elevenlabs', region: 'us-east-1', url: ws, apiKeyEnv: KEY_ENV } },
      tts: { ...base.tts, models: [{ code: 'elevenlabs/flash:2.5', engine: 'eltts', dialect: 'unified', audio: 'binary', defaultVoice: '21m00Tcm4TlvDq8ikWAM' } as VoxgateConfig['tts']['models'][number]] },
    });
    try {
      const c = await openSocket(`${gw.wsUrl}/v1/tts/elevenlabs/flash:2.5`, { Authorization: `Bearer ${gw.key}` });
      const audio: Buffer[] = [];
      c.ws.on('message', (d, isBinary) => isBinary && audio.push(d as Buffer));
      c.sendJson({ type: 'init', voice: '21m00Tcm4TlvDq8ikWAM', config: { encoding: 'linear16', sample_rate: 24000 } });
      await c.waitType('ready');
      c.sendJson({ type: 'text', text: 'Hello from ElevenLabs.', flush: true });
      await c.waitFor((m) => m.type === 'flushed', 15000);
      assert.ok(!c.messages.some((m) => m.type === 'error'), JSON.stringify(c.messages));
      assert.equal(audio.reduce((n, b) => n + b.length, 0), 12000 * 2, 'every sample of the fake’s 0.5 s at 24 kHz');
      c.ws.close();
      assert.equal(f.sessions[0]!.violations.length, 0, JSON.stringify(f.violations()));
    } finally {
      await gw.cleanup();
    }
  });
});

describe('cross-provider STT failover: deepgram (a real voxgate /v1/listen) → elevenlabs', () => {
  let up: TestServer;
  before(async () => {
    up = await startTestServer();
    process.env.VOXGATE_TEST_DG_UP_KEY = up.key;
  });
  after(async () => {
    delete process.env.VOXGATE_TEST_DG_UP_KEY;
    await up.cleanup();
  });

  it('the deepgram backend is killed mid-stream → the ElevenLabs fake takes over; the client sees every final exactly once, in order, rebased', async () => {
    const proxy = await FaultProxy.start(up.wsUrl);
    const { f, ws } = await fake(fx('stt_failover.jsonl'));
    const base = loadConfig();
    const gw = await startConfiguredServer({
      ...base,
      engines: {
        dg: { type: 'deepgram', region: 'us-east-1', url: proxy.wsUrl, model: 'nova-3', apiKeyEnv: 'VOXGATE_TEST_DG_UP_KEY', replayPace: null, connectTimeoutMs: 3000 },
        el: { type: 'elevenlabs', region: 'us-east-1', url: ws, apiKeyEnv: KEY_ENV, replayPace: null },
      },
      stt: { models: [{ ...base.stt.models[0]!, code: 'test/dg-el:en', engine: 'dg', backends: ['dg', 'el'], dialect: 'unified', aliases: [] }] },
    });
    try {
      const c = await openSocket(`${gw.wsUrl}/v1/stt/test/dg-el:en`, { Authorization: `Bearer ${gw.key}` });
      c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_word_timestamps: true, enable_partials: true, endpointing: 300 } });
      await c.waitType('ready');
      // Part 1 on deepgram: real speech and a pause → its final.
      await c.sendBinary(Buffer.concat([clip.bytes.subarray(0, 16000 * 2 * 4), silence(1500)]), 3200);
      await c.waitFor((m) => m.type === 'final_transcript' && typeof m.transcript === 'string' && m.transcript.length > 0, 30000);
      const before = c.ofType('final_transcript').map((m) => m.transcript).filter(Boolean) as string[];
      proxy.refuse();
      proxy.killAll();
      // Part 2: more speech; the fake answers by the audio it receives.
      await c.sendBinary(clip.bytes.subarray(16000 * 2 * 4, 16000 * 2 * 7), 3200);
      await c.waitFor((m) => m.type === 'final_transcript' && m.transcript === 'alpha bravo', 30000);
      c.sendJson({ type: 'finalize' });
      await c.waitFor((m) => m.type === 'final_transcript' && m.from_finalize === true, 15000);
      c.sendJson({ type: 'close' });
      assert.equal((await c.closed).code, 1000);
      assert.ok(!c.messages.some((m) => m.type === 'error'), JSON.stringify(c.messages.filter((m) => m.type === 'error')));
      const finals = c.ofType('final_transcript').filter((m) => m.transcript) as { transcript: string; start: number; duration: number; words?: { word: string; start: number; end: number }[]; from_finalize?: boolean }[];
      const texts = finals.map((m) => m.transcript);
      const k = texts.indexOf('alpha bravo');
      assert.ok(k >= before.length, `the deepgram finals seen before the kill come first: ${JSON.stringify(texts)}`);
      assert.deepEqual(texts.slice(0, before.length), before);
      assert.deepEqual(texts.slice(k), ['alpha bravo', 'charlie delta'], 'every ElevenLabs final exactly once, in order, none lost');
      assert.ok(texts.slice(0, k).every((t) => !/alpha|bravo|charlie|delta/.test(t)));
      assert.equal(c.ofType('final_transcript').filter((m) => m.from_finalize === true).length, 1);
      // Rebased: the takeover's words lie after the last deepgram final, on the client's clock.
      const lastDg = finals[k - 1]!;
      const alpha = finals[k]!.words?.[0];
      assert.ok(alpha && alpha.word === 'alpha', JSON.stringify(finals[k]));
      assert.ok(alpha.start > lastDg.start + lastDg.duration - 1e-6, `alpha at ${alpha.start} after the deepgram final ending ${lastDg.start + lastDg.duration}`);
      assert.ok(
        finals.every((m, i) => i === 0 || m.start >= finals[i - 1]!.start + finals[i - 1]!.duration - 1e-3),
        `finals in stream order, no stretch of audio reported twice: ${JSON.stringify(finals.map((m) => [m.transcript, m.start, m.duration]))}`,
      );
      assert.equal(f.sessions.length, 1);
      assert.deepEqual(f.violations(), []);
      assert.ok(f.sessions[0]!.audioSeconds > 2, `the replayed and live audio reached elevenlabs (${f.sessions[0]!.audioSeconds} s)`);
    } finally {
      await gw.cleanup();
      await proxy.close();
    }
  });
});

describe('elevenlabs live (opt-in)', () => {
  const live = process.env.ELEVENLABS_API_KEY;
  const skip = !live && 'needs ELEVENLABS_API_KEY';

  it('live Scribe realtime: real speech → a non-empty final, one fromFinalize final', { skip }, async () => {
    const e = createElevenLabsSttEngine(cfgWith({ live: { type: 'elevenlabs', apiKeyEnv: 'ELEVENLABS_API_KEY', residency: (process.env.ELEVENLABS_RESIDENCY ?? 'global') as 'global' } }), 'live');
    const s = await e.start({ ...STREAM, vad: false });
    const rec = record(s);
    assert.equal(clip.sampleRate, 16000);
    await writeAudio(s, clip.samples, true);
    s.finalize();
    await eventually(() => rec.finals.some((x) => x.fromFinalize) || rec.errors.length > 0, 20000, 'the finalize answer');
    await s.close();
    assert.deepEqual(rec.errors, []);
    assert.equal(rec.finals.filter((x) => x.fromFinalize).length, 1);
    assert.ok(rec.finals.map((x) => x.transcript).join(' ').length > 10, JSON.stringify(rec.finals));
  });

  it('live TTS: both endpoints and the streaming session return audio', { skip }, async () => {
    for (const endpoint of ['multi-stream-input', 'stream-input']) {
      const e = createElevenLabsTtsEngine(cfgWith({ live: { type: 'elevenlabs', apiKeyEnv: 'ELEVENLABS_API_KEY', endpoint } }), 'live');
      await e.init();
      let n = 0;
      for await (const c of e.synthesize({ text: 'Hello from voxgate.', voice: '21m00tcm4tlvdq8ikwam', speed: 1 })) n += c.length;
      assert.ok(n > 24000 * 0.3, `${endpoint}: ${n} samples`);
      if (endpoint === 'multi-stream-input') {
        const st = e.openStream({ voice: '21m00tcm4tlvdq8ikwam', speed: 1 });
        st.pushText('Streaming text, ');
        st.pushText('word by word.');
        st.flush();
        let samples = 0;
        for await (const ev of st) {
          if (ev.kind === 'audio') samples += ev.pcm.length;
          if (ev.kind === 'flushed') break;
        }
        st.close();
        assert.ok(samples > 24000 * 0.3, `stream: ${samples} samples`);
      }
      await e.shutdown();
    }
  });
});
