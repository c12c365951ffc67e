/**
 * The unified TTS WebSocket (protocols.md §1.5) end to end: a real gateway on 127.0.0.1, real
 * WebSocket clients, real engines. Message sequences are validated against the dialect schema;
 * barge-in ordering, incremental token input, close as a hang-up, every "bad input" case of issue #4,
 * keep-alive/idle, back-pressure, and session isolation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ttsServerMessageSchema } from '../src/protocol/tts-unified/schema.js';
import { startTestServer, eventually, type TestServer } from './helpers.js';
import { openTts, openTtsSession, startTtsServer, TtsRecorder } from './tts_helpers.js';

const TWO_SENTENCES = 'The weather today will be sunny with a high of seventy degrees. Please call me back when you get home tonight.';
const LONG = Array.from({ length: 12 }, (_, i) => `This is sentence number ${i + 1} of a long answer that keeps the engine busy for a while.`).join(' ');

/** Every JSON frame received must match the unified server schema. */
function assertSchema(c: TtsRecorder): void {
  for (const m of c.messages) {
    const r = ttsServerMessageSchema.safeParse(m);
    assert.ok(r.success, `schema violation: ${JSON.stringify(m)}`);
  }
}

describe('unified TTS WebSocket', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.cleanup();
  });

  it('init → ready; text+flush → segment_start, binary audio, segment_end, audio_end{duration}, flushed; bytes match duration', async () => {
    const c = await openTtsSession(s, 'local/flite:en', { voice: 'kal16', config: { sample_rate: 16000, encoding: 'linear16', language: 'en', pacing: false } });
    c.send({ type: 'text', text: TWO_SENTENCES, flush: true });
    const fl = await c.waitType('flushed');
    const types = c.frames.slice(0, fl + 1).map((f) => (f.kind === 'bin' ? 'audio' : (f.m.type as string)));
    const collapsed = types.filter((t, i) => t !== 'audio' || types[i - 1] !== 'audio');
    assert.deepEqual(collapsed, ['ready', 'segment_start', 'audio', 'segment_end', 'segment_start', 'audio', 'segment_end', 'audio_end', 'flushed']);
    const segIds = c.messages.filter((m) => m.type === 'segment_start').map((m) => m.segment_id);
    assert.deepEqual(segIds, ['seg_001', 'seg_002']);
    assert.deepEqual(c.messages.filter((m) => m.type === 'segment_end').map((m) => m.segment_id), segIds);
    const bytes = c.audio().length;
    const duration = c.json(c.frames.findIndex((f) => f.kind === 'json' && f.m.type === 'audio_end')).duration as number;
    assert.ok(duration > 3 && duration < 12, `${duration} s`);
    assert.ok(Math.abs(bytes / 32000 - duration) <= 0.001, `bytes ${bytes} ≙ ${bytes / 32000} s vs audio_end ${duration} s`);
    assertSchema(c);
    c.send({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
  });

  it('catalogue framing base64: audio_chunk {data, sequence} with the same audio as binary frames', async () => {
    const bin = await openTtsSession(s, 'local/flite:en', { config: { sample_rate: 16000 } });
    const b64 = await openTtsSession(s, 'local/flite:en-base64', { config: { sample_rate: 16000 } });
    for (const c of [bin, b64]) c.send({ type: 'text', text: 'Turn left at the next intersection.', flush: true });
    await Promise.all([bin.waitType('flushed'), b64.waitType('flushed')]);
    assert.ok(b64.frames.every((f) => f.kind === 'json'), 'no binary frames on a base64 route');
    const seqs = b64.messages.filter((m) => m.type === 'audio_chunk').map((m) => m.sequence as number);
    assert.ok(seqs.length > 0);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'sequence counts from 1');
    assert.deepEqual(b64.audio(), bin.audio(), 'flite is deterministic: identical audio in both framings');
    assertSchema(b64);
    bin.ws.close();
    b64.ws.close();
  });

  it('LLM tokens without flush: audio for a finished sentence starts before any flush', async () => {
    const c = await openTtsSession(s, 'local/flite:en', { config: { pacing: false } });
    for (const tok of TWO_SENTENCES.split(/(?<= )/)) {
      c.send({ type: 'text', text: tok });
      await new Promise((r) => setTimeout(r, 5));
    }
    const firstAudio = await c.waitIndex(TtsRecorder.isAudio); // fails by timeout if audio waited for flush
    assert.ok(firstAudio > 0);
    assert.equal(c.messages.filter((m) => m.type === 'flushed').length, 0);
    await c.waitType('segment_end');
    await new Promise((r) => setTimeout(r, 300)); // room for a wrong second segment to show up
    const before = c.messages.filter((m) => m.type === 'segment_end').length;
    assert.equal(before, 1, 'only the finished first sentence was spoken; the second waits for its boundary');
    c.send({ type: 'flush' });
    await c.waitType('flushed');
    assert.equal(c.messages.filter((m) => m.type === 'segment_end').length, 2);
    c.ws.close();
  });

  it('barge-in: after clear, no audio from before it follows cleared, engine work stops, the session goes on', async () => {
    const c = await openTtsSession(s, 'local/flite:en', { config: { sample_rate: 48000 } });
    c.send({ type: 'text', text: LONG, flush: true });
    await c.waitIndex(TtsRecorder.isAudio);
    c.send({ type: 'clear' });
    const cleared = await c.waitType('cleared');
    await new Promise((r) => setTimeout(r, 400)); // give stray audio every chance to show up
    const after = c.frames.slice(cleared + 1);
    assert.deepEqual(after.filter(TtsRecorder.isAudio).length, 0, `audio after cleared: ${c.describe()}`);
    assert.ok(!after.some((f) => f.kind === 'json' && ['segment_end', 'audio_end', 'flushed'].includes(f.m.type as string)), 'nothing of the cleared utterance follows');
    await eventually(() => s.ttsEngines.get('flite')!.stats().activeJobs === 0, 2000, 'engine jobs stopped');
    c.send({ type: 'text', text: 'A new answer.', flush: true });
    const fl = await c.waitType('flushed', 15000, cleared);
    assert.ok(c.audio(cleared, fl).length > 0, 'new audio after the clear');
    const ends = c.messages.filter((m) => m.type === 'audio_end');
    assert.equal(ends.length, 1, 'one audio_end: the cleared utterance has none');
    assertSchema(c);
    c.ws.close();
  });

  it('cancel stops generation like clear (acknowledged with cleared)', async () => {
    const c = await openTtsSession(s, 'local/espeak-ng:multi');
    c.send({ type: 'text', text: LONG, flush: true });
    await c.waitIndex(TtsRecorder.isAudio);
    c.send({ type: 'cancel' });
    const cleared = await c.waitType('cleared');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(c.frames.slice(cleared + 1).filter(TtsRecorder.isAudio).length, 0);
    c.ws.close();
  });

  it('close is a hang-up: buffered text is not spoken, no closing message, close 1000 (drain = flush + flushed; see tts_close.test.ts)', async () => {
    const c = await openTtsSession(s, 'local/flite:en', { config: { encoding: 'mulaw', sample_rate: 8000 } });
    c.send({ type: 'text', text: 'We need to buy milk, bread and eggs' });
    c.send({ type: 'close' });
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    assert.deepEqual(c.messages.map((m) => m.type), ['ready'], c.describe());
    assert.equal(c.audio().length, 0);
  });

  it('mp3 over the WebSocket decodes (ffmpeg) to audio_end.duration ±5 %', async () => {
    const c = await openTtsSession(s, 'local/flite:en', { config: { encoding: 'mp3', sample_rate: 24000, pacing: false } });
    c.send({ type: 'text', text: `${TWO_SENTENCES} ${TWO_SENTENCES}`, flush: true });
    const fl = await c.waitType('flushed');
    const duration = c.messages.find((m) => m.type === 'audio_end')!.duration as number;
    const pcm = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'mp3', '-i', 'pipe:0', '-f', 's16le', '-ac', '1', '-ar', '24000', 'pipe:1'], { input: c.audio(0, fl) });
    const decoded = pcm.length / 2 / 24000;
    assert.ok(Math.abs(decoded - duration) / duration < 0.05, `mp3 decodes to ${decoded} s, audio_end says ${duration} s`);
    c.ws.close();
  });

  it('bridge route with language hi picks the Hindi voice of espeak-ng', async () => {
    const c = await openTts(s, '/v1/bridges/unmute/tts/local/espeak-ng:multi');
    c.send({ type: 'init', config: { language: 'hi', sample_rate: 16000 } });
    await c.waitType('ready');
    c.send({ type: 'text', text: 'नमस्ते, आप कैसे हैं?', flush: true });
    await c.waitType('flushed');
    assert.ok(c.audio().length > 16000, 'at least half a second of Hindi audio');
    c.ws.close();
  });

  describe('bad input', () => {
    it('text before init → error (message ignored), session still accepts init', async () => {
      const c = await openTts(s, '/v1/tts/local/flite:en');
      c.send({ type: 'text', text: 'too early', flush: true });
      const e = await c.waitType('error');
      assert.equal(c.json(e).code, 'invalid_request');
      assert.match(c.json(e).message as string, /"text" before "init"/);
      c.send({ type: 'flush' });
      await c.waitIndex((f) => f.kind === 'json' && f.m.type === 'error', 5000, e + 1);
      c.send({ type: 'init' });
      await c.waitType('ready');
      assert.equal(c.frames.filter(TtsRecorder.isAudio).length, 0, 'the early text was not spoken');
      c.ws.close();
    });

    it('unknown voice → config_error naming the available voices, close 1008', async () => {
      const c = await openTts(s, '/v1/tts/local/flite:en');
      c.send({ type: 'init', voice: 'darth' });
      const e = c.json(await c.waitType('error'));
      assert.equal(e.code, 'config_error');
      assert.match(e.message as string, /unknown voice "darth".*kal16, slt, rms, awb, kal/);
      assert.equal((await c.closed).code, 1008);
    });

    for (const [what, config, re] of [
      ['speed out of range', { speed: 3 }, /speed 3 is out of range; supported: 0.5–2/],
      ['unsupported encoding', { encoding: 'flac' }, /unsupported encoding "flac"/],
      ['unsupported sample_rate', { sample_rate: 11025 }, /unsupported sample_rate 11025/],
      ['wrongly typed config', { sample_rate: 'high' }, /invalid init config/],
    ] as const) {
      it(`${what} → config_error, close 1008`, async () => {
        const c = await openTts(s, '/v1/tts/local/flite:en');
        c.send({ type: 'init', config });
        const e = c.json(await c.waitType('error'));
        assert.equal(e.code, 'config_error');
        assert.match(e.message as string, re);
        assert.equal((await c.closed).code, 1008);
      });
    }

    it('empty text is a no-op: no error, no audio; flush still answers flushed', async () => {
      const c = await openTtsSession(s);
      c.send({ type: 'text', text: '' });
      c.send({ type: 'text', text: '   ', flush: true });
      await c.waitType('flushed');
      assert.equal(c.messages.filter((m) => m.type === 'error').length, 0);
      assert.equal(c.frames.filter(TtsRecorder.isAudio).length, 0);
      assert.equal(c.messages.filter((m) => m.type === 'audio_end').length, 0);
      c.ws.close();
    });

    it('over-long text, binary frames, malformed JSON, unknown type, second init → error frames; the session survives', async () => {
      const c = await openTtsSession(s);
      c.send({ type: 'text', text: 'x '.repeat(15_000) });
      c.ws.send(Buffer.from([1, 2, 3]));
      c.ws.send('{not json');
      c.send({ type: 'speak', text: 'hi' });
      c.send({ type: 'init' });
      await eventually(() => c.messages.filter((m) => m.type === 'error').length >= 5, 5000, 'five errors');
      const errs = c.messages.filter((m) => m.type === 'error');
      assert.deepEqual(errs.map((e) => e.code), ['payload_too_large', 'invalid_request', 'invalid_request', 'invalid_request', 'invalid_request']);
      assert.match(errs[0]!.message as string, /30000 characters exceeds the 20000-character limit/);
      assert.match(errs[1]!.message as string, /binary frame/);
      c.send({ type: 'text', text: 'Still here.', flush: true });
      await c.waitType('flushed');
      assert.ok(c.audio().length > 0);
      assertSchema(c);
      c.ws.close();
    });

    it('refuses unknown models (404 listing TTS models) and missing keys (401); ?token= works', async () => {
      await assert.rejects(openTts(s, '/v1/tts/local/nope:1'), (e: { statusCode: number; body: string }) => e.statusCode === 404 && /local\/flite:en/.test(e.body));
      await assert.rejects(openTts(s, '/v1/tts/local/flite:en', {}), (e: { statusCode: number }) => e.statusCode === 401);
      const c = await openTts(s, `/v1/tts/local/flite:en?token=${s.key}`, {});
      c.send({ type: 'init' });
      await c.waitType('ready');
      c.ws.close();
    });
  });

  it('real-time pacing: audio runs at most the lead ahead of playback; pacing: false sends it at once', async () => {
    const paced = await startTtsServer({ realtimeLeadSeconds: 0.5 });
    try {
      const c = await openTtsSession(paced, 'local/flite:en', { config: { sample_rate: 8000 } });
      c.send({ type: 'text', text: TWO_SENTENCES, flush: true });
      const first = c.frames[await c.waitIndex(TtsRecorder.isAudio)]!.t;
      const fl = await c.waitType('flushed');
      const duration = c.messages.find((m) => m.type === 'audio_end')!.duration as number;
      const elapsed = (c.frames[fl]!.t - first) / 1000;
      assert.ok(elapsed >= duration - 0.5 - 0.6, `${duration} s of audio arrived in ${elapsed} s: not paced`);
      const fast = await openTtsSession(paced, 'local/flite:en', { config: { sample_rate: 8000, pacing: false } });
      fast.send({ type: 'text', text: TWO_SENTENCES, flush: true });
      await fast.waitType('flushed');
      assert.equal(fast.audio().length, c.audio().length, 'same audio either way');
      c.ws.close();
      fast.ws.close();
    } finally {
      await paced.cleanup();
    }
  });

  it('GET /v1/models lists every TTS voice with languages and native rate, next to the STT entries', async () => {
    const res = await fetch(`http://127.0.0.1:${s.port}/v1/models`);
    const { models } = (await res.json()) as { models: { code: string; service_type: string; default_voice?: string; voices?: { id: string; languages: string[]; sample_rate: number }[]; audio_framing?: string }[] };
    assert.ok(models.some((m) => m.service_type === 'stt' && m.code === 'local/pocketsphinx:en'), 'STT entries unchanged');
    const flite = models.find((m) => m.code === 'local/flite:en')!;
    assert.equal(flite.service_type, 'tts');
    assert.equal(flite.default_voice, 'kal16');
    assert.deepEqual(flite.voices!.map((v) => [v.id, v.sample_rate]), [['kal16', 16000], ['slt', 16000], ['rms', 16000], ['awb', 16000], ['kal', 8000]]);
    const espeak = models.find((m) => m.code === 'local/espeak-ng:multi')!;
    const hi = espeak.voices!.find((v) => v.id === 'hi')!;
    assert.deepEqual([hi.languages, hi.sample_rate], [['hi'], 22050]);
    assert.equal(models.find((m) => m.code === 'local/flite:en-base64')!.audio_framing, 'base64');
  });
});

