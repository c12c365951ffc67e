/**
 * STT failover (issue 10 part 2 "Failover", "Seamless mid-stream STT failover"; upstreams.md §2.2):
 * connect-time failover, mid-stream bounded replay with rebasing and dedupe, finalize/close across a
 * switch, exhaustion errors, replay pacing on an injected clock, single-trial probing — with the
 * scripted fake engine in its decode mode (results depend on the audio a stream actually received,
 * in its own time), then with the real PocketSphinx engine behind a fault-injecting wrapper fed real
 * speech from ../shared/data.
 *
 * Nothing here depends on wall-clock speed: fake triggers are audio time, pacing is checked on an
 * injected clock.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { BackendHealth } from '../src/engines/health.js';
import { FailoverSttEngine, replayPaceOf, type FailoverOptions, type SttBackend, type SttSwitchEvent } from '../src/engines/stt/failover.js';
import { FakeEngineError, FakeSttEngine, type FakeSttScript } from '../src/engines/stt/fake/index.js';
import { PocketSphinxEngine } from '../src/engines/stt/pocketsphinx/index.js';
import type { SttEngine, SttFinal, SttStream, SttStreamConfig, SttStreamEvents, SttWord } from '../src/engines/stt/types.js';
import { VoxgateError } from '../src/util/errors.js';
import { readSharedWavSync } from './paths.js';
import { watch, type Seen } from './support/stt_watch.js';

const RATE = 16000;
const CFG: SttStreamConfig = { language: 'en', partials: true, wordTimestamps: true, vad: true, endpointingMs: 300 };
const BLOCK = 0.5;

/** Audio the fake's decode mode reads: one 0.5 s block per value (v > 0 = word `w<v>`, 0 = silence). */
function blocks(values: number[]): Int16Array {
  const n = Math.round(BLOCK * RATE);
  const out = new Int16Array(values.length * n);
  values.forEach((v, i) => out.fill(v, i * n, (i + 1) * n));
  return out;
}

const decoding = (steps: FakeSttScript['steps'] = []): FakeSttScript => ({ decode: { blockSeconds: BLOCK }, steps });

