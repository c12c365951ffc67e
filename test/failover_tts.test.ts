/**
 * TTS failover (issue 10 part 2 "Failover": "TTS: switch only before a segment's first audio byte;
 * after it, end that segment with an error and speak the next one on the new backend"; upstreams.md
 * §2.1 LiveKit's silent-failure rule and per-attempt timeout, §2.2) with the scripted fake TTS engine.
 * The fake's audio length is known from the text (one chunk per character), so whose audio the
 * caller got is checkable exactly. The one timer here (first-audio timeout) waits for a stall that
 * never ends, so it cannot pass or fail by timing luck.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BackendHealth } from '../src/engines/health.js';
import { FailoverTtsEngine, type TtsBackend, type TtsFailoverOptions } from '../src/engines/tts/failover.js';
import { FakeEngineError, FakeTtsEngine, type FakeTtsScript } from '../src/engines/tts/fake/index.js';
import type { TtsSynthesisRequest } from '../src/engines/tts/types.js';
import { VoxgateError } from '../src/util/errors.js';

const SAMPLES_PER_CHAR = 320; // 20 ms at 16 kHz
const req = (text: string): TtsSynthesisRequest => ({ text, voice: 'fake', speed: 1 });

function setup(scriptA: FakeTtsScript, scriptB: FakeTtsScript = {}, opts: Partial<TtsFailoverOptions> = {}, health = new BackendHealth()) {
  const a = new FakeTtsEngine({ id: 'fake-a', script: scriptA });
  const b = new FakeTtsEngine({ id: 'fake-b', script: scriptB });
  const failovers: [string, string | null, string][] = [];
  const backends: TtsBackend[] = [
    { id: 'A', engine: a, region: 'us-east-1', worldPart: 'us' },
    { id: 'B', engine: b, region: 'us-west-2', worldPart: 'us' },
  ];
  const engine = new FailoverTtsEngine(backends, { health, onFailover: (from, to, r) => failovers.push([from.id, to?.id ?? null, r.message]), ...opts });
  return { a, b, engine, health, failovers };
}

/** Iterate a synthesis: the samples received, and the error it ended with (if any). */
async function speak(engine: FailoverTtsEngine, text: string, signal?: AbortSignal): Promise<{ samples: number; chunks: number; error: unknown }> {
  let samples = 0;
  let chunks = 0;
  try {
    for await (const c of engine.synthesize(req(text), signal)) {
      samples += c.length;
      chunks++;
    }
    return { samples, chunks, error: null };
  } catch (error) {
    return { samples, chunks, error };
  }
}

