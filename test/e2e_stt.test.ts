/**
 * End to end: a real gateway on port 0, real WebSocket clients, real speech from ../shared/data,
 * the real PocketSphinx engine. Every received frame is validated against its dialect's schema.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { serverMessageSchema as unifiedSchema } from '../src/protocol/unified/schema.js';
import { serverMessageSchema as dgSchema } from '../src/protocol/deepgram-style/schema.js';
import { Resampler } from '../src/audio/resample.js';
import { decodeMulaw, encodeMulaw } from '../src/audio/g711.js';
import { finalText, loadClip, openSession, openSocket, sharedData, silence, startTestServer, type RecordingClient, type TestServer } from './helpers.js';

const UNIFIED = 'local/pocketsphinx:en';
const DGSTYLE = 'local/pocketsphinx:en-deepgram';

function assertAllValid(c: RecordingClient, schema: typeof unifiedSchema | typeof dgSchema): void {
  for (const m of c.messages) {
    const r = schema.safeParse(m);
    assert.ok(r.success, `invalid frame ${JSON.stringify(m)}: ${r.success ? '' : r.error.message}`);
  }
}

/** Stream a clip with trailing silence, then `close`; resolve with the close event. */
async function transcribe(c: RecordingClient, bytes: Uint8Array, opts: { base64?: boolean } = {}) {
  const all = Buffer.concat([bytes, silence(600)]);
  if (opts.base64) c.sendBase64(all);
  else await c.sendBinary(all);
  c.sendJson({ type: 'close' });
  return c.closed;
}

