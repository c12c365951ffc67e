/**
 * Provider `cartesia` (issue 11; shared/spec/upstreams.md §1.6 Sonic TTS WebSocket, §1.7 Ink STT
 * WebSocket): the engines against a protocol-faithful fake on a real loopback socket replaying
 * JSONL fixtures (test/fixtures/upstreams/cartesia/, written from Cartesia's documented examples),
 * plus end-to-end sessions through a real voxgate server with real clients and real audio.
 * No network. The last test runs against the real Cartesia only with CARTESIA_API_KEY set.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { resetAccountLimiters } from '../src/engines/limits.js';
import { createCartesiaSttEngine, CartesiaSttEngine } from '../src/engines/providers/cartesia/stt.js';
import { createCartesiaTtsEngine, type CartesiaTtsEngine, type CartesiaTtsStream } from '../src/engines/providers/cartesia/tts.js';
import type { SttFinal, SttPartial, SttStream, SttStreamConfig } from '../src/engines/stt/types.js';
import type { TtsStream, TtsStreamEvent } from '../src/engines/tts/types.js';
import { packageRoot } from '../src/util/paths.js';
import type { VoxgateError } from '../src/util/errors.js';
import { eventually, loadClip, openSocket, startConfiguredServer, type TestServer } from './helpers.js';
import { loadFixture, ReplayFake, type Fixture } from './support/replay_fake.js';
import { openTts, TtsRecorder } from './tts_helpers.js';

const KEY_ENV = 'VOXGATE_TEST_CARTESIA_KEY';
const KEY = 'test-cartesia-key';
process.env[KEY_ENV] = KEY;
const FX = path.join(packageRoot(), 'test', 'fixtures', 'upstreams', 'cartesia');
const VOICE = { id: 'a0e99841-438c-4a64-b679-ae501e7d6091', alias: 'sonic-demo', languages: ['en'] };
const CLIP = 'asr_en/en_ls_1272-128104-0000.wav';

function fx(name: string): Fixture {
  return loadFixture(path.join(FX, name));
}

function cfgWith(engines: Record<string, Record<string, unknown>>): VoxgateConfig {
  return { ...loadConfig(), engines } as VoxgateConfig;
}

const fakes: ReplayFake[] = [];
const engines: { shutdown(): Promise<void> }[] = [];

async function fake(...names: string[]): Promise<{ f: ReplayFake; url: string }> {
  const f = new ReplayFake({ fixtures: names.map(fx) });
  fakes.push(f);
  const { ws } = await f.start();
  return { f, url: ws };
}

async function ttsEngine(url: string, extra: Record<string, unknown> = {}, id = 'cart-tts'): Promise<CartesiaTtsEngine> {
  const e = createCartesiaTtsEngine(cfgWith({ [id]: { type: 'cartesia', url, apiKeyEnv: KEY_ENV, sampleRate: 16000, voices: [VOICE], ...extra } }), id);
  await e.init();
  engines.push(e);
  return e;
}

async function sttEngine(url: string, extra: Record<string, unknown> = {}, id = 'cart-stt'): Promise<CartesiaSttEngine> {
  const e = createCartesiaSttEngine(cfgWith({ [id]: { type: 'cartesia', url, apiKeyEnv: KEY_ENV, ...extra } }), id);
  await e.init();
  engines.push(e);
  return e;
}

/** Pull events from a stream with a deadline (a hung stream fails the test instead of the run). */
class Pull {
  readonly it: AsyncIterator<TtsStreamEvent>;
  readonly seen: TtsStreamEvent[] = [];
  constructor(readonly st: TtsStream) {
    this.it = st[Symbol.asyncIterator]();
  }
  async next(ms = 5000): Promise<TtsStreamEvent> {
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.it.next(), new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`no event within ${ms} ms; seen ${this.describe()}`)), ms)))]).finally(() => clearTimeout(t));
    if (r.done) throw new Error(`stream ended; seen ${this.describe()}`);
    this.seen.push(r.value);
    return r.value;
  }
  async until(pred: (e: TtsStreamEvent) => boolean, ms = 5000): Promise<TtsStreamEvent> {
    for (;;) {
      const e = await this.next(ms);
      if (pred(e)) return e;
    }
  }
  /** The error iteration throws (fails when it yields or ends instead). */
  async error(ms = 5000): Promise<Error & Partial<VoxgateError>> {
    try {
      const e = await this.next(ms);
      assert.fail(`expected an error, got ${JSON.stringify(e)}`);
    } catch (err) {
      if ((err as Error).message.startsWith('no event within')) throw err;
      return err as Error & Partial<VoxgateError>;
    }
  }
  samples(gen?: number): number {
    return this.seen.reduce((n, e) => n + (e.kind === 'audio' && (gen === undefined || e.gen === gen) ? e.pcm.length : 0), 0);
  }
  describe(): string {
    return JSON.stringify(this.seen.map((e) => (e.kind === 'audio' ? `audio(${e.pcm.length})@${e.gen}` : `${e.kind}@${e.gen}`)));
  }
}