describe('TTS failover', () => {
  // Before: audio of a backend whose voice has another rate went out unconverted, labelled with the
  // first backend's rate — played back pitch-shifted and at the wrong speed.
  it('a backend at another sample rate is resampled to the synthesis rate (24 kHz backend behind a 16 kHz first backend)', async () => {
    const health = new BackendHealth();
    const a = new FakeTtsEngine({ id: 'fake-a', script: { failures: [{ atChar: 0, message: 'A refused' }] } });
    const b = new FakeTtsEngine({ id: 'fake-b', voices: [{ id: 'fake', name: 'Fake 24 kHz', languages: ['en'], gender: 'unknown', sampleRate: 24000 }] });
    const engine = new FailoverTtsEngine(
      [
        { id: 'A', engine: a, region: 'us-east-1', worldPart: 'us' },
        { id: 'B', engine: b, region: 'us-west-2', worldPart: 'us' },
      ],
      { health },
    );
    const synth = engine.synthesize(req('Hello there.'));
    assert.equal(synth.sampleRate, 16000);
    let samples = 0;
    for await (const c of synth) samples += c.length;
    assert.equal(engine.lastBackend?.id, 'B');
    // B produced 12 chars × 20 ms at 24 kHz = 5760 samples; at 16 kHz that is 3840 (the same 240 ms).
    assert.equal(samples, 'Hello there.'.length * SAMPLES_PER_CHAR);
  });

  it('A fails before its first audio → the segment is spoken by B only; A cools down', async () => {
    const { a, b, engine, health, failovers } = setup({ failures: [{ atChar: 0, message: 'A refused' }] });
    const r = await speak(engine, 'Hello there.');
    assert.equal(r.error, null);
    assert.equal(r.samples, 'Hello there.'.length * SAMPLES_PER_CHAR);
    assert.equal(a.requests.length, 1);
    assert.equal(b.requests.length, 1);
    assert.equal(engine.lastBackend?.id, 'B');
    assert.equal(health.state('A'), 'cooling');
    assert.deepEqual(failovers, [['A', 'B', 'A refused']]);
  });

  it('A fails after its first audio → that segment ends with the error (no re-speaking); the next segment goes to B', async () => {
    const { a, b, engine, health, failovers } = setup({ failures: [{ atChar: 3, message: 'A lost mid-segment' }] });
    const r = await speak(engine, 'First sentence.');
    assert.ok(r.error instanceof VoxgateError);
    assert.equal((r.error as VoxgateError).code, 'provider_error');
    assert.equal((r.error as VoxgateError).message, 'A lost mid-segment');
    assert.equal(r.chunks, 3, 'only A audio, cut where it failed');
    assert.equal(b.requests.length, 0, 'the failed segment is not re-spoken');
    assert.equal(health.state('A'), 'cooling', 'A marked failed');
    assert.deepEqual(failovers, [['A', 'B', 'A lost mid-segment']]);
    const next = await speak(engine, 'Second one.');
    assert.equal(next.error, null);
    assert.equal(next.samples, 'Second one.'.length * SAMPLES_PER_CHAR);
    assert.equal(a.requests.length, 1);
    assert.equal(b.requests.length, 1);
    assert.equal(engine.lastBackend?.id, 'B');
  });

  it('silent failure: A ends a speakable segment without audio → B speaks it; A cools down', async () => {
    const { b, engine, health, failovers } = setup({ failures: [{ atChar: 0, kind: 'silent' }] });
    const r = await speak(engine, 'Are you there?');
    assert.equal(r.error, null);
    assert.equal(r.samples, 'Are you there?'.length * SAMPLES_PER_CHAR);
    assert.equal(b.requests.length, 1);
    assert.equal(health.state('A'), 'cooling');
    assert.equal(failovers.length, 1);
    assert.match(failovers[0]![2], /without audio/);
  });

  it('a single backend: a segment without audio ends normally (nowhere to fail over to; the backend is not marked)', async () => {
    const health = new BackendHealth();
    const a = new FakeTtsEngine({ id: 'fake-a', script: { failures: [{ atChar: 0, kind: 'silent' }] } });
    const engine = new FailoverTtsEngine([{ id: 'A', engine: a, region: 'us-east-1', worldPart: 'us' }], { health });
    const r = await speak(engine, 'Hello.');
    assert.equal(r.error, null);
    assert.equal(r.samples, 0);
    assert.equal(health.state('A'), 'healthy');
  });

  it('a single backend failing after first audio: the segment errors, the next segment is still spoken by it', async () => {
    const health = new BackendHealth();
    const a = new FakeTtsEngine({ id: 'fake-a', script: { failures: [{ when: 'Broken', atChar: 2, message: 'lost' }] } });
    const engine = new FailoverTtsEngine([{ id: 'A', engine: a, region: 'us-east-1', worldPart: 'us' }], { health });
    const r = await speak(engine, 'Broken one.');
    assert.equal((r.error as VoxgateError).message, 'lost');
    assert.equal(health.state('A'), 'healthy');
    const next = await speak(engine, 'Fine one.');
    assert.equal(next.error, null);
    assert.equal(next.samples, 'Fine one.'.length * SAMPLES_PER_CHAR);
  });

  it('no audio for punctuation-only text is not a failure', async () => {
    const { b, engine, health } = setup({ failures: [{ when: '…', atChar: 0, kind: 'silent' }] });
    const r = await speak(engine, '…');
    assert.equal(r.error, null);
    assert.equal(r.samples, 0);
    assert.equal(b.requests.length, 0);
    assert.equal(health.state('A'), 'healthy');
  });

  it('first-audio timeout: A stalls before its first audio → its job is aborted and B speaks the segment', async () => {
    const { a, b, engine, health } = setup({ failures: [{ atChar: 0, kind: 'stall' }] }, {}, { firstAudioTimeoutMs: 50 });
    const r = await speak(engine, 'Anyone?');
    assert.equal(r.error, null);
    assert.equal(r.samples, 'Anyone?'.length * SAMPLES_PER_CHAR);
    assert.equal(b.requests.length, 1);
    assert.equal(health.state('A'), 'cooling');
    assert.match(health.snapshot('A').lastError ?? '', /no audio within 50 ms/);
    await new Promise((r) => setImmediate(r));
    assert.equal(a.stats().activeJobs, 0, "A's stalled job was aborted");
  });

  it('a non-retryable error (auth) goes to the caller unchanged; B not tried; A not marked', async () => {
    const { b, engine, health } = setup({ failures: [{ atChar: 0, code: 'auth_error', message: 'bad key', retryable: false }] });
    const r = await speak(engine, 'Hello.');
    assert.ok(r.error instanceof FakeEngineError);
    assert.equal((r.error as FakeEngineError).code, 'auth_error');
    assert.equal(b.requests.length, 0);
    assert.equal(health.state('A'), 'healthy');
  });

  it('all fail before audio → backend_connection_failed with the last reason; a rate limit last → rate_limit', async () => {
    let { engine } = setup({ failures: [{ message: 'A down' }] }, { failures: [{ message: 'B down' }] });
    let r = await speak(engine, 'Hello.');
    assert.ok(r.error instanceof VoxgateError);
    assert.equal((r.error as VoxgateError).code, 'backend_connection_failed');
    assert.equal((r.error as VoxgateError).message, 'Failed to connect to backend: B down');
    let health: BackendHealth;
    ({ engine, health } = setup({ failures: [{ message: 'A down' }] }, { failures: [{ code: 'rate_limit', message: 'B busy' }] }));
    r = await speak(engine, 'Hello.');
    assert.equal((r.error as VoxgateError).code, 'rate_limit');
    assert.equal((r.error as VoxgateError).message, 'B busy');
    assert.equal(health.state('A'), 'cooling');
    assert.equal(health.state('B'), 'healthy', 'busy is not broken: no cool-down');
  });

  it('a probing backend gets one trial segment at a time; concurrent segments go to the next backend', async () => {
    let t = 0;
    const health = new BackendHealth({ now: () => t, coolDownMs: 1000 });
    health.failure('A', 'down');
    t = 1000;
    const { a, b, engine } = setup({}, {}, {}, health);
    const [r1, r2, r3] = await Promise.all([speak(engine, 'One.'), speak(engine, 'Two.'), speak(engine, 'Three.')]);
    for (const r of [r1, r2, r3]) assert.equal(r.error, null);
    assert.equal(a.requests.length, 1, 'one trial on the probing backend');
    assert.equal(b.requests.length, 2);
    assert.equal(health.state('A'), 'healthy', 'the trial produced audio');
  });

  it('a caller stopping early aborts the job and frees a probe slot', async () => {
    let t = 0;
    const health = new BackendHealth({ now: () => t, coolDownMs: 1000 });
    health.failure('A', 'down');
    t = 1000;
    const ac = new AbortController();
    const { a, engine } = setup({ failures: [{ atChar: 0, kind: 'stall' }] }, {}, { firstAudioTimeoutMs: null }, health);
    const p = speak(engine, 'Hello.', ac.signal);
    await new Promise((r) => setImmediate(r));
    assert.equal(health.isAvailable('A'), false, 'trial in flight');
    ac.abort();
    const r = await p;
    assert.ok(r.error instanceof Error);
    assert.equal(health.isAvailable('A'), true, 'slot freed; no verdict recorded');
    assert.equal(health.snapshot('A').failures, 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(a.stats().activeJobs, 0);
  });
});
