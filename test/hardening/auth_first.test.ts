/**
 * issue 14 #1: no one without a key can make the server read or parse a body; JSON is bounded in
 * size and shape before it is parsed, on HTTP and on WebSocket text frames.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nestedArrays, RawHttp, startHardServer, WsProbe, type HardServer } from './harness.js';

const STT = 'local/pocketsphinx:en';
const TTS = 'local/flite:en';
/** Every HTTP route that needs a key and takes a body. */
const ROUTES = ['/v1/listen', `/v1/stt/${STT}`, `/v1/bridges/unmute/stt/${STT}`, `/v1/tts/${TTS}`, `/v1/bridges/unmute/tts/${TTS}`, '/v1/speak?model=aura-asteria-en'];

describe('hardening: authentication before the body, bounded JSON', { timeout: 120_000 }, () => {
  let s: HardServer;
  before(async () => {
    s = await startHardServer();
  });
  after(async () => {
    await s.cleanup();
  });

  for (const route of ROUTES) {
    it(`POST ${route.split('?')[0]} without a key: 401 after the headers, the 44 MB body is never read`, async () => {
      const c = new RawHttp(s.port);
      await c.connected;
      // Announce a 44 MB nested-array JSON body and send only its first 64 KiB.
      c.head('POST', route, { 'Content-Type': 'application/json', 'Content-Length': 44 * 1024 * 1024 });
      c.body('['.repeat(64 * 1024));
      const r = await c.response();
      assert.equal(r.status, 401, `got ${r.status} ${r.body}`);
      assert.ok(r.sentBeforeAnswer <= 64 * 1024, 'answered before the body was sent');
      assert.match(r.body, /auth_error|INVALID_AUTH/);
      assert.ok(await c.waitClose(), 'the connection is closed, so the rest of the body is never parsed');
      c.destroy();
    });
  }

  it('an invalid key is refused the same way (401 before the body)', async () => {
    const c = new RawHttp(s.port);
    await c.connected;
    c.head('POST', `/v1/stt/${STT}`, { Authorization: 'Bearer not-a-key', 'Content-Type': 'application/json', 'Content-Length': 30 * 1024 * 1024 });
    const r = await c.response();
    assert.equal(r.status, 401);
    assert.equal(r.sentBeforeAnswer, 0);
    c.destroy();
  });

  it('with a key: a JSON body declared over http.maxJsonBodyBytes is 413 before it is read', async () => {
    const c = new RawHttp(s.port);
    await c.connected;
    c.head('POST', '/v1/listen', { Authorization: `Token ${s.key}`, 'Content-Type': 'application/json', 'Content-Length': 10 * 1024 * 1024 });
    const r = await c.response();
    assert.equal(r.status, 413, r.body);
    assert.equal(r.sentBeforeAnswer, 0);
    assert.equal((JSON.parse(r.body) as { err_code: string }).err_code, 'PAYLOAD_TOO_LARGE');
    c.destroy();
  });

  it('with a key: deeply nested JSON is refused (400) without being parsed, in the route shape', async () => {
    for (const route of [`/v1/stt/${STT}`, `/v1/tts/${TTS}`]) {
      const res = await fetch(`${s.url}${route}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${s.key}`, 'Content-Type': 'application/json' },
        body: `{"text":"hi","x":${nestedArrays(60_000)}}`,
      });
      const body = (await res.json()) as { error: string; message: string };
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(body.error, 'invalid_request');
      assert.match(body.message, /nested deeper than 32 levels/);
    }
  });

  it('WebSocket: a deeply nested JSON text frame is refused before parsing; the session survives (STT and TTS)', async () => {
    const stt = new WsProbe(`${s.wsUrl}/v1/stt/${STT}`, s.key);
    await stt.opened;
    stt.ws.send(nestedArrays(1_000_000));
    const e = await stt.waitFor((m) => m.type === 'error');
    assert.equal(e.code, 'invalid_request');
    assert.match(String(e.message), /nested deeper than 32 levels/);
    stt.ws.send(JSON.stringify({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16' } }));
    await stt.waitFor((m) => m.type === 'ready');
    stt.ws.close();

    const tts = new WsProbe(`${s.wsUrl}/v1/tts/${TTS}`, s.key);
    await tts.opened;
    tts.ws.send(`{"type":"text","text":${nestedArrays(600_000)}}`);
    const te = await tts.waitFor((m) => m.type === 'error');
    assert.equal(te.code, 'invalid_request');
    assert.match(String(te.message), /nested deeper than 32 levels/);
    tts.ws.send(JSON.stringify({ type: 'init' }));
    await tts.waitFor((m) => m.type === 'ready');
    tts.ws.close();
  });

  it('WebSocket: a frame with too many JSON values is refused before parsing', async () => {
    const stt = new WsProbe(`${s.wsUrl}/v1/stt/${STT}`, s.key);
    await stt.opened;
    stt.ws.send(`{"type":"init","config":{${Array.from({ length: 20_000 }, (_, i) => `"k${i}":0`).join(',')}}}`);
    const e = await stt.waitFor((m) => m.type === 'error');
    assert.equal(e.code, 'invalid_request');
    assert.match(String(e.message), /more than 10000 values/);
    stt.ws.close();
  });
});