beforeEach(() => resetAccountLimiters());
afterEach(async () => {
  for (const e of engines.splice(0)) await e.shutdown();
  for (const f of fakes.splice(0)) await f.close();
});

describe('cartesia TTS: native streaming session', () => {
  it('streams text into one context (continue), ends it at flush, relays pcm_s16le chunks; flushed after done', async () => {
    const { f, url } = await fake('tts_stream.jsonl');
    const e = await ttsEngine(url);
    const st = e.openStream!({ voice: 'sonic-demo', speed: 1 }) as CartesiaTtsStream;
    const p = new Pull(st);
    await eventually(() => st.connected, 5000, 'the stream dials when it opens');
    st.pushText('Hello, Sonic!');
    assert.equal((await p.next()).kind, 'segment_start');
    await p.until((ev) => ev.kind === 'audio');
    st.pushText(" I'm streaming inputs.");
    st.flush();
    await p.until((ev) => ev.kind === 'flushed');
    st.close();
    assert.deepEqual(f.violations(), []);
    assert.deepEqual(
      p.seen.filter((ev) => ev.kind !== 'audio').map((ev) => ev.kind),
      ['segment_start', 'segment_end', 'flushed'],
    );
    assert.equal(p.samples(), 0.75 * 16000, 'every chunk relayed at the voice rate');
    const ins = f.sessions[0]!.textIn as Record<string, unknown>[];
    assert.equal(new Set(ins.map((m) => m.context_id)).size, 1, 'one context for the utterance');
    assert.equal(st.sampleRate, 16000);
  });

  it('clear cancels the context by id: no audio of it after the clear, the next utterance opens a new context on the same socket', async () => {
    const { f, url } = await fake('tts_clear.jsonl');
    const e = await ttsEngine(url);
    const st = e.openStream!({ voice: 'sonic-demo', speed: 1 }) as CartesiaTtsStream;
    const p = new Pull(st);
    st.pushText('This answer is long and will be interrupted');
    await p.until((ev) => ev.kind === 'audio');
    st.clear();
    assert.equal(st.generation, 1);
    // The fake answers the cancel with one more chunk of the cancelled context (0.5 s): it must be dropped.
    await eventually(() => f.sessions[0]!.textIn.some((m) => (m as { cancel?: boolean }).cancel === true), 5000, 'cancel sent');
    await new Promise((r) => setTimeout(r, 100));
    st.pushText('Sure, go ahead.');
    st.flush();
    await p.until((ev) => ev.kind === 'flushed' && ev.gen === 1);
    st.close();
    assert.deepEqual(f.violations(), []);
    assert.equal(p.samples(1), 0.3 * 16000, `only the new context's audio after the clear: ${p.describe()}`);
    const ins = f.sessions[0]!.textIn as Record<string, unknown>[];
    const first = ins[0]!.context_id;
    assert.equal(ins.find((m) => m.cancel === true)!.context_id, first, 'the cancel names the interrupted context');
    assert.notEqual(ins.at(-1)!.context_id, first, 'a new context after the barge-in');
    assert.equal(f.sessions.length, 1, 'same socket');
  });

  it("a context's error frame fails that segment only (segment_error provider_error); the next utterance is spoken", async () => {
    const { f, url } = await fake('tts_context_error.jsonl');
    const e = await ttsEngine(url);
    const st = e.openStream!({ voice: 'sonic-demo', speed: 1 });
    const p = new Pull(st);
    st.pushText('First sentence.');
    st.flush();
    st.pushText('Second sentence.');
    st.flush();
    const err = await p.until((ev) => ev.kind === 'segment_error');
    assert.equal(err.kind === 'segment_error' && (err.error as VoxgateError).code, 'provider_error');
    assert.match(err.kind === 'segment_error' ? err.error.message : '', /400 model_not_found.*Invalid model/);
    await p.until((ev) => ev.kind === 'flushed');
    await p.until((ev) => ev.kind === 'flushed');
    st.close();
    assert.deepEqual(f.violations(), []);
    assert.equal(p.samples(), 0.2 * 16000);
    assert.deepEqual(
      p.seen.filter((ev) => ev.kind !== 'audio').map((ev) => ev.kind),
      ['segment_start', 'segment_error', 'segment_end', 'flushed', 'segment_start', 'segment_end', 'flushed'],
    );
  });

  it('text after the open context went quiet (Cartesia expires it 1 s after its audio) opens a new context; the old one ends quietly', async () => {
    const { f, url } = await fake('tts_rollover.jsonl');
    const e = await ttsEngine(url, { contextIdleMs: 100 });
    const st = e.openStream!({ voice: 'sonic-demo', speed: 1 });
    const p = new Pull(st);
    st.pushText('Let me think.');
    await p.until((ev) => ev.kind === 'audio');
    await new Promise((r) => setTimeout(r, 250)); // the LLM pauses longer than contextIdleMs
    st.pushText(' Here is the answer.');
    st.flush();
    await p.until((ev) => ev.kind === 'flushed');
    st.close();
    assert.deepEqual(f.violations(), []);
    assert.deepEqual(
      p.seen.filter((ev) => ev.kind !== 'audio').map((ev) => ev.kind),
      ['segment_start', 'segment_end', 'segment_start', 'segment_end', 'flushed'],
      'no segment_error for the expired context',
    );
    assert.equal(p.samples(), 0.5 * 16000);
    const ids = (f.sessions[0]!.textIn as Record<string, unknown>[]).map((m) => m.context_id);
    assert.equal(new Set(ids).size, 2);
  });

  it("Cartesia's 429 for a new context (a just-cancelled one still counted) is retried once on a new id with the text buffered meanwhile; the client sees no error", async () => {
    const { f, url } = await fake('tts_context_429.jsonl');
    const e = await ttsEngine(url);
    const st = e.openStream!({ voice: 'sonic-demo', speed: 1 }) as CartesiaTtsStream;
    const p = new Pull(st);
    await eventually(() => st.connected, 5000, 'connected');
    st.pushText('Right after a barge-in.');
    await eventually(() => f.sessions[0]!.textIn.length === 1, 5000, 'first input sent');
    await new Promise((r) => setTimeout(r, 50)); // the 429 arrives; the retry is pending
    st.pushText(' It goes on.');
    st.flush();
    await p.until((ev) => ev.kind === 'flushed');
    st.close();
    assert.deepEqual(f.violations(), []);
    assert.ok(!p.seen.some((ev) => ev.kind === 'segment_error'), p.describe());
    assert.equal(p.samples(), 0.3 * 16000);
  });

  it('a socket lost mid-context fails that segment; the next utterance re-dials', async () => {
    const { f, url } = await fake('tts_drop.jsonl', 'tts_sentence.jsonl');
    const e = await ttsEngine(url);
    const st = e.openStream!({ voice: 'sonic-demo', speed: 1 });
    const p = new Pull(st);
    st.pushText('Hello from Cartesia.');
    st.flush();
    const err = await p.until((ev) => ev.kind === 'segment_error');
    assert.equal(err.kind === 'segment_error' && (err.error as VoxgateError).retryable, true);
    await p.until((ev) => ev.kind === 'flushed');
    st.pushText('Hello from Cartesia.');
    st.flush();
    await p.until((ev) => ev.kind === 'flushed');
    st.close();
    assert.equal(f.sessions.length, 2);
    assert.deepEqual(f.violations(), []);
    assert.equal(p.samples(), 0.2 * 16000 + 0.7 * 16000);
  });

  for (const [name, code, retryable] of [
    ['tts_refused_401.jsonl', 'backend_connection_failed', false],
    ['tts_refused_429.jsonl', 'rate_limit', true],
  ] as const) {
    it(`a refused upgrade (${name}) fails the stream with ${code} (retryable ${retryable}); the key never appears`, async () => {
      const { url } = await fake(name);
      const e = await ttsEngine(url);
      const p = new Pull(e.openStream!({ voice: 'sonic-demo', speed: 1 }));
      const err = await p.error();
      assert.equal(err.code, code);
      assert.equal(err.retryable, retryable);
      assert.ok(!err.message.includes(KEY), err.message);
      p.st.close();
    });
  }

  it('maxConcurrent is enforced before dialling: beyond it a stream waits queueWaitMs, then gets rate_limit; Cartesia never sees the extra socket', async () => {
    const { f, url } = await fake('tts_sentence.jsonl');
    const e = await ttsEngine(url, { maxConcurrent: 1, queueWaitMs: 150 });
    const a = e.openStream!({ voice: 'sonic-demo', speed: 1 }) as CartesiaTtsStream;
    await eventually(() => a.connected, 5000, 'first stream connected');
    const b = new Pull(e.openStream!({ voice: 'sonic-demo', speed: 1 }));
    const err = await b.error();
    assert.equal(err.code, 'rate_limit');
    assert.equal(err.retryable, true);
    assert.equal(f.sessions.length, 1, 'the second stream never dialled');
    // A waiting stream gets the slot as soon as one frees within its wait.
    const e2 = await ttsEngine(url, { maxConcurrent: 1, queueWaitMs: 5000 }, 'cart-tts-2');
    const c = e2.openStream!({ voice: 'sonic-demo', speed: 1 }) as CartesiaTtsStream;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.connected, false);
    assert.equal(e2.accountLimiter.waiting, 1);
    a.close();
    await eventually(() => c.connected, 5000, 'the waiting stream connects once the slot is free');
    assert.equal(f.sessions.length, 2);
    c.close();
    b.st.close();
  });

  it('plan sets the cap (free = 2 TTS contexts)', async () => {
    const { url } = await fake('tts_sentence.jsonl');
    const e = await ttsEngine(url, { plan: 'free' });
    assert.equal(e.accountLimiter.max, 2);
  });
});