describe('TTS keep-alive, idle timeout, back-pressure', () => {
  let s: TestServer;
  let idle: TestServer;
  let pending: TestServer;
  before(async () => {
    s = await startTtsServer({ maxBufferedBytes: 64 * 1024, backpressureTimeoutSeconds: 1 });
    idle = await startTtsServer({}, { idleTimeoutSeconds: 1 });
    pending = await startTtsServer({ maxPendingChars: 500 });
  });
  after(async () => {
    await s.cleanup();
    await idle.cleanup();
    await pending.cleanup();
  });

  it('keepalive messages and WebSocket pings keep an idle session open; silence closes it with idle_timeout_exceeded', async () => {
    const c = await openTtsSession(idle);
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 300));
      if (i % 2) c.send({ type: 'keepalive' });
      else c.ws.ping();
    }
    assert.equal(c.closeInfo, null, 'still open after 1.8 s of keep-alives with a 1 s idle limit');
    const closed = await c.closed;
    assert.equal(closed.code, 1008);
    assert.equal(c.messages.at(-1)!.code, 'idle_timeout_exceeded');
  });

  it('a client that stops reading gets backpressure and is closed; another session is unaffected', async () => {
    const slow = await openTtsSession(s, 'local/flite:en', { config: { sample_rate: 48000, pacing: false } });
    slow.ws.pause(); // stop reading: the kernel's socket buffers fill (up to ~36 MB here), then the server's queue
    // ~12 000 characters ≈ 8 min of speech ≈ 46 MB of 48 kHz linear16: more than the kernel can hold.
    slow.send({ type: 'text', text: Array.from({ length: 12 }, () => LONG).join(' ').slice(0, 12_000), flush: true });
    const other = await openTtsSession(s, 'local/flite:en');
    other.send({ type: 'text', text: 'I am fine.', flush: true });
    await other.waitType('flushed');
    await eventually(() => s.gateway.sessionCount() === 1, 30_000, 'the slow session to be closed by the server'); // 1 s after it stalls
    slow.ws.resume();
    const closed = await slow.closed;
    assert.equal(closed.code, 1008);
    const err = slow.messages.find((m) => m.type === 'error');
    assert.equal(err?.code, 'backpressure', slow.describe());
    assert.equal(slow.messages.filter((m) => m.type === 'flushed').length, 0, 'the slow client did not get the whole utterance');
    other.send({ type: 'text', text: 'Still fine.', flush: true });
    await other.waitType('flushed', 15000, other.frames.length);
    other.ws.close();
  });

  it('too much unspoken text is refused with backpressure (the message is rejected, the session survives)', async () => {
    const c = await openTtsSession(pending);
    c.send({ type: 'text', text: 'word '.repeat(90) }); // 300 characters start, 150 wait for a boundary
    c.send({ type: 'text', text: 'word '.repeat(90) }); // 150 + 450 > 500
    const e = c.json(await c.waitType('error'));
    assert.equal(e.code, 'backpressure');
    assert.match(e.message as string, /limit 500/);
    c.send({ type: 'clear' });
    await c.waitType('cleared');
    c.send({ type: 'text', text: 'Fits now.', flush: true });
    await c.waitType('flushed');
    c.ws.close();
  });
});