describe('streaming STT end to end', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.cleanup();
  });

  it('unified: transcribes en_cmu_goforward.wav with words, partials and a 1000 close', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await openSession(s, UNIFIED, { enable_partials: true, enable_word_timestamps: true });
    const closed = await transcribe(c, clip.bytes);
    assert.equal(closed.code, 1000);
    assertAllValid(c, unifiedSchema);
    assert.equal(c.messages[0]!.type, 'ready');
    assert.match(c.messages[0]!.session_id as string, /^sess_/);
    const text = finalText(c);
    assert.match(text, /forward/);
    assert.match(text, /\bten\b/);
    assert.ok(c.ofType('partial_transcript').length > 0, 'partials were requested');
    const finals = c.ofType('final_transcript');
    const words = finals.flatMap((f) => f.words as { word: string; start: number; end: number; confidence: number }[]);
    const fw = words.find((w) => w.word === 'forward')!;
    assert.ok(fw, 'word "forward" has timing');
    assert.ok(fw.start > 0.2 && fw.end <= clip.seconds + 0.1 && fw.end > fw.start, `plausible timing ${JSON.stringify(fw)}`);
    for (let i = 1; i < words.length; i++) assert.ok(words[i]!.start >= words[i - 1]!.start, 'words are in time order');
    assert.ok(finals.some((f) => f.speech_final === true), 'endpointing produced a speech_final');
    // Partials precede the final of their utterance.
    const firstFinal = c.messages.findIndex((m) => m.type === 'final_transcript');
    assert.ok(c.messages.findIndex((m) => m.type === 'partial_transcript') < firstFinal);
  });

  it('unified: no partials unless enabled; transcribes en_ls_1272-128104-0000.wav', async () => {
    const clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    const c = await openSession(s, UNIFIED);
    await transcribe(c, clip.bytes);
    assertAllValid(c, unifiedSchema);
    assert.equal(c.ofType('partial_transcript').length, 0);
    const text = finalText(c);
    assert.match(text, /middle/);
    assert.match(text, /gospel/);
    for (const f of c.ofType('final_transcript')) assert.equal('words' in f, false, 'words only when asked for');
  });

  it('word times stay on the stream clock across utterances (inside each final\'s span)', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await openSession(s, UNIFIED, { enable_word_timestamps: true });
    // Two identical utterances, the second starting exactly `gap` seconds after the first.
    const gap = clip.seconds + 1.5;
    await c.sendBinary(Buffer.concat([silence(1000), clip.bytes, silence(1500), clip.bytes, silence(1000)]));
    c.sendJson({ type: 'close' });
    await c.closed;
    const finals = c.ofType('final_transcript') as { start: number; duration: number; words: { word: string; start: number; end: number }[] }[];
    assert.equal(finals.length, 2, JSON.stringify(finals));
    for (const f of finals) {
      for (const w of f.words) assert.ok(w.start >= f.start - 1e-3 && w.end <= f.start + f.duration + 1e-3, `word ${JSON.stringify(w)} outside final [${f.start}, ${f.start + f.duration}]`);
    }
    const [a, b] = finals.map((f) => f.words.find((w) => w.word === 'forward')!);
    assert.ok(a && b, 'both utterances contain "forward"');
    assert.ok(Math.abs(b.start - a.start - gap) < 0.05, `second "forward" at ${b.start}, first at ${a.start}, expected a ${gap} s gap`);
  });

  it('binary and base64 audio give identical transcripts', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const a = await openSession(s, UNIFIED);
    await transcribe(a, clip.bytes);
    const b = await openSession(s, UNIFIED);
    await transcribe(b, clip.bytes, { base64: true });
    assert.ok(finalText(a).length > 0);
    assert.equal(finalText(b), finalText(a));
  });

  it('finalize flushes and keeps the session; an empty finalize still answers', async () => {
    const clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    const c = await openSession(s, UNIFIED, { endpointing: false });
    // Nothing pending yet: an empty final with from_finalize must still come.
    c.sendJson({ type: 'finalize' });
    const empty = await c.waitFor((m) => m.type === 'final_transcript' && m.from_finalize === true);
    assert.equal(empty.transcript, '');
    const half = clip.bytes.subarray(0, Math.floor(clip.bytes.length / 4) * 2);
    await c.sendBinary(half);
    c.sendJson({ type: 'finalize' });
    const f = await c.waitFor((m) => m.type === 'final_transcript' && m.from_finalize === true && m !== empty);
    assert.ok((f.transcript as string).length > 0, 'finalize produced the pending speech');
    assert.equal(f.speech_final, false);
    // Session still usable.
    await c.sendBinary(clip.bytes.subarray(half.length));
    c.sendJson({ type: 'close' });
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    assert.match(finalText(c), /gospel/, 'the second half was transcribed after finalize');
    assertAllValid(c, unifiedSchema);
  });

  it('close drains: finals for all audio sent arrive before the 1000 close, even when close follows at once', async () => {
    const clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    const c = await openSession(s, UNIFIED, { endpointing: false });
    await c.sendBinary(clip.bytes, 1 << 16);
    c.sendJson({ type: 'close' });
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    assert.match(finalText(c), /middle/);
    assert.match(finalText(c), /gospel/);
  });

  it('a whole WAV file, header included, sent as linear16 is transcribed correctly', async () => {
    const file = readFileSync(sharedData('asr_en/en_cmu_goforward.wav'));
    const raw = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await openSession(s, UNIFIED);
    await c.sendBinary(Buffer.concat([file, silence(600)]), 8192);
    c.sendJson({ type: 'close' });
    await c.closed;
    assert.equal(c.ofType('error').length, 0, JSON.stringify(c.ofType('error')));
    const ref = await openSession(s, UNIFIED);
    await transcribe(ref, raw.bytes);
    assert.match(finalText(c), /forward/);
    assert.equal(finalText(c), finalText(ref), 'header skipped: same transcript as raw PCM');
  });

  it('8 kHz mu-law input decodes exactly like the same samples sent as 8 kHz linear16', async () => {
    // The embedded en-US acoustic model is wideband-only: telephone-band speech is transcribed
    // poorly whatever its encoding (see README "Known limits"), so this proves the μ-law and
    // 8 kHz paths bit-exactly instead of by keywords: G.711 decode + 8→16 kHz resampling must
    // give the engine the same PCM as linear16 carrying the μ-law-decoded samples.
    const clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    const down = new Resampler(16000, 8000);
    const pcm8 = new Int16Array([...down.process(clip.samples), ...down.flush(), ...new Int16Array(4800)]);
    const ulaw = encodeMulaw(pcm8);
    const mu = await openSession(s, UNIFIED, { encoding: 'mulaw', sample_rate: 8000 });
    await mu.sendBinary(ulaw, 800);
    mu.sendJson({ type: 'close' });
    assert.equal((await mu.closed).code, 1000);
    const lin = await openSession(s, UNIFIED, { encoding: 'linear16', sample_rate: 8000 });
    await lin.sendBinary(Buffer.from(decodeMulaw(ulaw).buffer), 1600);
    lin.sendJson({ type: 'close' });
    assert.equal((await lin.closed).code, 1000);
    assert.ok(finalText(mu).split(' ').length >= 3, `speech was decoded: "${finalText(mu)}"`);
    assert.equal(finalText(mu), finalText(lin));
  });

  it('mu-law at 16 kHz is transcribed with the key words', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await openSession(s, UNIFIED, { encoding: 'mulaw', sample_rate: 16000 });
    await c.sendBinary(encodeMulaw(new Int16Array([...clip.samples, ...new Int16Array(9600)])), 1600);
    c.sendJson({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
    assert.match(finalText(c), /forward/);
  });

  it('stereo 44.1 kHz linear16 is downmixed and resampled', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const up = new Resampler(16000, 44100);
    const mono = new Int16Array([...up.process(clip.samples), ...up.flush(), ...new Int16Array(44100 * 0.6)]);
    const stereo = new Int16Array(mono.length * 2);
    for (let i = 0; i < mono.length; i++) stereo[2 * i] = stereo[2 * i + 1] = mono[i]!;
    const c = await openSession(s, UNIFIED, { sample_rate: 44100, channels: 2 });
    await c.sendBinary(Buffer.from(stereo.buffer), 17640);
    c.sendJson({ type: 'close' });
    await c.closed;
    assert.match(finalText(c), /forward/);
  });

  it('Deepgram-style route: Metadata, Results with words, SpeechStarted, closing Metadata with totals', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await openSession(s, DGSTYLE, { enable_partials: true, vad_events: true });
    const closed = await transcribe(c, clip.bytes);
    assert.equal(closed.code, 1000);
    assertAllValid(c, dgSchema);
    const types = c.messages.map((m) => m.type);
    assert.equal(types[0], 'Metadata');
    assert.equal(types.at(-1), 'Metadata');
    assert.ok(types.includes('SpeechStarted'));
    const end = c.messages.at(-1)!;
    assert.ok(Math.abs((end.duration as number) - (clip.seconds + 0.6)) < 0.05, `duration ${end.duration}`);
    assert.match(end.sha256 as string, /^[0-9a-f]{64}$/);
    const finals = c.ofType('Results').filter((m) => m.is_final);
    assert.ok(finals.some((m) => m.speech_final === true));
    const words = finals.flatMap((m) => (m.channel as { alternatives: { words: { word: string }[] }[] }).alternatives[0]!.words);
    assert.ok(words.some((w) => w.word === 'forward'));
    assert.ok(c.ofType('Results').some((m) => m.is_final === false), 'interim results');
  });

  it('bridge route answers in the unified dialect for a Deepgram-style model', async () => {
    const c = await openSocket(`${s.wsUrl}/v1/bridges/unmute/stt/${DGSTYLE}`, { Authorization: `Bearer ${s.key}` });
    c.sendJson({ type: 'init', config: {} });
    const ready = await c.waitType('ready');
    assert.ok(ready.session_id);
    c.sendJson({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
  });

  it('GET /v1/models lists the catalogue with capabilities', async () => {
    const r = await fetch(`${s.url}/v1/models`);
    assert.equal(r.status, 200);
    const all = (await r.json()) as {
      models: { code: string; service_type: string; dialect: string; capabilities: { languages: string[]; partials: boolean; diarization: boolean; diarizer?: { source: string; experimental: boolean } } }[];
    };
    const body = { models: all.models.filter((m) => m.service_type === 'stt') };
    assert.deepEqual(body.models.map((m) => m.code), [UNIFIED, DGSTYLE, 'slng/deepgram/nova:3-en', 'slng/deepgram/nova:3-hi', 'deepgram/nova:3', 'deepgram/nova:2'], 'local models first, then the seed codes');
    assert.ok(all.models.some((m) => m.service_type === 'tts'), 'TTS models are listed too');
    assert.deepEqual(body.models[0]!.capabilities.languages, ['en']);
    assert.equal(body.models[0]!.capabilities.partials, true);
    // Issue 13: PocketSphinx does not diarize, so the embedded (experimental) diarizer labels its streams.
    assert.equal(body.models[0]!.capabilities.diarization, true);
    assert.equal(body.models[0]!.capabilities.diarizer?.source, 'embedded');
    assert.equal(body.models[0]!.capabilities.diarizer?.experimental, true);
  });

  it('a client flooding 60 s of audio at once is slowed by backpressure and loses nothing', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const one = Buffer.concat([clip.bytes, silence(1200)]);
    const copies = Math.ceil(60 / (one.length / 32000));
    const c = await openSession(s, UNIFIED);
    for (let i = 0; i < copies; i++) c.ws.send(one);
    c.sendJson({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
    const finals = c.ofType('final_transcript').filter((f) => /forward/.test(f.transcript as string));
    assert.ok(finals.length >= copies - 1, `${finals.length} of ${copies} utterances transcribed`);
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: { Authorization: `Bearer ${s.key}` } })).text();
    assert.ok(Number(/voxgate_stt_backpressure_pauses_total (\d+)/.exec(metrics)?.[1]) >= 1, 'backpressure engaged');
  });

  it('GET /metrics counts sessions by close code, finals and audio seconds', async () => {
    const text = await (await fetch(`${s.url}/metrics`, { headers: { Authorization: `Bearer ${s.key}` } })).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    assert.ok(value(/voxgate_stt_sessions_total\{model="local\/pocketsphinx:en",close_code="1000"\} (\d+)/) >= 5);
    assert.ok(value(/voxgate_stt_finals_total\{model="local\/pocketsphinx:en",reason="endpoint"\} (\d+)/) >= 1);
    assert.ok(value(/voxgate_stt_audio_seconds_total\{model="local\/pocketsphinx:en"\} ([\d.]+)/) > 10);
    assert.match(text, /voxgate_stt_decoders\{engine="pocketsphinx",state="idle"\} \d+/);
  });
});