describe('cartesia TTS: per-segment synthesis (failover path)', () => {
  it('one context per segment (continue false), audio until its done; the socket is reused', async () => {
    const { f, url } = await fake('tts_segments.jsonl');
    const e = await ttsEngine(url, { streaming: false });
    assert.equal(e.openStream, undefined);
    for (let i = 0; i < 2; i++) {
      let n = 0;
      for await (const c of e.synthesize({ text: 'Hello from Cartesia.', voice: 'sonic-demo', speed: 1.2 }, undefined)) n += c.length;
      assert.equal(n, 0.7 * 16000);
    }
    assert.deepEqual(f.violations(), []);
    const ins = f.sessions.flatMap((s) => s.textIn) as Record<string, unknown>[];
    assert.equal(ins[0]!.continue, false);
    assert.deepEqual(ins[0]!.generation_config, { speed: 1.2 });
    assert.notEqual(ins[0]!.context_id, ins[1]!.context_id);
    assert.equal(f.sessions.length, 1, 'the second segment reused the warm socket');
  });

  it('each segment holds an account slot: a second concurrent segment beyond maxConcurrent gets rate_limit', async () => {
    const { url } = await fake('tts_sentence.jsonl');
    const e = await ttsEngine(url, { streaming: false, maxConcurrent: 1, queueWaitMs: 0 });
    const first = e.synthesize({ text: 'Hello from Cartesia.', voice: 'sonic-demo', speed: 1 })[Symbol.asyncIterator]();
    await first.next(); // holds the slot
    await assert.rejects(
      async () => {
        for await (const _ of e.synthesize({ text: 'Hello from Cartesia.', voice: 'sonic-demo', speed: 1 })) void _;
      },
      (err: VoxgateError) => err.code === 'rate_limit',
    );
    await first.return?.();
    assert.equal(e.accountLimiter.inUse, 0);
  });
});

