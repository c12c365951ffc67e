/**
 * Pre-recorded transcription over HTTP (issue #3 "Pre-recorded (HTTP)"; shared/spec/protocols.md §1.7,
 * §2.2): a real gateway on port 0, real uploads of real speech, the real engine.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config/config.js';
import { eventually, sharedData, startTestServer, type TestServer } from './helpers.js';

const GOFORWARD = sharedData('asr_en/en_cmu_goforward.wav');
const QUILTER = sharedData('asr_en/en_ls_1272-128104-0000.wav');

type DgResponse = {
  metadata: { request_id: string; duration: number; channels: number; sha256: string; models: string[] };
  results: {
    channels: { alternatives: { transcript: string; confidence: number; words: { word: string; start: number; end: number; punctuated_word?: string }[]; paragraphs?: { transcript: string } }[] }[];
    utterances?: { start: number; end: number; transcript: string; channel: number }[];
  };
};

describe('pre-recorded HTTP transcription', () => {
  let s: TestServer;
  let base: string;
  before(async () => {
    const cfg = loadConfig();
    s = await startTestServer({}, {}, { http: { ...cfg.http, maxBodyBytes: 2_000_000, fetch: { enabled: true, allowHosts: ['127.0.0.1'], timeoutSeconds: 5 } } });
    base = `http://127.0.0.1:${s.port}`;
  });
  after(async () => {
    await s.cleanup();
  });
  const auth = () => ({ Authorization: `Token ${s.key}` });

  it('POST /v1/listen with a WAV body returns the Deepgram pre-recorded shape with words, utterances and paragraphs', async () => {
    const wav = readFileSync(QUILTER);
    const res = await fetch(`${base}/v1/listen?model=nova-3&smart_format=true&utterances=true&paragraphs=true`, { method: 'POST', headers: { ...auth(), 'Content-Type': 'audio/wav' }, body: wav });
    assert.equal(res.status, 200);
    const body = (await res.json()) as DgResponse;
    assert.equal(res.headers.get('dg-request-id'), body.metadata.request_id);
    assert.ok(Math.abs(body.metadata.duration - 5.855) < 0.05, String(body.metadata.duration));
    assert.equal(body.metadata.channels, 1);
    assert.match(body.metadata.sha256, /^[0-9a-f]{64}$/);
    const alt = body.results.channels[0]!.alternatives[0]!;
    assert.match(alt.transcript.toLowerCase(), /class|glad|welcome|apostle/);
    assert.match(alt.transcript, /^[A-Z]/);
    assert.ok(alt.words.length > 5 && alt.words.every((w) => w.end >= w.start && typeof w.punctuated_word === 'string'));
    assert.ok(body.results.utterances!.length >= 1);
    assert.ok(alt.paragraphs!.transcript.startsWith('\n'));
  });

  it('POST /v1/stt/{model} with multipart "audio" and the bridge route', async () => {
    const form = new FormData();
    form.append('language', 'en');
    form.append('audio', new Blob([readFileSync(GOFORWARD)], { type: 'audio/wav' }), 'goforward.wav');
    const res = await fetch(`${base}/v1/stt/local/pocketsphinx:en`, { method: 'POST', headers: { Authorization: `Bearer ${s.key}` }, body: form });
    assert.equal(res.status, 200);
    const body = (await res.json()) as DgResponse;
    assert.match(body.results.channels[0]!.alternatives[0]!.transcript, /forward/);

    const form2 = new FormData();
    form2.append('audio', new Blob([readFileSync(GOFORWARD)], { type: 'audio/wav' }), 'goforward.wav');
    const br = await fetch(`${base}/v1/bridges/unmute/stt/local/pocketsphinx:en`, { method: 'POST', headers: { Authorization: `Bearer ${s.key}` }, body: form2 });
    assert.equal(br.status, 200);
    const b = (await br.json()) as { type: string; is_final: boolean; alternatives: { transcript: string; confidence: number }[]; channel: number; language: string };
    assert.equal(b.type, 'transcription');
    assert.equal(b.is_final, true);
    assert.equal(b.channel, 0);
    assert.equal(b.language, 'en');
    assert.match(b.alternatives[0]!.transcript, /forward/);
  });

  it('raw linear16 with encoding/sample_rate, and multichannel gives one channel result per channel', async () => {
    const stereo = readFileSync(sharedData('diarization/librispeech_stereo_2spk.wav'));
    const res = await fetch(`${base}/v1/listen?multichannel=true&channels=2`, { method: 'POST', headers: { ...auth(), 'Content-Type': 'audio/wav' }, body: stereo });
    assert.equal(res.status, 200);
    const body = (await res.json()) as DgResponse;
    assert.equal(body.results.channels.length, 2);
    assert.equal(body.metadata.channels, 2);
    assert.match(body.results.channels[0]!.alternatives[0]!.transcript, /complaint|wizard|curtain|confused|vanished/);
    assert.match(body.results.channels[1]!.alternatives[0]!.transcript, /horizon|distant|extremely/);

    const pcm = readFileSync(GOFORWARD).subarray(44);
    const raw = await fetch(`${base}/v1/listen?encoding=linear16&sample_rate=16000`, { method: 'POST', headers: { ...auth(), 'Content-Type': 'application/octet-stream' }, body: pcm });
    assert.equal(raw.status, 200);
    assert.match(((await raw.json()) as DgResponse).results.channels[0]!.alternatives[0]!.transcript, /forward/);
  });

  it('errors: 401 bad key, 404 unknown model, 400 bad query, 413 over the limit — JSON with the request id', async () => {
    const wav = readFileSync(GOFORWARD);
    const cases: [string, RequestInit, number, string][] = [
      ['/v1/listen', { headers: { Authorization: 'Token vgk_nope_x', 'Content-Type': 'audio/wav' }, body: wav }, 401, 'auth_error'],
      ['/v1/stt/local/nope:en', { headers: { ...auth(), 'Content-Type': 'audio/wav' }, body: wav }, 404, 'not_found'],
      ['/v1/listen?sample_rate=7&encoding=linear16', { headers: { ...auth(), 'Content-Type': 'audio/wav' }, body: wav }, 400, 'config_error'],
      ['/v1/listen', { headers: { ...auth(), 'Content-Type': 'audio/wav' }, body: Buffer.alloc(2_100_000) }, 413, 'payload_too_large'],
      ['/v1/listen', { headers: { ...auth(), 'Content-Type': 'application/json' }, body: JSON.stringify({ nourl: 1 }) }, 400, 'invalid_request'],
      ['/v1/listen', { headers: { ...auth(), 'Content-Type': 'audio/wav' }, body: Buffer.alloc(0) }, 400, 'invalid_audio'],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await fetch(base + path, { method: 'POST', ...init });
      assert.equal(res.status, status, path);
      const body = (await res.json()) as Record<string, string>;
      assert.equal(body.err_code ?? body.error, code, JSON.stringify(body));
      assert.equal(res.headers.get('dg-request-id'), body.request_id);
    }
  });

  it('fetches {"url"} only from allowlisted hosts, without following redirects', async () => {
    const wav = readFileSync(GOFORWARD);
    const files = http.createServer((req, res) => {
      if (req.url === '/a.wav') res.writeHead(200, { 'Content-Type': 'audio/wav' }).end(wav);
      else res.writeHead(302, { Location: 'http://127.0.0.1/a.wav' }).end();
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    const port = (files.address() as AddressInfo).port;
    try {
      const post = (url: string) => fetch(`${base}/v1/listen`, { method: 'POST', headers: { ...auth(), 'Content-Type': 'application/json' }, body: JSON.stringify({ url }) });
      const ok = await post(`http://127.0.0.1:${port}/a.wav`);
      assert.equal(ok.status, 200);
      assert.match(((await ok.json()) as DgResponse).results.channels[0]!.alternatives[0]!.transcript, /forward/);
      const redirect = await post(`http://127.0.0.1:${port}/elsewhere`);
      assert.equal(redirect.status, 400);
      assert.match(((await redirect.json()) as { err_msg: string }).err_msg, /redirect/);
      const notListed = await post(`http://localhost:${port}/a.wav`);
      assert.equal(notListed.status, 400);
      assert.match(((await notListed.json()) as { err_msg: string }).err_msg, /allowlist/);
      const scheme = await post(`file:///etc/passwd`);
      assert.equal(scheme.status, 400);
    } finally {
      files.close();
    }
  });

  it('a client that disconnects mid-upload frees its decoder and engine stream', async () => {
    const wav = readFileSync(QUILTER);
    const busy = () => (s.engines.get('pocketsphinx')!.stats().activeStreams);
    await new Promise<void>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: s.port, path: '/v1/listen', method: 'POST', headers: { ...auth(), 'Content-Type': 'audio/wav', 'Content-Length': String(wav.length) } });
      req.on('error', () => resolve());
      req.write(wav.subarray(0, wav.length / 2));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 400);
    });
    await eventually(() => busy() === 0, 5000, 'engine streams released');
  });
});
