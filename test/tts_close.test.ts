/**
 * A hang-up stops audio at once (issue 9 §2): `close` on the unified TTS route (protocols.md §1.5,
 * S1 "close session and stop further audio") and Deepgram's `Close` on `/v1/speak` (§3; Deepgram's
 * docs: "Close will close the websocket connection immediately", 1000 Normal Closure) while a long
 * answer plays. No more audio and no closing message follow; the socket closes 1000; the engine
 * job (and the ffmpeg encoder) are killed. Draining stays available as `flush` + `flushed`.
 *
 * Deterministic without timing assertions: with real-time pacing (default, 3 s lead) the server can
 * only have sent a few seconds of a ≈25 s answer when the client hangs up, so every byte of audio
 * the client ever receives must add up to far less than the answer — a server that keeps talking
 * after `close` delivers all of it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sharedSpawnHost, type HostedChild } from '../src/util/spawn_host.js';
import { eventually, type TestServer } from './helpers.js';
import { openTts, openTtsSession, startTtsServer, TtsRecorder } from './tts_helpers.js';

/**
 * Five sentences of flite kal16 speech, ≈ 25 s in all. No commas: each segment is a whole ≈ 5 s
 * sentence, longer than the 3 s pacing lead, so a hang-up after the first audio lands while the
 * first segment is still being rendered (engine output and ffmpeg encoder live).
 */
const ANSWER = Array.from({ length: 5 }, (_, i) => `This is part number ${i + 1} of a long spoken answer that keeps going for quite a while before it finally stops.`).join(' ');
/** Seconds of audio the answer is at least (measured ≈ 25 s; generous floor). */
const ANSWER_MIN_SECONDS = 18;

/** Wait for the close frame, but fail fast (the defect kept talking for the whole answer). */
async function closedWithin(c: TtsRecorder, ms: number): Promise<{ code: number; reason: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`socket still open ${ms} ms after close; got ${c.frames.length} frames`)), ms);
  });
  try {
    return await Promise.race([c.closed, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('TTS close means close', () => {
  let s: TestServer;
  before(async () => {
    s = await startTtsServer();
  });
  after(async () => {
    await s.cleanup();
  });

  const idle = () => {
    const st = s.ttsEngines.get('flite')!.stats();
    return st.activeJobs === 0 && st.queuedJobs === 0;
  };

  for (const encoding of ['linear16', 'mp3'] as const) {
    it(`unified (${encoding}): close mid-answer → no more audio, no audio_end/flushed, close 1000, engine idle`, async (t) => {
      // Reference: the whole answer's length, without pacing.
      const ref = await openTtsSession(s, 'local/flite:en', { voice: 'kal16', config: { sample_rate: 16000, pacing: false } });
      ref.send({ type: 'text', text: ANSWER, flush: true });
      const end = ref.json(await ref.waitType('audio_end', 60000));
      const total = end.duration as number;
      assert.ok(total >= ANSWER_MIN_SECONDS, `the answer is ${total} s`);
      ref.ws.close();

      // Record the ffmpeg encoders started from here on (mp3): every one must be gone after close.
      const host = sharedSpawnHost();
      const spawn = host.spawn.bind(host);
      const encoders: { child: HostedChild; exited: boolean }[] = [];
      host.spawn = (cmd: string, args: string[]) => {
        const child = spawn(cmd, args);
        if (cmd === 'ffmpeg') {
          const e = { child, exited: false };
          void child.exit.then(() => (e.exited = true));
          encoders.push(e);
        }
        return child;
      };
      t.after(() => (host.spawn = spawn));
      const c = await openTtsSession(s, 'local/flite:en', { voice: 'kal16', config: { sample_rate: 16000, encoding } });
      c.send({ type: 'text', text: ANSWER, flush: true });
      await c.waitIndex(TtsRecorder.isAudio);
      const t0 = performance.now();
      c.send({ type: 'close' });
      const closed = await closedWithin(c, 8000);
      const ms = performance.now() - t0;
      assert.equal(closed.code, 1000);
      const types = c.messages.map((m) => m.type);
      assert.ok(!types.includes('audio_end') && !types.includes('flushed') && !types.includes('error'), `no closing message: ${c.describe()}`);
      if (encoding === 'linear16') {
        const heard = c.audio().length / 32000;
        assert.ok(heard < total / 2, `${heard.toFixed(2)} s of a ${total.toFixed(2)} s answer were sent: audio went on after close`);
      }
      await eventually(idle, 3000, 'engine jobs killed');
      if (encoding === 'mp3') {
        assert.ok(encoders.length > 0, 'the session started an ffmpeg encoder');
        await eventually(() => encoders.every((e) => e.exited), 3000, 'every ffmpeg encoder of the session exited');
      }
      await eventually(() => s.gateway.sessionCount() === 0, 3000, 'sessions gone');
      console.log(`# unified ${encoding}: close → close frame in ${ms.toFixed(1)} ms`);
    });
  }

  it('unified: close with unflushed text speaks nothing more and closes 1000 at once', async () => {
    const c = await openTtsSession(s, 'local/flite:en', { config: { encoding: 'mulaw', sample_rate: 8000 } });
    c.send({ type: 'text', text: 'We need to buy milk, bread and eggs' });
    c.send({ type: 'close' });
    assert.equal((await closedWithin(c, 8000)).code, 1000);
    assert.equal(c.audio().length, 0, c.describe());
    assert.deepEqual(c.messages.map((m) => m.type), ['ready']);
  });

  it('unified: draining is flush + wait for flushed, then close', async () => {
    const c = await openTtsSession(s, 'local/flite:en', { config: { encoding: 'mulaw', sample_rate: 8000, pacing: false } });
    c.send({ type: 'text', text: 'We need to buy milk, bread and eggs', flush: true });
    await c.waitType('flushed');
    const end = c.messages.find((m) => m.type === 'audio_end')!;
    assert.ok(Math.abs(c.audio().length / 8000 - (end.duration as number)) <= 0.001, 'all audio before flushed');
    c.send({ type: 'close' });
    assert.equal((await closedWithin(c, 8000)).code, 1000);
  });

  it('/v1/speak: Close mid-answer → no more audio, no Flushed/Warning, close 1000, engine idle', async () => {
    const c = await openTts(s, '/v1/speak?model=kal16&encoding=linear16&sample_rate=16000', { Authorization: `Token ${s.key}` });
    await c.waitType('Metadata');
    c.send({ type: 'Speak', text: ANSWER });
    c.send({ type: 'Flush' });
    await c.waitIndex(TtsRecorder.isAudio);
    const t0 = performance.now();
    c.send({ type: 'Close' });
    const closed = await closedWithin(c, 8000);
    const ms = performance.now() - t0;
    assert.equal(closed.code, 1000);
    assert.deepEqual(c.messages.map((m) => m.type), ['Metadata'], 'nothing but audio after Metadata');
    const heard = c.audio().length / 32000;
    assert.ok(heard < ANSWER_MIN_SECONDS / 2, `${heard.toFixed(2)} s of the answer were sent: audio went on after Close`);
    await eventually(idle, 3000, 'engine jobs killed');
    console.log(`# /v1/speak: Close → close frame in ${ms.toFixed(1)} ms`);
  });
});