describe('cartesia STT', () => {
  const STREAM: SttStreamConfig = { language: 'en', partials: true, wordTimestamps: true, vad: false, endpointingMs: null };

  function record(s: SttStream): { partials: SttPartial[]; finals: SttFinal[]; errors: Error[]; started: number[] } {
    const r = { partials: [] as SttPartial[], finals: [] as SttFinal[], errors: [] as Error[], started: [] as number[] };
    s.on('partial', (p) => r.partials.push(p));
    s.on('final', (f) => r.finals.push(f));
    s.on('error', (e) => r.errors.push(e));
    s.on('speech_started', (e) => r.started.push(e.timestamp));
    return r;
  }

  it('manual endpoint: binary audio, partials from deltas, exactly one fromFinalize final joining the is_final deltas, plain-text finalize/close', async () => {
    const { f, url } = await fake('stt_manual.jsonl');
    const e = await sttEngine(url);
    const s = await e.start(STREAM);
    const rec = record(s);
    const clip = await loadClip(CLIP);
    for (let i = 0; i < 2.5 * 32000; i += 3200) s.write(clip.samples.subarray(i / 2, (i + 3200) / 2));
    s.finalize();
    await eventually(() => rec.finals.length > 0, 5000, 'the finalize answer');
    await s.close();
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(f.violations(), []);
    assert.deepEqual(rec.partials.map((p) => p.transcript), ['How are', 'How are you doing']);
    assert.equal(rec.finals.length, 1);
    const fin = rec.finals[0]!;
    assert.equal(fin.transcript, 'How are you doing today?');
    assert.equal(fin.fromFinalize, true);
    assert.equal(fin.speechFinal, false);
    assert.deepEqual(fin.words!.map((w) => w.word), ['How', 'are', 'you', 'doing', 'today?']);
    assert.equal(fin.start, 0.3);
    assert.ok(Math.abs(fin.duration - 0.9) < 1e-9);
    assert.equal(f.sessions[0]!.audioBytes, 2.5 * 32000);
    assert.equal(f.sessions[0]!.headers.authorization, `Bearer ${KEY}`);
  });

  it('wordTimes "segment": word times relative to each finalized segment are rebased to the stream clock', async () => {
    const { f, url } = await fake('stt_segments.jsonl');
    const e = await sttEngine(url, { endpoint: 'manual', wordTimes: 'segment' });
    const s = await e.start(STREAM);
    const rec = record(s);
    s.write(new Int16Array(16000)); // 1.0 s
    s.finalize();
    await eventually(() => rec.finals.length === 1, 5000, 'first final');
    s.write(new Int16Array(16000)); // 1.0 s more
    s.finalize();
    await eventually(() => rec.finals.length === 2, 5000, 'second final');
    await s.close();
    assert.deepEqual(f.violations(), []);
    assert.deepEqual(rec.finals.map((x) => x.words!.map((w) => w.start)), [[0.1, 0.6], [1.1, 1.5]]);
    assert.equal(rec.finals[1]!.start, 1.1);
    assert.ok(rec.finals.every((x) => x.fromFinalize));
  });

  it('no partials when the stream did not ask for them (the session relays whatever the engine emits)', async () => {
    for (const [name, extra] of [['stt_manual.jsonl', { endpoint: 'manual' }], ['stt_turns.jsonl', { endpoint: 'turns' }]] as const) {
      const { url } = await fake(name);
      const e = await sttEngine(url, extra, `cart-stt-${extra.endpoint}`);
      const s = await e.start({ ...STREAM, partials: false });
      const rec = record(s);
      const clip = await loadClip(CLIP);
      for (let i = 0; i < 2.5 * 32000; i += 3200) s.write(clip.samples.subarray(i / 2, (i + 3200) / 2));
      s.finalize();
      await eventually(() => rec.finals.length > 0, 5000, 'a final');
      await s.close();
      assert.deepEqual(rec.partials, [], name);
    }
  });

  it('turns endpoint (auto with endpointing): turn.start → speech_started, updates → partials, turn.end → speech_final final; JSON close', async () => {
    const { f, url } = await fake('stt_turns.jsonl');
    const e = await sttEngine(url);
    const s = await e.start({ ...STREAM, vad: true, endpointingMs: 300 });
    const rec = record(s);
    const clip = await loadClip(CLIP);
    for (let i = 0; i < 2.5 * 32000; i += 3200) s.write(clip.samples.subarray(i / 2, (i + 3200) / 2));
    await eventually(() => rec.finals.length > 0, 5000, 'turn.end');
    await s.close();
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(f.violations(), []);
    assert.equal(rec.started.length, 1);
    assert.deepEqual(rec.partials.map((p) => p.transcript), ['Hey can you help', 'Hey can you help me with something?']);
    assert.equal(rec.finals[0]!.transcript, 'Hey can you help me with something?');
    assert.equal(rec.finals[0]!.speechFinal, true);
    assert.equal(rec.finals[0]!.fromFinalize, false);
  });

  it('turns endpoint has no finalize: finalize() commits the turn so far as the one fromFinalize final; turn.end carries only the rest', async () => {
    const { url } = await fake('stt_turns.jsonl');
    const e = await sttEngine(url, { endpoint: 'turns' });
    const s = await e.start(STREAM);
    const rec = record(s);
    const clip = await loadClip(CLIP);
    for (let i = 0; i < 1.2 * 32000; i += 3200) s.write(clip.samples.subarray(i / 2, (i + 3200) / 2));
    await eventually(() => rec.partials.length > 0, 5000, 'first partial');
    s.finalize();
    assert.equal(rec.finals.length, 1, 'answered at once, not a silent no-op');
    assert.equal(rec.finals[0]!.fromFinalize, true);
    assert.equal(rec.finals[0]!.transcript, 'Hey can you help');
    for (let i = 1.2 * 32000; i < 2.5 * 32000; i += 3200) s.write(clip.samples.subarray(i / 2, (i + 3200) / 2));
    await eventually(() => rec.finals.length > 1, 5000, 'turn.end');
    assert.equal(rec.finals[1]!.transcript, 'me with something?');
    await s.close();
  });

  it('a mid-stream error frame (5xx) ends the stream with a retryable provider_error', async () => {
    const { url } = await fake('stt_error.jsonl');
    const e = await sttEngine(url, { endpoint: 'manual' });
    const s = await e.start(STREAM);
    const rec = record(s);
    for (let i = 0; i < 10; i++) s.write(new Int16Array(1600));
    await eventually(() => rec.errors.length > 0, 5000, 'error');
    const err = rec.errors[0] as VoxgateError;
    assert.equal(err.code, 'provider_error');
    assert.equal(err.retryable, true);
    assert.match(err.message, /500 internal_error/);
  });

  for (const [name, code, retryable] of [
    ['stt_refused_401.jsonl', 'backend_connection_failed', false],
    ['stt_refused_429.jsonl', 'rate_limit', true],
  ] as const) {
    it(`a refused upgrade (${name}) → ${code}, retryable ${retryable}, key redacted`, async () => {
      const { url } = await fake(name);
      const e = await sttEngine(url, { endpoint: 'manual' });
      await assert.rejects(e.start(STREAM), (err: VoxgateError) => err.code === code && err.retryable === retryable && !err.message.includes(KEY));
    });
  }

  it('maxConcurrent: a stream beyond it gets rate_limit before dialling; the slot frees when a stream ends; BYOK streams skip the cap', async () => {
    const { f, url } = await fake('stt_manual.jsonl');
    const e = await sttEngine(url, { maxConcurrent: 1, queueWaitMs: 0, endpoint: 'manual' });
    const a = await e.start(STREAM);
    await assert.rejects(e.start(STREAM), (err: VoxgateError) => err.code === 'rate_limit');
    assert.equal(f.sessions.length, 1);
    const byok = await e.start(STREAM, { requestId: 'r', modelCode: 'm', providerKey: KEY });
    byok.abort();
    a.abort();
    assert.equal(e.accountLimiter.inUse, 0);
    const b = await e.start(STREAM);
    b.abort();
  });

  it('settings are strict and name the instance', () => {
    assert.throws(() => createCartesiaSttEngine(cfgWith({ x: { type: 'cartesia', bogus: 1 } }), 'x'), /engines\.x \(type cartesia\) is invalid/);
    assert.throws(() => createCartesiaTtsEngine(cfgWith({ y: { type: 'cartesia', plan: 'gold' } }), 'y'), /engines\.y \(type cartesia\) is invalid/);
  });
});