function backend(id: string, engine: SttEngine, replayPace?: number | null): SttBackend {
  return { id, engine, region: 'us-east-1', worldPart: 'us', ...(replayPace !== undefined ? { replayPace } : {}) };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Write `pcm` in 100 ms chunks, letting queued events run between chunks (like real time). */
async function feed(s: SttStream, pcm: Int16Array, chunk = 1600, onChunk?: (seconds: number) => void): Promise<void> {
  for (let i = 0; i < pcm.length; i += chunk) {
    const piece = pcm.subarray(i, i + chunk);
    onChunk?.(piece.length / RATE);
    s.write(piece);
    await tick();
  }
}

const r6 = (x: number) => Math.round(x * 1e6) / 1e6;
const wordsOf = (finals: SttFinal[]): { word: string; start: number; end: number }[] =>
  finals.flatMap((f) => (f.words ?? []).map((w: SttWord) => ({ word: w.word, start: r6(w.start), end: r6(w.end) })));

/** The same audio through one healthy fake: the reference every failover run must equal. */
async function noFault(values: number[]): Promise<Seen> {
  const e = new FakeSttEngine({ id: 'ref', script: decoding() });
  const s = await e.start(CFG);
  const seen = watch(s);
  await feed(s, blocks(values));
  await s.close();
  return seen;
}

function setup(scriptA: FakeSttScript, scriptB: FakeSttScript, opts: Partial<FailoverOptions> = {}) {
  const health = new BackendHealth();
  const a = new FakeSttEngine({ id: 'fake-a', script: scriptA });
  const b = new FakeSttEngine({ id: 'fake-b', script: scriptB });
  const failovers: [string, string | null, string][] = [];
  const switches: SttSwitchEvent[] = [];
  const engine = new FailoverSttEngine([backend('A', a, null), backend('B', b, null)], {
    health,
    onFailover: (from, to, reason) => failovers.push([from.id, to?.id ?? null, reason.message]),
    onSwitch: (ev) => switches.push(ev),
    ...opts,
  });
  return { health, a, b, engine, failovers, switches };
}

// w1 w2 | silence → final at 1.0 s | w3 w4 w5 | silence → final at 3.5 s
const SPEECH = [1, 2, 0, 0, 3, 4, 5, 0, 0];

describe('STT failover: connect', () => {
  // Before: with every backend cooling after one failure each, new sessions got
  // backend_connection_failed "no backend available" for the whole cool-down, even once a backend was back.
  it('every backend cooling: the next session still tries them as a last resort and gets the one that is back', async () => {
    const { health, a, b, engine } = setup({ failAtStart: { message: 'A refused' } }, { failAtStart: { message: 'B refused' } });
    await assert.rejects(engine.start(CFG), (e: VoxgateError) => e.code === 'backend_connection_failed');
    assert.equal(health.state('A'), 'cooling');
    assert.equal(health.state('B'), 'cooling');
    b.script = decoding();
    const s = await engine.start(CFG);
    assert.equal(engine.lastBackend?.id, 'B');
    assert.equal(health.state('B'), 'healthy');
    assert.equal(a.started.length, 2, 'A (still down) was tried first, in preference order');
    s.abort();
  });

  it('start fails on A (retryable) → B serves; A cools down; onFailover names both', async () => {
    const { health, a, b, engine, failovers } = setup({ failAtStart: { message: 'A refused' } }, decoding());
    const s = await engine.start(CFG);
    assert.equal(engine.lastBackend?.id, 'B');
    assert.equal(a.started.length, 1);
    assert.equal(b.started.length, 1);
    assert.equal(health.state('A'), 'cooling');
    assert.deepEqual(failovers, [['A', 'B', 'A refused']]);
    const seen = watch(s);
    await feed(s, blocks(SPEECH));
    await s.close();
    assert.deepEqual(wordsOf(seen.finals), wordsOf((await noFault(SPEECH)).finals));
  });

  it('all refuse → backend_connection_failed "Failed to connect to backend: <reason>"; a rate limit last → rate_limit', async () => {
    let { engine } = setup({ failAtStart: { message: 'A refused' } }, { failAtStart: { message: 'B refused' } });
    await assert.rejects(engine.start(CFG), (e: unknown) => e instanceof VoxgateError && e.code === 'backend_connection_failed' && e.message === 'Failed to connect to backend: B refused' && !e.retryable);
    let health: BackendHealth;
    ({ engine, health } = setup({ failAtStart: { message: 'A refused' } }, { failAtStart: { code: 'rate_limit', message: 'B is at capacity' } }));
    await assert.rejects(engine.start(CFG), (e: unknown) => e instanceof VoxgateError && e.code === 'rate_limit' && e.message === 'B is at capacity');
    assert.equal(health.state('A'), 'cooling');
    assert.equal(health.state('B'), 'healthy', 'busy is not broken: no cool-down');
  });

  it('a non-retryable refusal (auth) goes to the caller unchanged; health not marked; B never tried', async () => {
    const { health, b, engine } = setup({ failAtStart: { code: 'auth_error', message: 'bad key', retryable: false } }, decoding());
    await assert.rejects(engine.start(CFG), (e: unknown) => e instanceof FakeEngineError && e.code === 'auth_error' && e.message === 'bad key');
    assert.equal(health.state('A'), 'healthy');
    assert.equal(b.started.length, 0);
  });
});

describe('STT failover: mid-stream bounded replay', () => {
  it('A fails mid-utterance after one final → every word exactly once, stream times continuous, no error', async () => {
    const ref = await noFault(SPEECH);
    const { health, engine, switches, failovers } = setup(decoding([{ at: 2.7, error: { message: 'A went away' } }]), decoding());
    const s = await engine.start(CFG);
    const seen = watch(s);
    await feed(s, blocks(SPEECH));
    await s.close();
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(wordsOf(seen.finals), wordsOf(ref.finals));
    assert.deepEqual(
      seen.finals.map((f) => [r6(f.start), r6(f.duration), f.transcript]),
      ref.finals.map((f) => [r6(f.start), r6(f.duration), f.transcript]),
      'finals cover the same stream-time ranges',
    );
    assert.equal(switches.length, 1);
    assert.equal(switches[0]!.from.id, 'A');
    assert.equal(switches[0]!.to.id, 'B');
    // The buffer since the last final (ended at 1.0 s) up to the failure (audio at ≥ 2.7 s) was replayed.
    assert.ok(switches[0]!.replayedSeconds >= 1.7 - 1e-9 && switches[0]!.replayedSeconds <= 2.0, `replayed ${switches[0]!.replayedSeconds}`);
    assert.ok(switches[0]!.gapMs >= 0);
    assert.deepEqual(failovers, [['A', 'B', 'A went away']]);
    assert.equal(health.state('A'), 'cooling');
    // speech_started once per utterance, in stream time.
    assert.deepEqual(seen.speech, ref.speech);
    // Partials after the switch are rebased: their words carry the reference times.
    const refTimes = new Map(wordsOf(ref.finals).map((w) => [w.word, w]));
    for (const p of seen.partials) {
      assert.ok(p.start >= 0);
      for (const w of p.words ?? []) assert.deepEqual({ word: w.word, start: r6(w.start), end: r6(w.end) }, refTimes.get(w.word), `partial word ${w.word}`);
    }
  });

  it('A fails right at a final boundary → the next utterance comes whole from B', async () => {
    const ref = await noFault(SPEECH);
    // The final at 1.0 s is queued by the block starting at 1.0 s; the failure follows it.
    const { engine, switches } = setup(decoding([{ at: 1.1, error: { message: 'A went away' } }]), decoding());
    const s = await engine.start(CFG);
    const seen = watch(s);
    await feed(s, blocks(SPEECH));
    await s.close();
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(wordsOf(seen.finals), wordsOf(ref.finals));
    assert.equal(switches.length, 1);
  });

  it('words an earlier final carried are dropped when the new backend re-reports them (dedupe), the transcript rebuilt', async () => {
    // A: final "w1 w2" ending at 1.0 s, then fails; the replay to B starts at 1.0 s. B (scripted)
    // re-reports a word ending at its time 0 (= stream 1.0 s, the last final's end) and a new one.
    const b2: FakeSttScript = { steps: [{ at: 0.6, final: { transcript: 'old new', words: [{ word: 'old', start: 0, end: 0.0 }, { word: 'new', start: 0.1, end: 0.5 }] } }] };
    const { engine: e2 } = setup(decoding([{ at: 1.1, error: { message: 'A went away' } }]), b2);
    const s2 = await e2.start(CFG);
    const seen2 = watch(s2);
    await feed(s2, blocks([1, 2, 0, 0]));
    await s2.close();
    assert.deepEqual(seen2.errors, []);
    assert.deepEqual(
      seen2.finals.map((f) => [f.transcript, (f.words ?? []).map((w) => w.word)]),
      [
        ['w1 w2', ['w1', 'w2']],
        ['new', ['new']],
      ],
      'the word ending at the last final end (stream 1.0 s) is dropped, the transcript rebuilt',
    );
    assert.equal(r6(seen2.finals[1]!.start), 1.0, 'continuous with the previous final');
  });

  it('A fails while a finalize is pending → exactly one fromFinalize final with the words before it', async () => {
    const { engine, switches } = setup(decoding([{ at: 1.5, error: { message: 'A went away' } }]), decoding());
    const s = await engine.start(CFG);
    const seen = watch(s);
    // w1 w2 w3 with no silence: the write reaching 1.5 s fires A's error (queued); the finalize is
    // sent to A before the error is delivered, so A never answers it.
    await feed(s, blocks([1, 2, 3]).subarray(0, 1.5 * RATE - 1600));
    s.write(blocks([1, 2, 3]).subarray(1.5 * RATE - 1600));
    s.finalize();
    await tick();
    await feed(s, blocks([0, 4, 0]));
    await s.close();
    assert.deepEqual(seen.errors, []);
    assert.equal(switches.length, 1);
    assert.deepEqual(
      seen.finals.map((f) => [f.transcript, f.fromFinalize, r6(f.start), r6(f.start + f.duration)]),
      [
        ['w1 w2 w3', true, 0, 1.5],
        ['w4', false, 1.5, 2.5],
      ],
    );
  });

  it('A fails while close() drains → close drains B after the replay; the pending words arrive', async () => {
    const { engine, switches } = setup(decoding([{ at: 1.0, error: { message: 'A went away' } }]), decoding());
    const s = await engine.start(CFG);
    const seen = watch(s);
    await feed(s, blocks([1, 2]).subarray(0, RATE - 1600));
    s.write(blocks([1, 2]).subarray(RATE - 1600)); // fires A's error (queued)
    await s.close(); // A is closing when its error arrives
    assert.deepEqual(seen.errors, []);
    assert.equal(switches.length, 1);
    assert.deepEqual(
      seen.finals.map((f) => f.transcript),
      ['w1 w2'],
    );
  });

  it('the backend dies while draining (its close resolves, the error follows) → B drains the buffered words; none lost', async () => {
    const health = new BackendHealth();
    const a = new Faulty(new FakeSttEngine({ id: 'fake-a', script: decoding() }), { onClose: true });
    const b = new FakeSttEngine({ id: 'fake-b', script: decoding() });
    const switches: SttSwitchEvent[] = [];
    const engine = new FailoverSttEngine([backend('A', a, null), backend('B', b, null)], { health, onSwitch: (ev) => switches.push(ev) });
    const s = await engine.start(CFG);
    const seen = watch(s);
    await feed(s, blocks([1, 2, 0, 3, 4]));
    await s.close();
    assert.deepEqual(seen.errors, []);
    assert.equal(switches.length, 1);
    assert.deepEqual(
      seen.finals.map((f) => f.transcript),
      ['w1 w2', 'w3 w4'],
    );
  });

  it('all candidates fail mid-stream → backend_connection_failed (retryable false), both cooling, close resolves', async () => {
    const { health, engine, failovers } = setup(decoding([{ at: 2.7, error: { message: 'A went away' } }]), decoding([{ at: 0.5, error: { message: 'B went away' } }]));
    const s = await engine.start(CFG);
    const seen = watch(s);
    await feed(s, blocks(SPEECH));
    await s.close();
    assert.equal(seen.errors.length, 1);
    const e = seen.errors[0] as VoxgateError;
    assert.equal(e.code, 'backend_connection_failed');
    assert.equal(e.message, 'Failed to connect to backend: B went away');
    assert.equal(e.retryable, false);
    assert.equal(health.state('A'), 'cooling');
    assert.equal(health.state('B'), 'cooling');
    assert.deepEqual(failovers, [
      ['A', 'B', 'A went away'],
      ['B', null, 'B went away'],
    ]);
    assert.deepEqual(wordsOf(seen.finals).map((w) => w.word), ['w1', 'w2'], 'finals before the failure were delivered');
  });

  it('exhausted with a rate limit last → rate_limit, not backend_connection_failed', async () => {
    const { engine } = setup(decoding([{ at: 1.2, error: { message: 'A went away' } }]), { failAtStart: { code: 'rate_limit', message: 'B is at capacity' } });
    const s = await engine.start(CFG);
    const seen = watch(s);
    await feed(s, blocks(SPEECH));
    await s.close();
    assert.equal(seen.errors.length, 1);
    assert.equal((seen.errors[0] as VoxgateError).code, 'rate_limit');
    assert.equal(seen.errors[0]!.message, 'B is at capacity');
  });

  it('a non-retryable mid-stream error is passed through unchanged; no failover; health not marked', async () => {
    const { health, b, engine, switches } = setup(decoding([{ at: 1.2, error: { code: 'config_error', message: 'bad option', retryable: false } }]), decoding());
    const s = await engine.start(CFG);
    const seen = watch(s);
    await feed(s, blocks(SPEECH));
    await s.close();
    assert.equal(seen.errors.length, 1);
    assert.ok(seen.errors[0] instanceof FakeEngineError);
    assert.equal((seen.errors[0] as FakeEngineError).code, 'config_error');
    assert.equal(seen.errors[0]!.message, 'bad option');
    assert.equal(health.state('A'), 'healthy');
    assert.equal(b.started.length, 0);
    assert.equal(switches.length, 0);
  });

  it('a single candidate: the backend error passes through unchanged, health untouched (the wrapper is transparent)', async () => {
    const health = new BackendHealth();
    const a = new FakeSttEngine({ script: decoding([{ at: 1.2, error: { message: 'upstream went away' } }]) });
    const engine = new FailoverSttEngine([backend('A', a)], { health });
    const s = await engine.start(CFG);
    const seen = watch(s);
    await feed(s, blocks(SPEECH));
    await s.close();
    assert.equal(seen.errors.length, 1);
    assert.ok(seen.errors[0] instanceof FakeEngineError);
    assert.equal(seen.errors[0]!.message, 'upstream went away');
    assert.equal(health.state('A'), 'healthy', 'the only backend is not cooled down: the next stream may start');
    const next = await engine.start(CFG);
    next.abort();
  });

  it('the replay is bounded by replaySeconds: older audio without a final is not replayed (the documented limit), times stay right', async () => {
    const { engine, switches } = setup(decoding([{ at: 3.0, error: { message: 'A went away' } }]), decoding(), { replaySeconds: 1 });
    const s = await engine.start(CFG);
    const seen = watch(s);
    await feed(s, blocks([1, 2, 3, 4, 5, 6, 7, 0, 0]));
    await s.close();
    assert.deepEqual(seen.errors, []);
    assert.equal(switches.length, 1);
    assert.equal(r6(switches[0]!.replayedSeconds), 1);
    // B heard 2.0–3.0 s (w5 w6) and then live audio: w1–w4 were older than the 1 s bound.
    assert.deepEqual(wordsOf(seen.finals), [
      { word: 'w5', start: 2, end: 2.5 },
      { word: 'w6', start: 2.5, end: 3 },
      { word: 'w7', start: 3, end: 3.5 },
    ]);
  });

  it('passthrough linear16 (bytes, not PCM): the raw bytes since the last final are replayed to B, times rebased', async () => {
    const caps = { passthroughEncodings: ['linear16', 'opus'] };
    const health = new BackendHealth();
    const a = new FakeSttEngine({ id: 'fake-a', capabilities: caps, script: { steps: [{ at: 1.0, final: { transcript: 'one' } }, { at: 1.5, error: { message: 'A went away' } }] } });
    const b = new FakeSttEngine({ id: 'fake-b', capabilities: { passthroughEncodings: ['linear16'] }, script: { steps: [{ at: 0.8, final: { transcript: 'two' } }] } });
    const engine = new FailoverSttEngine([backend('A', a, null), backend('B', b, null)], { health });
    assert.deepEqual(engine.capabilities.passthroughEncodings, ['linear16'], 'only what every candidate takes');
    // 8 kHz client audio passed through: 16 000 bytes per second.
    const cfg: SttStreamConfig = { ...CFG, passthrough: { encoding: 'linear16', sampleRate: 8000, channels: 1 } };
    const s = await engine.start(cfg);
    const seen = watch(s);
    const bytes = new Uint8Array(2 * 16000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
    for (let i = 0; i < bytes.length; i += 1600) {
      s.writeEncoded!(bytes.subarray(i, i + 1600));
      await tick();
    }
    assert.equal(s.audioSeconds, 2);
    await s.close();
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(
      seen.finals.map((f) => [f.transcript, r6(f.start), r6(f.start + f.duration)]),
      [
        ['one', 0, 1],
        ['two', 1, 1.8],
      ],
    );
    const got = Buffer.concat(b.encodedWrites);
    assert.ok(Buffer.from(bytes.subarray(16000)).equals(got), 'B got exactly the bytes from 1.0 s on, in order');
    assert.equal(engine.lastBackend?.id, 'A');
  });

  it('passthrough of a container (Opus): nothing can be replayed, so the error passes through', async () => {
    const caps = { passthroughEncodings: ['opus'] };
    const a = new FakeSttEngine({ id: 'fake-a', capabilities: caps, script: { steps: [{ at: 0, error: { message: 'A went away' } }] } });
    const b = new FakeSttEngine({ id: 'fake-b', capabilities: caps });
    const engine = new FailoverSttEngine([backend('A', a), backend('B', b)], { health: new BackendHealth() });
    const s = await engine.start({ ...CFG, passthrough: { encoding: 'opus', sampleRate: 48000, channels: 1 } });
    const seen = watch(s);
    s.writeEncoded!(new Uint8Array([0x4f, 0x67, 0x67, 0x53]));
    await tick();
    await s.close();
    assert.equal(seen.errors.length, 1);
    assert.equal(seen.errors[0]!.message, 'A went away');
    assert.equal(b.started.length, 0);
  });

  it('audioSeconds counts client audio; backlogSeconds includes audio not yet replayed', async () => {
    const { engine } = setup(decoding([{ at: 1.0, error: { message: 'A went away' } }]), decoding());
    const s = await engine.start(CFG);
    await feed(s, blocks([1, 2, 3]));
    assert.equal(s.audioSeconds, 1.5);
    assert.equal(s.backlogSeconds, 0);
    await s.close();
  });
});

/** A virtual clock: `sleep` advances it instantly, so pacing is checked without wall time. */
function virtualClock() {
  let t = 0;
  return { now: () => t, sleep: async (ms: number) => void (t += ms), advance: (seconds: number) => void (t += seconds * 1000) };
}

/** An engine whose streams record (clock ms, samples) at every write, around a fake. */
class Recording implements SttEngine {
  readonly writes: { t: number; n: number }[] = [];
  constructor(
    readonly inner: FakeSttEngine,
    private readonly now: () => number,
  ) {}
  get id() {
    return this.inner.id;
  }
  get capabilities() {
    return this.inner.capabilities;
  }
  async init() {}
  async start(config: SttStreamConfig): Promise<SttStream> {
    const s = await this.inner.start(config);
    const write = s.write.bind(s);
    s.write = (pcm: Int16Array) => {
      this.writes.push({ t: this.now(), n: pcm.length });
      write(pcm);
    };
    return s;
  }
  stats() {
    return this.inner.stats();
  }
  async shutdown() {}
}

describe('STT failover: replay pace', () => {
  for (const pace of [1.25, 1]) {
    it(`replays at ≤ ${pace}× real time (injected clock), then live; words still complete`, async () => {
      const clock = virtualClock();
      const health = new BackendHealth({ now: clock.now });
      const a = new FakeSttEngine({ id: 'fake-a', script: decoding([{ at: 4.2, error: { message: 'A went away' } }]) });
      const b = new Recording(new FakeSttEngine({ id: 'fake-b', script: decoding() }), clock.now);
      const switches: SttSwitchEvent[] = [];
      const engine = new FailoverSttEngine([backend('A', a, null), backend('B', b, pace)], { health, now: clock.now, sleep: clock.sleep, onSwitch: (ev) => switches.push(ev) });
      const s = await engine.start(CFG);
      const seen = watch(s);
      const values = [1, 2, 0, 3, 4, 5, 6, 7, 8, 9, 0, 0];
      await feed(s, blocks(values), 1600, clock.advance); // live audio arrives in real time on the virtual clock
      await s.close();
      assert.deepEqual(seen.errors, []);
      assert.deepEqual(wordsOf(seen.finals), wordsOf((await noFault(values)).finals));
      const replayed = switches[0]!.replayedSeconds;
      assert.ok(replayed >= 2.7, `replayed ${replayed} s`);
      // Audio sent by each write's time never exceeds pace × elapsed + one chunk (0.1 s).
      const t0 = b.writes[0]!.t;
      let sent = 0;
      for (const w of b.writes) {
        assert.ok(sent / RATE <= (pace * (w.t - t0)) / 1000 + 1e-9, `${sent / RATE} s sent by ${w.t - t0} ms`);
        sent += w.n;
      }
      // …and the limit was actually applied: the replayed backlog took ≥ (replayed − chunk) / pace.
      const replayEnd = b.writes.find((w, i) => b.writes.slice(0, i + 1).reduce((x, y) => x + y.n, 0) >= replayed * RATE)!;
      assert.ok(replayEnd.t - t0 >= ((replayed - 0.1) / pace) * 1000 - 1e-6, `replay took ${replayEnd.t - t0} ms`);
    });
  }

  it('pace: the backend entry wins, then the engine\'s own declaration (fakes: none), then the option, then 1.25', () => {
    const fake = new FakeSttEngine();
    const upstream = new Recording(fake, () => 0); // declares nothing
    assert.equal(replayPaceOf(backend('x', fake, 1), undefined), 1);
    assert.equal(replayPaceOf(backend('x', fake), 2), null);
    assert.equal(replayPaceOf(backend('x', upstream), 2), 2);
    assert.equal(replayPaceOf(backend('x', upstream), undefined), 1.25);
    assert.equal(replayPaceOf(backend('x', upstream), null), null);
  });

  it('a backend with no limit (null) gets the whole backlog at once', async () => {
    const clock = virtualClock();
    const health = new BackendHealth({ now: clock.now });
    const a = new FakeSttEngine({ id: 'fake-a', script: decoding([{ at: 2.2, error: { message: 'A went away' } }]) });
    const b = new Recording(new FakeSttEngine({ id: 'fake-b', script: decoding() }), clock.now);
    const engine = new FailoverSttEngine([backend('A', a), backend('B', b, null)], { health, now: clock.now, sleep: clock.sleep });
    const s = await engine.start(CFG);
    await feed(s, blocks([1, 2, 0, 3, 4, 5]));
    await s.close();
    assert.ok(b.writes.length > 0);
    assert.ok(b.writes.every((w) => w.t === b.writes[0]!.t));
  });
});

describe('backend health: cool-down, then a single probe trial', () => {
  it('probing hands out one trial at a time; settling or the lease frees it', () => {
    let t = 0;
    const h = new BackendHealth({ now: () => t, coolDownMs: 1000, probeLeaseMs: 5000 });
    assert.equal(h.begin('A'), true);
    assert.equal(h.begin('A'), true, 'healthy: no limit');
    h.failure('A', 'down');
    assert.equal(h.state('A'), 'cooling');
    assert.equal(h.begin('A'), false);
    t = 1000;
    assert.equal(h.state('A'), 'probing');
    assert.equal(h.isAvailable('A'), true);
    assert.equal(h.begin('A'), true, 'the trial');
    assert.equal(h.begin('A'), false, 'a second request while the trial is in flight');
    assert.equal(h.isAvailable('A'), false);
    h.release('A');
    assert.equal(h.begin('A'), true, 'released without a verdict');
    t = 7000;
    assert.equal(h.begin('A'), true, 'the lease of a hung trial expired');
    h.failure('A', 'still down');
    assert.equal(h.state('A'), 'cooling');
    assert.equal(h.snapshot('A').coolDownLeftMs, 2000, 'doubled cool-down');
    t = 9000;
    assert.equal(h.begin('A'), true);
    h.success('A', 12);
    assert.equal(h.state('A'), 'healthy');
    assert.equal(h.begin('A'), true);
    assert.equal(h.begin('A'), true);
  });

  it('concurrent starts: a probing backend gets one of them, the other goes to the next backend', async () => {
    let t = 0;
    const health = new BackendHealth({ now: () => t, coolDownMs: 1000 });
    health.failure('A', 'down');
    t = 1000;
    const a = new FakeSttEngine({ id: 'fake-a', script: decoding() });
    const b = new FakeSttEngine({ id: 'fake-b', script: decoding() });
    const engine = new FailoverSttEngine([backend('A', a), backend('B', b)], { health });
    const [s1, s2] = await Promise.all([engine.start(CFG), engine.start(CFG)]);
    assert.equal(a.started.length, 1);
    assert.equal(b.started.length, 1);
    assert.equal(health.state('A'), 'healthy', 'the trial succeeded');
    s1.abort();
    s2.abort();
  });
});

/**
 * Fault injection around a real engine: the backend's stream fails (retryable, like an abnormal close)
 * right after delivering its `afterFinals`-th final, when `atSeconds` of audio have been written, or
 * (`onClose`) while draining — its close promise resolves (the connection is gone) and the error
 * follows in the next turn, as a socket's close and error events do.
 */
interface Fault {
  afterFinals?: number;
  atSeconds?: number;
  onClose?: boolean;
}

class Faulty implements SttEngine {
  constructor(
    readonly inner: SttEngine,
    private readonly fault: Fault,
  ) {}
  get id() {
    return this.inner.id;
  }
  get capabilities() {
    return this.inner.capabilities;
  }
  async init() {}
  async start(config: SttStreamConfig): Promise<SttStream> {
    return new FaultyStream(await this.inner.start(config), this.fault, this.inner.capabilities.inputSampleRate);
  }
  stats() {
    return this.inner.stats();
  }
  async shutdown() {}
}

class FaultyStream extends EventEmitter<SttStreamEvents> implements SttStream {
  private finals = 0;
  private samples = 0;
  private dead = false;
  constructor(
    private readonly inner: SttStream,
    private readonly fault: Fault,
    private readonly rate: number,
  ) {
    super();
    inner.on('partial', (p) => !this.dead && this.emit('partial', p));
    inner.on('speech_started', (e) => !this.dead && this.emit('speech_started', e));
    inner.on('error', (e) => !this.dead && this.emit('error', e));
    inner.on('final', (f) => {
      if (this.dead) return;
      this.emit('final', f);
      if (++this.finals === this.fault.afterFinals) this.die();
    });
  }
  private die(): void {
    if (this.dead) return;
    this.dead = true;
    this.inner.abort();
    setImmediate(() => this.emit('error', new VoxgateError('provider_error', 'worker killed', { retryable: true })));
  }
  get audioSeconds() {
    return this.samples / this.rate;
  }
  get backlogSeconds() {
    return this.dead ? 0 : this.inner.backlogSeconds;
  }
  write(pcm: Int16Array): void {
    if (this.dead) return;
    this.samples += pcm.length;
    this.inner.write(pcm);
    if (this.fault.atSeconds !== undefined && this.audioSeconds >= this.fault.atSeconds) this.die();
  }
  finalize(): void {
    if (!this.dead) this.inner.finalize();
  }
  close(): Promise<void> {
    if (this.dead) return Promise.resolve();
    const p = this.inner.close();
    if (this.fault.onClose) this.die();
    return p;
  }
  abort(): void {
    this.dead = true;
    this.inner.abort();
  }
}

/**
 * What holds with a real engine. PocketSphinx's live CMN (cepstral mean normalisation) adapts across
 * the utterances of one stream (native/psaddon.cc), and a replacement stream starts un-adapted, so a
 * backend taking over after the first utterance may recognise later utterances differently from an
 * uninterrupted stream — not a property of the failover, which guarantees: the client gets the
 * failed backend's finals up to the cut (the last final's end) and then exactly the replacement
 * backend's own uninterrupted recognition of the audio from the cut, rebased to stream time; no word
 * lost, none twice. When the cut is the stream start (failure inside the first utterance) that is
 * the no-fault run itself, word for word and time for time.
 */
describe('STT failover with the real PocketSphinx engine (real speech from ../shared/data)', () => {
  let ps: PocketSphinxEngine;
  // Three utterances separated by 1 s of silence: several endpointed finals.
  const clips = ['asr_en/en_cmu_goforward.wav', 'asr_en/en_cmu_forever.wav', 'asr_en/en_librivox_sense_and_sensibility_0880.wav'];
  let speech: Int16Array;
  let reference: SttFinal[];

  before(async () => {
    ps = new PocketSphinxEngine({ minIdleDecoders: 2, maxDecoders: 3 });
    await ps.init();
    const gap = new Int16Array(RATE);
    const parts = clips.flatMap((c) => [readSharedWavSync(c), gap]);
    speech = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      speech.set(p, off);
      off += p.length;
    }
    reference = await transcribe(await ps.start(CFG), speech);
  });
  after(async () => {
    await ps.shutdown();
  });

  /**
   * Feed `pcm` in 32 ms chunks, holding back while the engine's backlog exceeds 0.3 s (the session's
   * backpressure, so results arrive while audio still flows), and return the finals.
   */
  async function transcribe(s: SttStream, pcm: Int16Array): Promise<SttFinal[]> {
    const seen = watch(s);
    for (let i = 0; i < pcm.length; i += 512) {
      s.write(pcm.subarray(i, i + 512));
      await tick();
      while (s.backlogSeconds > 0.3) await new Promise((r) => setTimeout(r, 2));
    }
    await s.close();
    assert.deepEqual(seen.errors, []);
    return seen.finals;
  }

  /** The failover run, and what it must equal: the no-fault finals before the cut + a no-fault run of the audio from the cut, rebased. */
  async function failoverRun(fault: Fault) {
    const health = new BackendHealth();
    const switches: SttSwitchEvent[] = [];
    let cut = 0;
    const engine = new FailoverSttEngine([backend('worker-a', new Faulty(ps, fault), null), backend('worker-b', ps, null)], { health, onSwitch: (ev) => switches.push(ev) });
    const s = await engine.start(CFG);
    s.on('final', (f) => {
      if (switches.length === 0) cut = f.start + f.duration;
    });
    const finals = await transcribe(s, speech);
    const cutSample = Math.round(cut * RATE);
    const before = reference.filter((f) => f.start + f.duration <= cut + 1e-6);
    const rest = (await transcribe(await ps.start(CFG), speech.subarray(cutSample))).map((f) => ({
      ...f,
      words: (f.words ?? []).map((w) => ({ ...w, start: w.start + cutSample / RATE, end: w.end + cutSample / RATE })),
    }));
    return { finals, expected: [...before, ...rest], cut, switches };
  }

  const text = (finals: SttFinal[]) => wordsOf(finals).map((w) => w.word);

  it('the no-fault run recognises several utterances', () => {
    assert.ok(reference.length >= 3 && text(reference).length >= 12, `reference: ${text(reference).join(' ')}`);
  });

  it('killed mid-utterance in the first utterance → exactly the no-fault run (words and times)', async () => {
    const r = await failoverRun({ atSeconds: 1.5 });
    assert.equal(r.switches.length, 1);
    assert.equal(r.cut, 0);
    assert.deepEqual(wordsOf(r.finals), wordsOf(reference));
  });

  it('killed right after its first final (a final boundary) → the finals before + the replacement’s uninterrupted run from the cut', async () => {
    const r = await failoverRun({ afterFinals: 1 });
    assert.equal(r.switches.length, 1);
    assert.ok(r.cut > 2, `cut at ${r.cut} s`);
    assert.deepEqual(wordsOf(r.finals), wordsOf(r.expected));
    assert.deepEqual(text(r.finals).slice(0, 4), ['go', 'forward', 'ten', 'meters']);
  });

  it('killed mid-utterance (inside the second clip) → the finals before + the replacement’s uninterrupted run from the cut', async () => {
    // The second clip starts at 2.786 + 1 = 3.786 s; it is 3.35 s long: 5.2 s is mid-utterance.
    const r = await failoverRun({ atSeconds: 5.2 });
    assert.equal(r.switches.length, 1);
    assert.ok(r.switches[0]!.replayedSeconds > 1, `replayed ${r.switches[0]!.replayedSeconds} s`);
    assert.deepEqual(wordsOf(r.finals), wordsOf(r.expected));
  });
});
