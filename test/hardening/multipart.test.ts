/**
 * issue 14 #3: multipart cannot bypass `http.maxBodyBytes`; field and part counts are bounded; every
 * refusal is 413/400 in the route's error shape, never 500.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { sharedData } from '../paths.js';
import { RawHttp, startHardServer, type HardServer } from './harness.js';

const STT = 'local/pocketsphinx:en';
const CLIP = 'asr_en/en_cmu_goforward.wav'; // "go forward ten meters"
const LIMIT = 1024 * 1024;

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

async function postForm(s: HardServer, route: string, form: FormData): Promise<Reply> {
  const res = await fetch(`${s.url}${route}`, { method: 'POST', headers: { Authorization: `Bearer ${s.key}` }, body: form });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
}

describe('hardening: multipart limits', { timeout: 120_000 }, () => {
  let s: HardServer;
  before(async () => {
    s = await startHardServer({ http: { maxBodyBytes: LIMIT } });
  });
  after(async () => {
    await s.cleanup();
  });

  it('8 text fields of 2 MB under a 1 MB limit: 413 payload_too_large (SLNG shape)', async () => {
    const form = new FormData();
    for (let i = 0; i < 8; i++) form.append(`f${i}`, 'a'.repeat(2 * 1024 * 1024));
    form.append('audio', new Blob([readFileSync(sharedData(CLIP))]), 'a.wav');
    const r = await postForm(s, `/v1/stt/${STT}`, form);
    assert.equal(r.status, 413, JSON.stringify(r.body));
    assert.equal(r.body.error, 'payload_too_large');
    assert.equal(r.body.statusCode, 413);
  });

  it('a chunked form (no Content-Length) over the limit is cut off at the limit: 413', async () => {
    const c = new RawHttp(s.port);
    await c.connected;
    c.head('POST', `/v1/stt/${STT}`, { Authorization: `Bearer ${s.key}`, 'Content-Type': 'multipart/form-data; boundary=XX', 'Transfer-Encoding': 'chunked' });
    const field = `--XX\r\nContent-Disposition: form-data; name="x"\r\n\r\n${'a'.repeat(256 * 1024)}\r\n`;
    for (let i = 0; i < 40 && !c.answered && !c.closed; i++) {
      const b = Buffer.from(field);
      c.body(`${b.length.toString(16)}\r\n`);
      c.body(b);
      c.body('\r\n');
      // Like a real client: the next chunk once this one is handed to the kernel.
      await new Promise<void>((r) => {
        if (c.socket.writableLength === 0) return setImmediate(r);
        c.socket.once('drain', () => r()).once('close', () => r());
        setTimeout(r, 2000).unref(); // a server that stopped reading must not hang the test
      });
    }
    const r = await c.response();
    assert.equal(r.status, 413, r.body);
    assert.ok(r.sentBeforeAnswer < 8 * 1024 * 1024, `answered after ${r.sentBeforeAnswer} bytes`);
    c.destroy();
  });

  it('500 fields: 413 in the route shape, not 500', async () => {
    const form = new FormData();
    for (let i = 0; i < 500; i++) form.append(`f${i}`, 'x');
    const r = await postForm(s, `/v1/stt/${STT}`, form);
    assert.ok(r.status === 413 || r.status === 400, `got ${r.status} ${JSON.stringify(r.body)}`);
    assert.match(String(r.body.message), /too many/);
  });

  it('300 file parts: 4xx in the route shape, not 500 (also on /v1/listen, Deepgram shape)', async () => {
    // A real first file (it is transcribed), then 299 more: the file-count limit is hit after it.
    const clip = readFileSync(sharedData(CLIP));
    const form = new FormData();
    for (let i = 0; i < 300; i++) form.append('audio', new Blob([i === 0 ? clip : Buffer.alloc(16)]), `a${i}.wav`);
    const r = await postForm(s, `/v1/stt/${STT}`, form);
    assert.ok(r.status === 413 || r.status === 400, `got ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, r.status === 413 ? 'payload_too_large' : 'invalid_request');
    const form2 = new FormData();
    for (let i = 0; i < 300; i++) form2.append('audio', new Blob([i === 0 ? clip : Buffer.alloc(16)]), `a${i}.wav`);
    const r2 = await postForm(s, '/v1/listen', form2);
    assert.ok(r2.status === 413 || r2.status === 400, `got ${r2.status} ${JSON.stringify(r2.body)}`);
    assert.match(String(r2.body.err_code), /^(PAYLOAD_TOO_LARGE|Bad Request)$/);
  });

  it('an option field over http.maxFieldBytes: 413 naming the field', async () => {
    const form = new FormData();
    form.append('language', 'e'.repeat(100 * 1024));
    form.append('audio', new Blob([readFileSync(sharedData(CLIP))]), 'a.wav');
    const r = await postForm(s, `/v1/stt/${STT}`, form);
    assert.equal(r.status, 413, JSON.stringify(r.body));
    assert.match(String(r.body.message), /"language"/);
  });

  it('a form within the limits still works', async () => {
    const form = new FormData();
    form.append('language', 'en');
    form.append('audio', new Blob([readFileSync(sharedData(CLIP))]), 'a.wav');
    const r = await postForm(s, `/v1/stt/${STT}`, form);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const results = r.body.results as { channels: { alternatives: { transcript: string }[] }[] };
    assert.match(results.channels[0]!.alternatives[0]!.transcript, /forward/);
  });
});