describe('cartesia behind a real voxgate gateway', () => {
  let gw: TestServer | null = null;
  after(async () => {
    await gw?.cleanup();
  });

  async function gateway(ttsUrl: string, sttUrl: string, ttsExtra: Record<string, unknown> = {}): Promise<TestServer> {
    const base = loadConfig();
    return startConfiguredServer({
      ...base,
      engines: {
        pocketsphinx: { minIdleDecoders: 1, maxDecoders: 2 },
        'cart-tts-us': { type: 'cartesia', region: 'us-east-1', url: ttsUrl, apiKeyEnv: KEY_ENV, sampleRate: 16000, voices: [VOICE], ...ttsExtra },
        'cart-stt-us': { type: 'cartesia', region: 'us-east-1', url: sttUrl, apiKeyEnv: KEY_ENV, endpoint: 'manual' },
      },
      tts: { ...base.tts, models: [{ code: 'cartesia/sonic:3', engine: 'cart-tts-us', dialect: 'unified', audio: 'binary' }] },
      stt: { models: [{ ...base.stt.models[0]!, code: 'cartesia/ink:2', engine: 'cart-stt-us', dialect: 'unified', aliases: [], backends: undefined }] },
    } as VoxgateConfig);
  }

  it('unified TTS: text → flush → audio → audio_end + flushed; clear mid-utterance stops the audio at once', async () => {
    const tts = await fake('tts_sentence.jsonl');
    const stt = await fake('stt_manual.jsonl');
    gw = await gateway(tts.url, stt.url);
    const c = await openTts(gw, '/v1/tts/cartesia/sonic:3');
    c.send({ type: 'init', voice: 'sonic-demo', config: { sample_rate: 16000, encoding: 'linear16' } });
    await c.waitType('ready');
    c.send({ type: 'text', text: 'Hello from Cartesia.', flush: false });
    c.send({ type: 'flush' });
    const end = await c.waitType('flushed');
    assert.ok(c.messages.some((m) => m.type === 'audio_end'));
    assert.equal(c.audio(0, end).length, 0.7 * 32000, 'every byte of the upstream audio, at the voice rate');
    c.ws.close();
    assert.deepEqual(tts.f.violations(), []);

    // Barge-in through the gateway: cancel upstream, no audio of the interrupted utterance after `cleared`.
    tts.f.setFixtures([fx('tts_clear.jsonl')]);
    const d = await openTts(gw, '/v1/tts/cartesia/sonic:3');
    d.send({ type: 'init', voice: 'sonic-demo', config: { sample_rate: 16000, encoding: 'linear16' } });
    await d.waitType('ready');
    d.send({ type: 'text', text: 'This answer is long and will be interrupted', flush: false });
    await d.waitIndex((fr) => TtsRecorder.isAudio(fr));
    d.send({ type: 'clear' });
    const cleared = await d.waitType('cleared');
    await eventually(() => tts.f.sessions.at(-1)!.textIn.some((m) => (m as { cancel?: boolean }).cancel === true), 5000, 'cancel upstream');
    await new Promise((r) => setTimeout(r, 150)); // the fake's late chunk of the cancelled context arrives meanwhile
    d.send({ type: 'text', text: 'Sure, go ahead.', flush: true });
    const flushed = await d.waitType('flushed', undefined, cleared);
    d.ws.close();
    assert.equal(d.audio(cleared, flushed).length, 0.3 * 32000, `only the new utterance after cleared: ${d.describe()}`);
    const next = d.frames.findIndex((fr, i) => i > cleared && fr.kind === 'json' && fr.m.type === 'segment_start');
    assert.ok(next > cleared && d.frames.slice(cleared, next).every((fr) => !TtsRecorder.isAudio(fr)), 'no audio between cleared and the next segment');
    assert.deepEqual(tts.f.violations(), []);
    await gw.cleanup();
    gw = null;
  });

  it('Deepgram /v1/speak client on the Cartesia-backed voice: Speak → Flush → audio → Flushed', async () => {
    const tts = await fake('tts_sentence.jsonl');
    const stt = await fake('stt_manual.jsonl');
    gw = await gateway(tts.url, stt.url);
    const c = await openTts(gw, '/v1/speak?model=sonic-demo&encoding=linear16&sample_rate=16000', { Authorization: `Token ${gw.key}` });
    c.send({ type: 'Speak', text: 'Hello from Cartesia.' });
    c.send({ type: 'Flush' });
    const end = await c.waitType('Flushed');
    assert.equal(c.audio(0, end).length, 0.7 * 32000);
    c.ws.close();
    assert.deepEqual(tts.f.violations(), []);
    await gw.cleanup();
    gw = null;
  });

  it('unified TTS on the per-segment path (streaming off, as with several backends): text → flush → audio → flushed', async () => {
    const tts = await fake('tts_sentence.jsonl');
    const stt = await fake('stt_manual.jsonl');
    gw = await gateway(tts.url, stt.url, { streaming: false });
    const c = await openTts(gw, '/v1/tts/cartesia/sonic:3');
    c.send({ type: 'init', voice: 'sonic-demo', config: { sample_rate: 16000, encoding: 'linear16' } });
    await c.waitType('ready');
    c.send({ type: 'text', text: 'Hello from Cartesia.', flush: true });
    const end = await c.waitType('flushed');
    assert.equal(c.audio(0, end).length, 0.7 * 32000);
    c.ws.close();
    assert.deepEqual(tts.f.violations(), []);
    await gw.cleanup();
    gw = null;
  });

  it('unified TTS beyond maxConcurrent: the second session gets rate_limit, Cartesia never sees its socket', async () => {
    const tts = await fake('tts_sentence.jsonl');
    const stt = await fake('stt_manual.jsonl');
    gw = await gateway(tts.url, stt.url, { maxConcurrent: 1, queueWaitMs: 100 });
    const a = await openTts(gw, '/v1/tts/cartesia/sonic:3');
    a.send({ type: 'init', voice: 'sonic-demo', config: { sample_rate: 16000, encoding: 'linear16' } });
    await a.waitType('ready');
    await eventually(() => tts.f.sessions.length === 1, 5000, 'first session dialled');
    const b = await openTts(gw, '/v1/tts/cartesia/sonic:3');
    b.send({ type: 'init', voice: 'sonic-demo', config: { sample_rate: 16000, encoding: 'linear16' } });
    const i = await b.waitType('error');
    assert.equal(b.json(i).code, 'rate_limit');
    assert.equal(tts.f.sessions.length, 1);
    a.ws.close();
    await gw.cleanup();
    gw = null;
  });

  it('unified STT with real audio: partials and the finalize answer reach the client; every audio byte reached Cartesia', async () => {
    const tts = await fake('tts_sentence.jsonl');
    const stt = await fake('stt_manual.jsonl');
    gw = await gateway(tts.url, stt.url);
    const clip = await loadClip(CLIP);
    assert.equal(clip.sampleRate, 16000);
    const c = await openSocket(`${gw.wsUrl}/v1/stt/cartesia/ink:2`, { Authorization: `Bearer ${gw.key}` });
    c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partial_transcripts: true, enable_word_timestamps: true } });
    await c.waitType('ready');
    await c.sendBinary(clip.bytes, 3200);
    c.sendJson({ type: 'finalize' });
    const fin = await c.waitFor((m) => m.type === 'final_transcript' && m.from_finalize === true);
    c.sendJson({ type: 'close' });
    await c.closed;
    assert.equal(fin.transcript, 'How are you doing today?');
    assert.ok(c.ofType('partial_transcript').some((m) => m.transcript === 'How are you doing'), JSON.stringify(c.messages));
    assert.equal(c.ofType('final_transcript').filter((m) => m.from_finalize === true).length, 1);
    assert.deepEqual(stt.f.violations(), []);
    assert.equal(stt.f.sessions[0]!.audioBytes, clip.bytes.length);
    await gw.cleanup();
    gw = null;
  });
});

