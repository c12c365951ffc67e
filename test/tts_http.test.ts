/**
 * HTTP text-to-speech (protocols.md §1.7, §3 REST): `POST /v1/tts/{model}`,
 * `POST /v1/bridges/unmute/tts/{model_variant}` and `POST /v1/speak` on a real gateway. Formats
 * (WAV default, raw PCM, G.711, mp3, opus) are checked by parsing or decoding with ffmpeg against
 * `X-Duration`; long text is streamed with chunked transfer and a duration trailer; errors are JSON
 * in each route family's shape; a client that disconnects stops the engine.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { parseWavHeader } from '../src/audio/wav.js';
import { segmentText } from '../src/session/tts_render.js';
import { eventually, type TestServer } from './helpers.js';
import { startTtsServer } from './tts_helpers.js';

const TEXT = 'My flight leaves from the airport at nine in the morning.';
const LONG = Array.from({ length: 30 }, (_, i) => `Sentence ${i + 1}: the children played in the park until it started to rain.`).join(' ');

function decodedSeconds(bytes: Buffer, fmt: string, rate: number): number {
  const out = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', fmt, '-i', 'pipe:0', '-f', 's16le', '-ac', '1', '-ar', String(rate), 'pipe:1'], { input: bytes, maxBuffer: 64 << 20 });
  return out.length / 2 / rate;
}

/** A raw HTTP POST that exposes chunks as they arrive and trailers. */
function rawPost(port: number, path: string, body: string, headers: Record<string, string>, onFirstChunk?: () => void): Promise<{ status: number; headers: http.IncomingHttpHeaders; trailers: NodeJS.Dict<string>; body: Buffer; chunks: number; req: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => {
        if (parts.length === 0) onFirstChunk?.();
        parts.push(d);
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, trailers: res.trailers, body: Buffer.concat(parts), chunks: parts.length, req }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('TTS over HTTP', () => {
  let s: TestServer;
  let base: string;
  let auth: Record<string, string>;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  before(async () => {
    s = await startTtsServer({ maxHttpTextChars: 5000, httpStreamThresholdChars: 1000 });
    base = `http://127.0.0.1:${s.port}`;
    auth = { Authorization: `Bearer ${s.key}` };
  });
  after(async () => {
    await s.cleanup();
  });

  it('WAV by default, with Content-Type, Content-Length and an X-Duration that matches the data', async () => {
    const res = await post('/v1/tts/local/flite:en', { text: TEXT });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'audio/wav');
    const wav = Buffer.from(await res.arrayBuffer());
    assert.equal(Number(res.headers.get('content-length')), wav.length);
    const h = parseWavHeader(wav);
    assert.ok(h.kind === 'wav' && h.format === 'pcm_s16le' && h.sampleRate === 24000 && h.channels === 1);
    const seconds = (h.kind === 'wav' ? h.dataLength! : 0) / 2 / 24000;
    assert.ok(Math.abs(seconds - Number(res.headers.get('x-duration'))) <= 0.001, `${seconds} vs X-Duration ${res.headers.get('x-duration')}`);
    assert.equal(res.headers.get('x-voice'), 'kal16');
    assert.equal(res.headers.get('x-sample-rate'), '24000');
  });

  it('bridge route with {text, voice}; raw PCM, μ-law WAV, mp3 and opus on request', async () => {
    const bridge = await post('/v1/bridges/unmute/tts/local/flite:en', { text: TEXT, voice: 'slt' });
    assert.equal(bridge.status, 200);
    assert.equal(bridge.headers.get('x-voice'), 'slt');
    assert.equal(parseWavHeader(Buffer.from(await bridge.arrayBuffer())).kind, 'wav');

    const raw = await post('/v1/tts/local/flite:en', { text: TEXT, encoding: 'linear16', container: 'none', sample_rate: 16000 });
    assert.match(raw.headers.get('content-type')!, /^audio\/pcm; rate=16000/);
    const pcm = Buffer.from(await raw.arrayBuffer());
    assert.ok(Math.abs(pcm.length / 32000 - Number(raw.headers.get('x-duration'))) <= 0.001);

    const ulaw = await post('/v1/tts/local/flite:en', { text: TEXT, config: { encoding: 'mulaw' } });
    const uh = parseWavHeader(Buffer.from(await ulaw.arrayBuffer()));
    assert.ok(uh.kind === 'wav' && uh.format === 'mulaw' && uh.sampleRate === 8000, JSON.stringify(uh));

    for (const [encoding, type, fmt, rate] of [
      ['mp3', 'audio/mpeg', 'mp3', 24000],
      ['opus', 'audio/ogg; codecs=opus', 'ogg', 48000],
    ] as const) {
      const res = await post('/v1/tts/local/espeak-ng:multi', { text: `${TEXT} ${TEXT}`, encoding });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), type);
      const d = decodedSeconds(Buffer.from(await res.arrayBuffer()), fmt, rate);
      const x = Number(res.headers.get('x-duration'));
      assert.ok(Math.abs(d - x) / x < 0.05, `${encoding}: decodes to ${d} s, X-Duration ${x}`);
    }
    const accept = await post('/v1/tts/local/flite:en', { text: TEXT }, { accept: 'audio/mpeg' });
    assert.equal(accept.headers.get('content-type'), 'audio/mpeg', 'Accept picks the format when the body does not');
    const soniox = await post('/v1/tts/local/flite:en', { text: TEXT, voice: 'rms', audio_format: 'pcm', sample_rate: 16000 });
    assert.match(soniox.headers.get('content-type')!, /^audio\/pcm; rate=16000/, 'Soniox-style audio_format');
    const sarvam = await post('/v1/tts/local/espeak-ng:multi', { text: 'नमस्ते', target_language_code: 'hi-IN' });
    assert.equal(sarvam.headers.get('x-voice'), 'hi', 'Sarvam-style target_language_code picks the voice');
  });

  it('a text/plain body is the text; empty text gives empty audio, not an error', async () => {
    const plain = await fetch(`${base}/v1/tts/local/flite:en?encoding=alaw&container=none`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: TEXT });
    assert.equal(plain.status, 200);
    assert.match(plain.headers.get('content-type')!, /^audio\/PCMA; rate=8000/);
    assert.ok((await plain.arrayBuffer()).byteLength > 8000);
    const empty = await post('/v1/tts/local/flite:en', { text: '' });
    assert.equal(empty.status, 200);
    assert.equal(empty.headers.get('x-duration'), '0.000');
    const h = parseWavHeader(Buffer.from(await empty.arrayBuffer()));
    assert.equal(h.kind === 'wav' && h.dataLength, null, 'a zero-length data chunk');
  });

  it('long text is streamed with chunked transfer while it is synthesised; X-Duration comes as a trailer', async () => {
    const flite = s.ttsEngines.get('flite')!;
    const segments = segmentText(LONG).length;
    const jobsBefore = flite.stats().finishedJobs;
    let jobsAtFirstChunk = -1;
    const r = await rawPost(s.port, '/v1/tts/local/flite:en', JSON.stringify({ text: LONG, sample_rate: 16000 }), auth, () => (jobsAtFirstChunk = flite.stats().finishedJobs - jobsBefore));
    assert.equal(r.status, 200);
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.equal(r.headers['content-length'], undefined);
    assert.equal(r.headers['trailer'], 'X-Duration');
    assert.ok(r.chunks > 5, `${r.chunks} chunks`);
    assert.ok(jobsAtFirstChunk >= 0 && jobsAtFirstChunk < segments / 2, `audio started after ${jobsAtFirstChunk} of ${segments} segments`);
    const duration = Number(r.trailers['x-duration']);
    assert.ok(duration > 30, `${duration} s`);
    const h = parseWavHeader(r.body);
    assert.ok(h.kind === 'wav' && h.dataLength === null, 'streaming WAV header (unknown length)');
    assert.ok(Math.abs((r.body.length - 44) / 32000 - duration) <= 0.001);
  });

  it('a client that disconnects mid-stream stops the engine', async () => {
    const flite = s.ttsEngines.get('flite')!;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no audio')), 15000);
      const req = http.request({ host: '127.0.0.1', port: s.port, path: '/v1/tts/local/flite:en', method: 'POST', headers: { 'content-type': 'application/json', ...auth } }, (res) => {
        res.once('data', () => {
          clearTimeout(timer);
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
      req.end(JSON.stringify({ text: `${LONG} ${LONG}`, stream: true, sample_rate: 48000 }));
    });
    await eventually(() => flite.stats().activeJobs === 0, 10_000, 'engine idle');
    const after = flite.stats().finishedJobs;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(flite.stats().finishedJobs, after, 'no further segments are synthesised for the gone client');
  });

  it('errors are JSON: 401, 404 listing models, 400 naming voices, 400 missing text, 400 bad container, 413 too long', async () => {
    const noKey = await fetch(`${base}/v1/tts/local/flite:en`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'x' }) });
    assert.equal(noKey.status, 401);
    // The SLNG error shape of the catalogue: §1.7 `statusCode`, and `status` as before (issue 10).
    assert.deepEqual(Object.keys((await noKey.json()) as object), ['error', 'message', 'statusCode', 'status']);
    const cases: [string, unknown, number, string, RegExp][] = [
      ['/v1/tts/local/nope:1', { text: 'x' }, 404, 'invalid_request', /unknown TTS model/],
      ['/v1/tts/local/flite:en', { text: 'x', voice: 'darth' }, 400, 'config_error', /available voices: kal16, slt, rms, awb, kal/],
      ['/v1/tts/local/flite:en', { voice: 'slt' }, 400, 'invalid_request', /Missing required field: text/],
      ['/v1/tts/local/flite:en', { text: 'x', encoding: 'linear16', container: 'ogg' }, 400, 'config_error', /container "ogg"/],
      ['/v1/tts/local/flite:en', { text: 'x', speed: 0.1 }, 400, 'config_error', /out of range/],
      ['/v1/tts/local/flite:en', { text: 'x'.repeat(5001) }, 413, 'payload_too_large', /5001 characters exceeds the 5000-character limit/],
    ];
    for (const [path, body, status, code, re] of cases) {
      const res = await post(path, body);
      const j = (await res.json()) as { error: string; message: string; status: number };
      assert.equal(res.status, status, `${path} ${JSON.stringify(body).slice(0, 60)}: ${JSON.stringify(j)}`);
      assert.equal(j.error, code);
      assert.equal(j.status, status);
      assert.match(j.message, re);
    }
    const notFound = (await (await post('/v1/tts/local/nope:1', { text: 'x' })).json()) as { models: { code: string }[] };
    assert.ok(notFound.models.some((m) => m.code === 'local/flite:en'));
  });

  it('POST /v1/speak (Deepgram REST): linear16 WAV at 24 kHz by default, dg-* headers, Deepgram-shaped errors', async () => {
    const res = await post('/v1/speak?model=aura-asteria-en', { text: TEXT }, { Authorization: `Token ${s.key}` });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'audio/wav');
    assert.equal(res.headers.get('dg-model-name'), 'aura-asteria-en');
    assert.equal(res.headers.get('dg-char-count'), String(TEXT.length));
    assert.match(res.headers.get('dg-request-id')!, /^[0-9a-f-]{36}$/);
    const h = parseWavHeader(Buffer.from(await res.arrayBuffer()));
    assert.ok(h.kind === 'wav' && h.sampleRate === 24000);
    const raw = await post('/v1/speak?model=kal16&encoding=mulaw&container=none&sample_rate=8000', { text: TEXT }, { Authorization: `Token ${s.key}` });
    assert.match(raw.headers.get('content-type')!, /^audio\/PCMU/);
    const tooLong = await post('/v1/speak', { text: 'a'.repeat(2001) }, { Authorization: `Token ${s.key}` });
    assert.equal(tooLong.status, 413);
    assert.match(((await tooLong.json()) as { err_msg: string }).err_msg, /maximum character limit of 2000/);
    const bad = await post('/v1/speak?model=nobody', { text: 'x' }, { Authorization: `Token ${s.key}` });
    assert.equal(bad.status, 400);
    assert.ok(bad.headers.get('dg-error'));
    assert.deepEqual(Object.keys((await bad.json()) as object).sort(), ['err_code', 'err_msg', 'request_id']);
  });
});
