/**
 * issue 14 #8: frames the transport refuses get each dialect's documented answer; built-in property
 * names are unknown message types; `/metrics` needs a key unless configured public; refused TTS
 * upgrades are counted; a refused URL fetch does not reveal the address a name resolves to.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openUrl } from '../../src/transcribe/fetch_url.js';
import { VoxgateError } from '../../src/util/errors.js';
import { startHardServer, WsProbe, type HardServer } from './harness.js';

const STT = 'local/pocketsphinx:en';
const STT_DG = 'local/pocketsphinx:en-deepgram';
const TTS = 'local/flite:en';
const FRAME = 64 * 1024; // limits.maxFrameBytes of this suite; the hard limit is twice that
const INIT = JSON.stringify({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16' } });

describe('hardening: frames the transport refuses', { timeout: 120_000 }, () => {
  let s: HardServer;
  before(async () => {
    s = await startHardServer({ limits: { maxFrameBytes: FRAME } });
  });
  after(async () => {
    await s.cleanup();
  });

  it('unified STT: a frame over 2 × maxFrameBytes gets a payload_too_large error frame, then close 1009 with a reason', async () => {
    const c = new WsProbe(`${s.wsUrl}/v1/stt/${STT}`, s.key);
    await c.opened;
    c.ws.send(INIT);
    await c.waitFor((m) => m.type === 'ready');
    c.ws.send(Buffer.alloc(3 * FRAME));
    const closed = await c.close();
    assert.equal(closed.code, 1009);
    assert.notEqual(closed.reason, '');
    const e = c.texts.find((m) => m.type === 'error');
    assert.equal(e?.code, 'payload_too_large', JSON.stringify(c.texts));
  });

  it('Deepgram-style STT: an Error frame, then 1009', async () => {
    const c = new WsProbe(`${s.wsUrl}/v1/stt/${STT_DG}`, s.key);
    await c.opened;
    c.ws.send(Buffer.alloc(3 * FRAME), { binary: false });
    const closed = await c.close();
    assert.equal(closed.code, 1009);
    assert.equal(c.texts.find((m) => m.type === 'Error')?.code, 'payload_too_large');
  });

  it('/v1/listen: close 1009 BIG-0000 (docs/stt.md)', async () => {
    const c = new WsProbe(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000`, s.key);
    await c.opened;
    c.ws.send(Buffer.alloc(3 * FRAME));
    const closed = await c.close();
    assert.equal(closed.code, 1009);
    assert.match(closed.reason, /^BIG-0000/);
  });

  it('TTS unified: error frame then 1009; /v1/speak: 1009 BIG-0000', async () => {
    const t = new WsProbe(`${s.wsUrl}/v1/tts/${TTS}`, s.key);
    await t.opened;
    t.ws.send('x'.repeat(3 * FRAME));
    const closed = await t.close();
    assert.equal(closed.code, 1009);
    assert.equal(t.texts.find((m) => m.type === 'error')?.code, 'payload_too_large');
    const sp = new WsProbe(`${s.wsUrl}/v1/speak?model=aura-asteria-en`, s.key);
    await sp.opened;
    sp.ws.send(Buffer.alloc(3 * FRAME));
    const c2 = await sp.close();
    assert.equal(c2.code, 1009);
    assert.equal(c2.reason, 'BIG-0000');
  });

  it('invalid UTF-8 in a text frame: invalid_request error frame, the session survives (unified STT and TTS)', async () => {
    const bad = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]); // {"\xff\xfe"}
    const c = new WsProbe(`${s.wsUrl}/v1/stt/${STT}`, s.key);
    await c.opened;
    c.ws.send(bad, { binary: false });
    const e = await c.waitFor((m) => m.type === 'error');
    assert.equal(e.code, 'invalid_request');
    assert.match(String(e.message), /UTF-8/);
    c.ws.send(INIT);
    await c.waitFor((m) => m.type === 'ready');
    c.ws.close();
    const t = new WsProbe(`${s.wsUrl}/v1/tts/${TTS}`, s.key);
    await t.opened;
    t.ws.send(bad, { binary: false });
    assert.match(String((await t.waitFor((m) => m.type === 'error')).message), /UTF-8/);
    t.ws.close();
  });

  for (const route of [STT, STT_DG]) {
    it(`${route}: "constructor", "toString", "__proto__", "hasOwnProperty" are unknown types, each answered`, async () => {
      const c = new WsProbe(`${s.wsUrl}/v1/stt/${route}`, s.key);
      await c.opened;
      const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
      for (const n of names) c.ws.send(JSON.stringify({ type: n }));
      c.ws.send(JSON.stringify({ type: 'bogus' })); // the last one: every frame before it was handled
      await c.waitFor((m) => String(m.message).includes('"bogus"'));
      const errors = c.texts.filter((m) => m.type === 'error' || m.type === 'Error').map((m) => String(m.message));
      for (const n of names) assert.ok(errors.some((msg) => msg.includes(`unknown message type "${n}"`)), `${n}: ${JSON.stringify(errors)}`);
      c.ws.close();
    });
  }

  it('refused TTS upgrades are counted in voxgate_upgrades_rejected_total', async () => {
    const count = async () => {
      const text = await (await fetch(`${s.url}/metrics`, { headers: { Authorization: `Bearer ${s.key}` } })).text();
      return Number(/voxgate_upgrades_rejected_total\{status="401"\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const before0 = await count();
    const t = new WsProbe(`${s.wsUrl}/v1/tts/${TTS}`, 'wrong-key');
    await assert.rejects(t.opened, /HTTP 401/);
    assert.equal(await count(), before0 + 1);
  });
});

describe('hardening: /metrics access', { timeout: 60_000 }, () => {
  it('needs a key by default; metrics.public serves it without one', async () => {
    const s = await startHardServer();
    try {
      assert.equal((await fetch(`${s.url}/metrics`)).status, 401);
      assert.equal((await fetch(`${s.url}/metrics`, { headers: { Authorization: 'Bearer nope' } })).status, 401);
      const ok = await fetch(`${s.url}/metrics`, { headers: { Authorization: `Bearer ${s.key}` } });
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /voxgate_stt_sessions_active/);
    } finally {
      await s.cleanup();
    }
    const p = await startHardServer({ metrics: { public: true } });
    try {
      assert.equal((await fetch(`${p.url}/metrics`)).status, 200);
    } finally {
      await p.cleanup();
    }
  });
});

describe('hardening: URL fetch refusals', () => {
  it('an allowlisted name resolving to loopback is refused without naming the address', async () => {
    const policy = { enabled: true, allowHosts: ['localhost'], timeoutSeconds: 5 };
    const err = await openUrl('http://localhost:9/a.wav', policy, 1e6).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof VoxgateError, String(err));
    assert.equal(err.code, 'invalid_request');
    assert.match(err.message, /not allowed/);
    assert.doesNotMatch(err.message, /127\.0\.0\.1|::1|loopback/);
  });
});
