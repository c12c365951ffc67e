/**
 * issue 14 #2: slow readers. A stalled body is answered 408 and its connection closed; an upload
 * holds no decoder until its audio arrives; one address cannot hold more than
 * `http.maxConnectionsPerIp` connections (refused at accept, before any byte is parsed).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { sharedData } from '../paths.js';
import { RawHttp, startHardServer, WsProbe, type HardServer } from './harness.js';

const STT = 'local/pocketsphinx:en';
const CLIP = 'asr_en/en_cmu_goforward.wav'; // "go forward ten meters"

describe('hardening: stalled bodies', { timeout: 120_000 }, () => {
  let s: HardServer;
  before(async () => {
    s = await startHardServer({ http: { bodyIdleTimeoutMs: 400 }, maxDecoders: 2 });
  });
  after(async () => {
    await s.cleanup();
  });

  const stalls: [string, string, Record<string, string | number>, string][] = [
    ['raw audio, nothing sent', '/v1/listen', { 'Content-Type': 'audio/wav', 'Content-Length': 1_000_000 }, ''],
    ['raw audio, stops after the WAV header', `/v1/stt/${STT}`, { 'Content-Type': 'audio/wav', 'Content-Length': 1_000_000 }, 'wav'],
    ['multipart, stops inside the form', `/v1/stt/${STT}`, { 'Content-Type': 'multipart/form-data; boundary=XX', 'Content-Length': 1_000_000 }, '--XX\r\nContent-Disposition: form-data; name="language"\r\n\r\nen\r\n--XX\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'],
    ['JSON, stops half-way', `/v1/tts/local/flite:en`, { 'Content-Type': 'application/json', 'Content-Length': 4000 }, '{"text": "hello'],
  ];
  for (const [what, route, headers, prefix] of stalls) {
    it(`${what}: 408 idle_timeout_exceeded and the connection closed`, async () => {
      const c = new RawHttp(s.port);
      await c.connected;
      c.head('POST', route, { Authorization: `Bearer ${s.key}`, ...headers });
      if (prefix === 'wav') c.body(readFileSync(sharedData(CLIP)).subarray(0, 44));
      else if (prefix) c.body(prefix);
      const r = await c.response(15_000);
      assert.equal(r.status, 408, `got ${r.status} ${r.body}`);
      // SLNG routes: idle_timeout_exceeded; Deepgram's /v1/listen: its err_code style (util/errors.ts catalogue).
      assert.match(r.body, route.startsWith('/v1/listen') ? /"err_code":"REQUEST_TIMEOUT"/ : /idle_timeout_exceeded/);
      assert.ok(await c.waitClose(5000), 'connection closed after the 408');
      c.destroy();
    });
  }

  it('stalled uploads hold no decoder: with every upload stalled before its audio, a new session still starts', async () => {
    // maxDecoders is 2; three uploads announce audio and send none of it.
    const stalled = [0, 1, 2].map(() => new RawHttp(s.port));
    for (const c of stalled) {
      await c.connected;
      c.head('POST', `/v1/stt/${STT}`, { Authorization: `Bearer ${s.key}`, 'Content-Type': 'audio/wav', 'Content-Length': 1_000_000 });
    }
    // Make sure the server has taken the three requests in: a request on each connection's heels.
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    await new Promise((r) => setTimeout(r, 150));
    const status = (await (await fetch(`${s.url}/v1/status`, { headers: { Authorization: `Bearer ${s.key}` } })).json()) as { engines: { pocketsphinx: { busyDecoders: number } } };
    assert.equal(status.engines.pocketsphinx.busyDecoders, 0, 'no decoder is held by an upload whose audio has not arrived');
    const ws = new WsProbe(`${s.wsUrl}/v1/stt/${STT}`, s.key);
    await ws.opened;
    ws.ws.send(JSON.stringify({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16' } }));
    const first = await ws.waitFor((m) => m.type === 'ready' || m.type === 'error');
    assert.equal(first.type, 'ready', JSON.stringify(first));
    ws.ws.close();
    for (const c of stalled) c.destroy();
  });
});

describe('hardening: connections per address', { timeout: 60_000 }, () => {
  let s: HardServer;
  before(async () => {
    s = await startHardServer({ http: { maxConnectionsPerIp: 4 } });
  });
  after(async () => {
    await s.cleanup();
  });

  it('the connection over http.maxConnectionsPerIp is closed at accept, before any byte is read', async () => {
    const held: RawHttp[] = [];
    for (let i = 0; i < 4; i++) {
      const c = new RawHttp(s.port);
      await c.connected;
      // A complete keep-alive request on each: once answered, the server has surely counted it.
      c.head('GET', '/healthz', {});
      const r = await c.response();
      assert.equal(r.status, 200);
      held.push(c);
    }
    const extra = new RawHttp(s.port);
    await extra.connected.catch(() => {});
    extra.head('GET', '/healthz', {});
    const r = await extra.response();
    assert.equal(r.status, 0, 'no answer: closed without parsing the request');
    assert.ok(extra.closed);
    // Freeing one lets the address in again.
    held.pop()!.destroy();
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = await fetch(`${s.url}/healthz`, { headers: { Connection: 'close' } }).then((res) => res.status === 200, () => false);
      if (!ok) await new Promise((r2) => setTimeout(r2, 20));
    }
    assert.ok(ok, 'a freed slot is usable again');
    for (const c of held) c.destroy();
  });
});
