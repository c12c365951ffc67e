/**
 * Pre-recorded (HTTP) STT end to end: a real gateway on port 0, real HTTP clients (fetch, raw
 * node:http for disconnects, and the official @deepgram/sdk), real speech from ../shared/data
 * (encoded at test time with ffmpeg into os.tmpdir()), the real engine.
 * Routes: POST /v1/listen (Deepgram), POST /v1/stt/{model} (SLNG), POST /v1/bridges/unmute/stt/{model}.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeepgramClient } from '@deepgram/sdk';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { startVoxgate, type RunningVoxgate } from '../src/server/bootstrap.js';
import { eventually, sharedData } from './helpers.js';
import { FixtureDir, ffmpegChildren, type FixtureFormat } from './audio_fixtures.js';

const MODEL = 'local/pocketsphinx:en';
const CLIP = 'asr_en/en_ls_1272-128104-0000.wav'; // "mister quilter is the apostle of the middle classes and we are glad to welcome his gospel"
const CLIP2 = 'asr_en/en_cmu_goforward.wav'; // "go forward ten meters"
const LIMIT = 4 * 1024 * 1024;

interface Server {
  v: RunningVoxgate;
  key: string;
  base: string;
  dir: string;
}

async function start(http: Partial<VoxgateConfig['http']> = {}): Promise<Server> {
  const dir = mkdtempSync(path.join(tmpdir(), 'voxgate-http-test-'));
  const base = loadConfig();
  const config: VoxgateConfig = { ...base, http: { ...base.http, ...http }, engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 4 } } };
  const v = await startVoxgate({ port: 0, host: '127.0.0.1', dataDir: dir, config, logLevel: process.env.VOXGATE_TEST_LOG ?? 'silent' });
  return { v, key: v.keys.create('test').key, base: `http://127.0.0.1:${v.port}`, dir };
}
async function stop(s: Server): Promise<void> {
  await s.v.stop();
  rmSync(s.dir, { recursive: true, force: true });
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A copy with a plain ArrayBuffer (what fetch's and Blob's typings accept). */
const bytes = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