describe('cartesia live (opt-in)', () => {
  const live = process.env.CARTESIA_API_KEY;
  it('real Sonic TTS stream and Ink STT round trip', { skip: !live && 'needs CARTESIA_API_KEY' }, async () => {
    const cfg = cfgWith({
      'live-tts': { type: 'cartesia', apiKeyEnv: 'CARTESIA_API_KEY', sampleRate: 16000, voices: [{ id: 'f786b574-daa5-4673-aa0c-cbe3e8534c02', languages: ['en'] }] },
      'live-stt': { type: 'cartesia', apiKeyEnv: 'CARTESIA_API_KEY', endpoint: 'manual' },
    });
    const t = createCartesiaTtsEngine(cfg, 'live-tts');
    await t.init();
    engines.push(t);
    const p = new Pull(t.openStream!({ voice: 'f786b574-daa5-4673-aa0c-cbe3e8534c02', speed: 1 }));
    p.st.pushText('The quick brown fox ');
    p.st.pushText('jumps over the lazy dog.');
    p.st.flush();
    await p.until((ev) => ev.kind === 'flushed', 20000);
    p.st.close();
    assert.ok(p.samples() > 16000, `at least a second of audio: ${p.samples()}`);
    const pcm = new Int16Array(p.samples());
    let o = 0;
    for (const ev of p.seen) if (ev.kind === 'audio') (pcm.set(ev.pcm, o), (o += ev.pcm.length));
    const s = createCartesiaSttEngine(cfg, 'live-stt');
    await s.init();
    engines.push(s);
    const st = await s.start({ language: 'en', partials: true, wordTimestamps: true, vad: false, endpointingMs: null });
    const finals: SttFinal[] = [];
    st.on('final', (f) => finals.push(f));
    for (let i = 0; i < pcm.length; i += 1600) st.write(pcm.subarray(i, i + 1600));
    st.finalize();
    await eventually(() => finals.some((f) => f.fromFinalize), 20000, 'finalize answer');
    await st.close();
    assert.match(finals.map((f) => f.transcript).join(' ').toLowerCase(), /fox/);
  });
});