async function post(s: Server, route: string, body: Uint8Array | string | FormData, headers: Record<string, string> = {}, auth = `Token ${s.key}`): Promise<{ status: number; json: Json; headers: Headers }> {
  const res = await fetch(`${s.base}${route}`, { method: 'POST', body: body instanceof Uint8Array ? bytes(body) : body, headers: { ...(auth ? { Authorization: auth } : {}), ...headers } });
  const text = await res.text();
  let json: Json;
  try {
    json = JSON.parse(text) as Json;
  } catch {
    throw new Error(`HTTP ${res.status}: not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, json, headers: res.headers };
}

const transcriptOf = (json: Json, ch = 0): string => json.results.channels[ch].alternatives[0].transcript as string;

describe('pre-recorded STT over HTTP', () => {
  let s: Server;
  let fx: FixtureDir;
  let fileServer: http.Server;
  let filePort = 0;
  before(async () => {
    s = await start({ maxBodyBytes: LIMIT, fetch: { enabled: true, allowHosts: ['127.0.0.1'], timeoutSeconds: 10 } });
    fx = new FixtureDir();
    // A local HTTP server for URL bodies: /clip.ogg, /redirect (same origin), /elsewhere (other host), /missing.
    const ogg = fx.read(fx.encode([CLIP], 'ogg-opus-file'));
    fileServer = http.createServer((req, res) => {
      if (req.url === '/clip.ogg') res.writeHead(200, { 'content-type': 'audio/ogg' }).end(ogg);
      else if (req.url === '/redirect') res.writeHead(302, { location: '/clip.ogg' }).end();
      else if (req.url === '/elsewhere') res.writeHead(302, { location: `http://localhost:${filePort}/clip.ogg` }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => fileServer.listen(0, '127.0.0.1', r));
    filePort = (fileServer.address() as { port: number }).port;
  });
  after(async () => {
    await stop(s);
    fx.cleanup();
    fileServer.close();
  });

  it('POST /v1/listen with a WAV body → Deepgram pre-recorded shape, dg-request-id = metadata.request_id', async () => {
    const wav = readFileSync(sharedData(CLIP));
    const r = await post(s, '/v1/listen?model=nova-3', wav, { 'Content-Type': 'audio/wav' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const m = r.json.metadata;
    assert.equal(r.headers.get('dg-request-id'), m.request_id);
    assert.match(m.request_id, /^[0-9a-f-]{36}$/);
    assert.equal(m.transaction_key, 'deprecated');
    assert.equal(m.sha256, createHash('sha256').update(wav).digest('hex'));
    assert.ok(Math.abs(m.duration - 5.855) < 0.05, `duration ${m.duration}`);
    assert.equal(m.channels, 1);
    assert.equal(m.models.length, 1);
    assert.equal(m.model_info[m.models[0]].name, MODEL);
    assert.ok(!Number.isNaN(Date.parse(m.created)));
    assert.equal(r.json.results.channels.length, 1);
    const alt = r.json.results.channels[0].alternatives[0];
    assert.match(alt.transcript, /middle/);
    assert.match(alt.transcript, /gospel/);
    assert.ok(alt.confidence > 0 && alt.confidence <= 1);
    assert.ok(alt.words.length >= 8);
    for (const w of alt.words) {
      assert.ok(w.end >= w.start && w.start >= 0 && w.end <= 5.9, JSON.stringify(w));
      assert.ok(!('punctuated_word' in w), 'no punctuated_word without formatting');
    }
    assert.equal(r.json.results.utterances, undefined, 'utterances only when asked');
  });

  const formats: [FixtureFormat, string][] = [
    ['ogg-opus-file', 'audio/ogg'],
    ['webm', 'audio/webm'],
    ['mp3', 'audio/mpeg'],
    ['flac', 'audio/flac'],
    ['m4a', 'audio/mp4'],
    ['m4a-faststart', 'audio/mp4'],
  ];
  for (const [format, type] of formats) {
    it(`POST /v1/listen with ${format} (${type}) → transcript`, async () => {
      const r = await post(s, '/v1/listen', fx.read(fx.encode([CLIP], format)), { 'Content-Type': type });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.match(transcriptOf(r.json), /gospel/);
      assert.match(transcriptOf(r.json), /middle/);
    });
  }

  it('headerless linear16 as application/octet-stream with encoding/sample_rate', async () => {
    const wav = readFileSync(sharedData(CLIP));
    const pcm = wav.subarray(44);
    const r = await post(s, '/v1/listen?encoding=linear16&sample_rate=16000', pcm, { 'Content-Type': 'application/octet-stream' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.match(transcriptOf(r.json), /gospel/);
  });

  it('punctuate, utterances and paragraphs on two sentences with a pause', async () => {
    const body = fx.read(fx.encode([CLIP2, CLIP], 'flac', { gapSeconds: 2 }));
    const r = await post(s, '/v1/listen?punctuate=true&utterances=true&paragraphs=true&utt_split=1', body, { 'Content-Type': 'audio/flac' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const alt = r.json.results.channels[0].alternatives[0];
    assert.match(alt.transcript, /^[A-Z]/, 'sentence case');
    assert.match(alt.transcript, /[.?!]/, 'sentence punctuation');
    assert.ok(alt.words.every((w: Json) => typeof w.punctuated_word === 'string'));
    const utts = r.json.results.utterances as Json[];
    assert.ok(utts.length >= 2, JSON.stringify(utts.map((u) => u.transcript)));
    assert.match(utts[0]!.transcript, /forward/i);
    assert.match(utts.at(-1)!.transcript, /gospel/i);
    for (const u of utts) {
      assert.equal(u.channel, 0);
      assert.match(u.id, /^[0-9a-f-]{36}$/);
      assert.ok(u.end > u.start && u.words.length > 0);
    }
    assert.ok(utts[1]!.start - utts[0]!.end >= 1, 'split at the 2 s pause');
    const paras = alt.paragraphs;
    assert.ok(paras.paragraphs.length >= 2, JSON.stringify(paras));
    assert.ok(paras.transcript.startsWith('\n'));
    const sentences = paras.paragraphs.flatMap((p: Json) => p.sentences as Json[]);
    assert.match(sentences[0].text, /forward/i);
    assert.equal(
      paras.paragraphs.reduce((n: number, p: Json) => n + p.num_words, 0),
      alt.words.length,
    );
  });

  it('multichannel=true on a stereo WAV → one transcript per channel', async () => {
    const r = await post(s, '/v1/listen?multichannel=true', readFileSync(sharedData('diarization/librispeech_stereo_2spk.wav')), { 'Content-Type': 'audio/wav' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.metadata.channels, 2);
    assert.equal(r.json.results.channels.length, 2);
    assert.match(transcriptOf(r.json, 0), /complaint|wizard|curtain|confused|vanished/);
    assert.doesNotMatch(transcriptOf(r.json, 0), /horizon|distant/);
    assert.match(transcriptOf(r.json, 1), /horizon|distant|extremely/);
  });

  it('POST /v1/stt/{model}: multipart audio with option fields before and after it', async () => {
    const form = new FormData();
    form.append('language', 'en');
    form.append('audio', new Blob([bytes(fx.read(fx.encode([CLIP], 'mp3')))], { type: 'audio/mpeg' }), 'clip.mp3');
    form.append('smart_format', 'true');
    const r = await post(s, `/v1/stt/${MODEL}`, form, {}, `Bearer ${s.key}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.headers.get('dg-request-id'), r.json.metadata.request_id);
    const alt = r.json.results.channels[0].alternatives[0];
    assert.match(alt.transcript, /gospel/i);
    assert.ok(alt.words.every((w: Json) => typeof w.punctuated_word === 'string'), 'smart_format after the audio still formats');
  });

  it('POST /v1/stt/{model}: a field that changes decoding after the audio → 400 saying so', async () => {
    const form = new FormData();
    form.append('audio', new Blob([bytes(readFileSync(sharedData(CLIP2)))]), 'a.wav');
    form.append('multichannel', 'true');
    const r = await post(s, `/v1/stt/${MODEL}`, form, {}, `Bearer ${s.key}`);
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'invalid_request');
    assert.match(r.json.message, /precede/);
    assert.equal(r.json.request_id, r.headers.get('dg-request-id'));
  });

  it('POST /v1/stt/{model}: raw body and JSON base64 audio', async () => {
    const wav = readFileSync(sharedData(CLIP2));
    const raw = await post(s, `/v1/stt/${MODEL}`, wav, { 'Content-Type': 'audio/wav' }, `Bearer ${s.key}`);
    assert.equal(raw.status, 200, JSON.stringify(raw.json));
    assert.match(transcriptOf(raw.json), /forward/);
    const json = await post(s, `/v1/stt/${MODEL}`, JSON.stringify({ audio: wav.toString('base64'), language: 'en' }), { 'Content-Type': 'application/json' }, `Bearer ${s.key}`);
    assert.equal(json.status, 200, JSON.stringify(json.json));
    assert.equal(transcriptOf(json.json), transcriptOf(raw.json));
  });

  it('POST /v1/bridges/unmute/stt/{model}: multipart → {"type":"transcription",…}', async () => {
    const form = new FormData();
    form.append('language', 'en');
    form.append('encoding', 'opus');
    form.append('audio', new Blob([bytes(fx.read(fx.encode([CLIP], 'webm')))]), 'a.webm');
    const r = await post(s, `/v1/bridges/unmute/stt/${MODEL}`, form, {}, `Bearer ${s.key}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(Object.keys(r.json).sort(), ['alternatives', 'channel', 'is_final', 'language', 'type']);
    assert.equal(r.json.type, 'transcription');
    assert.equal(r.json.is_final, true);
    assert.equal(r.json.channel, 0);
    assert.equal(r.json.language, 'en');
    assert.match(r.json.alternatives[0].transcript, /gospel/);
    assert.ok(r.json.alternatives[0].confidence > 0);
    assert.ok(r.headers.get('dg-request-id'));
  });

  it('JSON {"url"}: fetched from an allowlisted local server, same-origin redirects followed', async () => {
    for (const p of ['/clip.ogg', '/redirect']) {
      const r = await post(s, '/v1/listen', JSON.stringify({ url: `http://127.0.0.1:${filePort}${p}` }), { 'Content-Type': 'application/json' });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.match(transcriptOf(r.json), /gospel/);
    }
    const form = new FormData();
    form.append('url', `http://127.0.0.1:${filePort}/clip.ogg`);
    const b = await post(s, `/v1/bridges/unmute/stt/${MODEL}`, form, {}, `Bearer ${s.key}`);
    assert.equal(b.status, 200, JSON.stringify(b.json));
    assert.match(b.json.alternatives[0].transcript, /gospel/);
  });

  it('JSON {"url"}: cross-host redirect, 404, non-allowlisted host and scheme → 400 with a reason', async () => {
    const cases: [string, RegExp][] = [
      [`http://127.0.0.1:${filePort}/elsewhere`, /another host/],
      [`http://127.0.0.1:${filePort}/missing`, /HTTP 404/],
      [`http://localhost:${filePort}/clip.ogg`, /allowlist/],
      [`http://10.0.0.1/clip.ogg`, /allowlist/],
      ['file:///etc/passwd', /allowlist|http and https/],
      ['not a url', /not a valid URL/],
    ];
    for (const [url, why] of cases) {
      const r = await post(s, '/v1/listen', JSON.stringify({ url }), { 'Content-Type': 'application/json' });
      assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.err_msg, why, url);
      assert.equal(r.json.metadata.request_id, r.json.request_id);
    }
  });

  it('auth: no key / bad key → 401 JSON with dg-request-id', async () => {
    const wav = readFileSync(sharedData(CLIP2));
    for (const auth of ['', 'Token vgk_not_a_key']) {
      const r = await post(s, '/v1/listen', wav, { 'Content-Type': 'audio/wav' }, auth);
      assert.equal(r.status, 401);
      assert.equal(r.json.err_code, 'INVALID_AUTH'); // Deepgram's own err_code (issue 10)
      assert.ok(r.headers.get('dg-error'));
      assert.equal(r.headers.get('dg-request-id'), r.json.request_id);
      const sl = await post(s, `/v1/stt/${MODEL}`, wav, { 'Content-Type': 'audio/wav' }, auth);
      assert.equal(sl.status, 401);
      assert.equal(sl.json.error, 'auth_error');
      assert.equal(sl.json.statusCode, 401);
    }
  });

  it('invalid options → 400, unknown model → 404 listing the models, unknown params ignored', async () => {
    const wav = readFileSync(sharedData(CLIP2));
    for (const q of ['encoding=linear16&sample_rate=7', 'encoding=foo', 'punctuate=maybe', 'language=xx', 'model=not-a-model']) {
      const r = await post(s, `/v1/listen?${q}`, wav, { 'Content-Type': 'audio/wav' });
      assert.equal(r.status, 400, q);
      assert.equal(r.json.err_code, 'INVALID_QUERY_PARAMETER', q);
    }
    const nf = await post(s, '/v1/stt/local/nope:en', wav, { 'Content-Type': 'audio/wav' }, `Bearer ${s.key}`);
    assert.equal(nf.status, 404);
    assert.match(nf.json.message, /local\/pocketsphinx:en/);
    const ok = await post(s, '/v1/listen?some_future_param=1&keyterm=x', wav, { 'Content-Type': 'audio/wav' });
    assert.equal(ok.status, 200);
  });

  it('not audio, random bytes, truncated files, empty body → 400 invalid_audio with a clear message', async () => {
    const flac = fx.read(fx.encode([CLIP], 'flac'));
    const cases: [Uint8Array, string, RegExp][] = [
      [Buffer.from('<html><body>definitely not audio</body></html>'.repeat(10)), 'audio/wav', /unrecognised audio format/],
      [randomBytes(50000), 'application/octet-stream', /unrecognised audio format/],
      [flac.subarray(0, flac.length >> 1), 'audio/flac', /truncated or corrupt/],
      [readFileSync(sharedData(CLIP)).subarray(0, 60000), 'audio/wav', /WAV file is truncated/],
      [new Uint8Array(0), 'audio/wav', /no audio/],
    ];
    for (const [body, type, why] of cases) {
      const r = await post(s, '/v1/listen', body, { 'Content-Type': type });
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.err_code, 'Bad Request'); // Deepgram: "failed to process audio: corrupt or unsupported data"
      assert.match(r.json.err_msg, why);
    }
    const opus = await post(s, '/v1/listen?encoding=opus', randomBytes(5000), { 'Content-Type': 'application/octet-stream' });
    assert.equal(opus.status, 400);
    assert.match(opus.json.err_msg, /does not look like opus/);
    await eventually(() => ffmpegChildren().length === 0, 5000, 'no ffmpeg left');
  });

  it('over http.maxBodyBytes → 413 JSON (declared length refused before reading; chunked body cut off)', async () => {
    const big = Buffer.concat([readFileSync(sharedData(CLIP)), Buffer.alloc(LIMIT)]);
    const r = await post(s, '/v1/listen', big, { 'Content-Type': 'audio/wav' });
    assert.equal(r.status, 413);
    assert.equal(r.json.err_code, 'PAYLOAD_TOO_LARGE');
    assert.match(r.json.err_msg, /limit/);
    // Chunked (no Content-Length): counted while streaming.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${s.base}/v1/listen?encoding=linear16&sample_rate=16000`, { method: 'POST', headers: { Authorization: `Token ${s.key}`, 'Content-Type': 'application/octet-stream' } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      const silenceChunk = Buffer.alloc(256 * 1024);
      let sent = 0;
      const pump = (): void => {
        while (sent < LIMIT + 1024 * 1024) {
          sent += silenceChunk.length;
          if (!req.write(silenceChunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    assert.equal(chunked.status, 413, chunked.body);
    assert.equal(JSON.parse(chunked.body).err_code, 'PAYLOAD_TOO_LARGE');
    await eventually(() => s.v.engines.get('pocketsphinx')!.stats().activeStreams === 0, 5000, 'engine streams released');
  });

  it('a client disconnecting mid-upload frees everything (ffmpeg killed, engine stream aborted)', async () => {
    const webm = fx.read(fx.encode([CLIP, CLIP, CLIP], 'webm'));
    const req = http.request(`${s.base}/v1/listen`, { method: 'POST', headers: { Authorization: `Token ${s.key}`, 'Content-Type': 'audio/webm' } });
    req.on('error', () => {});
    req.write(webm.subarray(0, webm.length >> 1));
    await eventually(() => ffmpegChildren().length === 1 && s.v.engines.get('pocketsphinx')!.stats().activeStreams >= 1, 10000, 'the upload to be decoding');
    req.destroy();
    await eventually(() => ffmpegChildren().length === 0, 5000, 'ffmpeg to be killed');
    await eventually(() => s.v.engines.get('pocketsphinx')!.stats().activeStreams === 0, 5000, 'the engine stream to be aborted');
  });

  it('official @deepgram/sdk: listen.v1.media.transcribeFile and transcribeUrl against voxgate', async () => {
    const client = new DeepgramClient({ apiKey: s.key, environment: { base: s.base, production: s.base.replace('http', 'ws'), agent: s.base.replace('http', 'ws'), agentRest: s.base } });
    const res = await client.listen.v1.media.transcribeFile(fx.read(fx.encode([CLIP], 'mp3')), { model: 'nova-3', smart_format: true, punctuate: true });
    const body = res as unknown as Json;
    assert.ok(body.metadata?.request_id, JSON.stringify(body).slice(0, 300));
    const alt = body.results.channels[0].alternatives[0];
    assert.match(alt.transcript, /gospel/i);
    assert.match(alt.transcript, /middle/i);
    assert.ok(alt.words[0].punctuated_word);
    const byUrl = (await client.listen.v1.media.transcribeUrl({ url: `http://127.0.0.1:${filePort}/clip.ogg` })) as unknown as Json;
    assert.match(byUrl.results.channels[0].alternatives[0].transcript, /gospel/);
  });
});

describe('pre-recorded STT with the default configuration', () => {
  let d: Server;
  before(async () => {
    d = await start();
  });
  after(async () => {
    await stop(d);
  });

  it('URL fetching is off by default: {"url"} → 400 explaining how to enable it', async () => {
    assert.equal(d.v.config.http.fetch.enabled, false);
    assert.equal(d.v.config.http.maxBodyBytes, 512 * 1024 * 1024);
    const r = await post(d, '/v1/listen', JSON.stringify({ url: 'http://127.0.0.1:9/clip.wav' }), { 'Content-Type': 'application/json' });
    assert.equal(r.status, 400);
    assert.match(r.json.err_msg, /http\.fetch\.enabled/);
  });

  it('malformed JSON → 400 in the route\'s error shape with a request id', async () => {
    const r = await post(d, '/v1/listen', '{"url": ', { 'Content-Type': 'application/json' });
    assert.equal(r.status, 400);
    assert.equal(r.json.err_code, 'Bad Request'); // Deepgram's code for a body it cannot parse
    assert.equal(r.headers.get('dg-request-id'), r.json.request_id);
  });
});
