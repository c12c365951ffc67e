/**
 * Bad input, end to end (issue #2 "Bad input"): each case gets a clear error in the caller's
 * dialect, never crashes the process, and never affects another session running at the same time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { eventually, finalText, loadClip, openSession, openSocket, silence, startTestServer, type RecordingClient, type TestServer } from './helpers.js';

const UNIFIED = 'local/pocketsphinx:en';

/** Error frames of `code`. */
const errorsOf = (c: RecordingClient, code: string) => c.ofType('error').filter((m) => m.code === code);

describe('bad input', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ idleTimeoutSeconds: 1, initTimeoutSeconds: 2, maxFrameBytes: 64 * 1024 });
  });
  after(async () => {
    await s.cleanup();
  });

  it('rejects a missing, invalid or revoked key with HTTP 401 JSON before any session exists', async () => {
    const url = `${s.wsUrl}/v1/stt/${UNIFIED}`;
    const busy = () => s.engines.get('pocketsphinx')!.stats().busyDecoders;
    const attempts: Record<string, string>[] = [{}, { Authorization: 'Bearer vgk_000000000000_' + 'A'.repeat(43) }, { Authorization: 'Bearer nonsense' }];
    for (const headers of attempts) {
      const err = (await openSocket(url, headers).then(
        () => null,
        (e: unknown) => e,
      )) as { statusCode: number; body: string };
      assert.equal(err?.statusCode, 401);
      const body = JSON.parse(err.body) as { error: string; message: string };
      assert.equal(body.error, 'auth_error');
      assert.ok(body.message.length > 0);
    }
    const { key, info } = s.keys.create('to-revoke');
    const ok = await openSocket(`${url}?token=${key}`);
    ok.ws.close();
    s.keys.revoke(info.id);
    const err = (await openSocket(`${url}?token=${key}`).catch((e: unknown) => e)) as { statusCode: number };
    assert.equal(err.statusCode, 401);
    assert.equal(busy(), 0);
    await eventually(() => s.gateway.sessionCount() === 0, 2000, 'no sessions');
  });

  it('an unknown model is HTTP 404 with the list of available models', async () => {
    const err = (await openSocket(`${s.wsUrl}/v1/stt/acme/nothing:1`, { Authorization: `Bearer ${s.key}` }).catch((e: unknown) => e)) as { statusCode: number; body: string };
    assert.equal(err.statusCode, 404);
    const body = JSON.parse(err.body) as { error: string; models: { code: string }[] };
    assert.equal(body.error, 'invalid_request'); // SLNG code list (issue 9 §3); HTTP status stays 404
    assert.ok(body.models.some((m) => m.code === UNIFIED));
  });

  it('an unknown HTTP route is a 404 in the path\'s dialect family (the error catalogue), not fastify\'s own body', async () => {
    const slng = await fetch(`${s.wsUrl.replace(/^ws/, "http")}/v1/nothing-here`);
    assert.equal(slng.status, 404);
    assert.deepEqual(await slng.json(), { error: 'invalid_request', message: 'no route GET /v1/nothing-here', statusCode: 404, status: 404 });
    const dg = await fetch(`${s.wsUrl.replace(/^ws/, "http")}/v1/listen`); // GET: only POST and WebSocket upgrades exist
    assert.equal(dg.status, 404);
    assert.equal(((await dg.json()) as { err_code: string }).err_code, 'NOT_FOUND');
    assert.ok(dg.headers.get('dg-error'));
  });

  it('binary audio before init closes with 1008', async () => {
    const c = await openSocket(`${s.wsUrl}/v1/stt/${UNIFIED}`, { Authorization: `Bearer ${s.key}` });
    c.ws.send(silence(100));
    const closed = await c.closed;
    assert.equal(closed.code, 1008);
  });

  it('malformed JSON and unknown types get invalid_request; the session survives', async () => {
    const c = await openSocket(`${s.wsUrl}/v1/stt/${UNIFIED}`, { Authorization: `Bearer ${s.key}` });
    c.ws.send('{"type":"init",');
    c.sendJson({ type: 'transcribe_please' });
    await c.waitFor(() => errorsOf(c, 'invalid_request').length === 2);
    c.sendJson({ type: 'init', config: {} });
    await c.waitType('ready');
    c.ws.send('not json at all');
    await c.waitFor(() => errorsOf(c, 'invalid_request').length === 3);
    c.sendJson({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
  });

  for (const [what, config, pattern] of [
    ['an unsupported encoding (speex)', { encoding: 'speex' }, /speex/],
    ['an unknown encoding', { encoding: 'foo' }, /foo/],
    ['an unsupported sample rate', { sample_rate: 7 }, /sample_rate/],
    ['an unsupported language', { language: 'xx' }, /language/],
    ['a wrongly typed field', { sample_rate: 'fast' }, /sample_rate/],
  ] as const) {
    it(`init with ${what} → config_error, then close`, async () => {
      const c = await openSocket(`${s.wsUrl}/v1/stt/${UNIFIED}`, { Authorization: `Bearer ${s.key}` });
      c.sendJson({ type: 'init', config });
      const closed = await c.closed;
      assert.equal(closed.code, 1008);
      const errs = errorsOf(c, 'config_error');
      assert.equal(errs.length, 1, JSON.stringify(c.messages));
      assert.match(errs[0]!.message as string, pattern);
    });
  }

  it('odd-length and oversized frames, and a second init, get error frames; the session goes on', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await openSession(s, UNIFIED);
    c.ws.send(Buffer.alloc(3201));
    await c.waitFor(() => errorsOf(c, 'invalid_request').length === 1);
    assert.match(errorsOf(c, 'invalid_request')[0]!.message as string, /3201 bytes/);
    c.ws.send(Buffer.alloc(64 * 1024 + 2));
    await c.waitFor(() => errorsOf(c, 'payload_too_large').length === 1);
    c.sendJson({ type: 'init', config: {} });
    await c.waitFor(() => errorsOf(c, 'invalid_request').length === 2);
    await c.sendBinary(Buffer.concat([clip.bytes, silence(600)]));
    c.sendJson({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
    assert.match(finalText(c), /forward/);
  });

  it('a malformed RIFF header gets invalid_request, not a crash', async () => {
    const c = await openSession(s, UNIFIED);
    const bad = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVEfmt '), Buffer.from([2, 0, 0, 0]), Buffer.alloc(32)]);
    c.ws.send(bad);
    const err = await c.waitFor((m) => m.type === 'error');
    assert.equal(err.code, 'invalid_request');
    assert.match(err.message as string, /RIFF/);
    c.sendJson({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
  });

  it('idle timeout: error idle_timeout_exceeded then close; keepalive resets the timer', async () => {
    const kept = await openSession(s, UNIFIED);
    const idle = await openSession(s, UNIFIED);
    const t = setInterval(() => kept.sendJson({ type: 'keepalive' }), 300);
    try {
      const closed = await idle.closed;
      assert.equal(closed.code, 1008);
      assert.equal(errorsOf(idle, 'idle_timeout_exceeded').length, 1);
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(kept.ws.readyState, WebSocket.OPEN, 'keepalive kept the other session open');
    } finally {
      clearInterval(t);
    }
    kept.sendJson({ type: 'close' });
    assert.equal((await kept.closed).code, 1000);
  });

  it('a client that vanishes mid-stream releases its decoder at once', async () => {
    const engine = s.engines.get('pocketsphinx')!;
    const clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    const c = await openSession(s, UNIFIED);
    await c.sendBinary(clip.bytes.subarray(0, 64000));
    await eventually(() => engine.stats().busyDecoders === 1, 2000, 'decoder busy');
    c.ws.terminate();
    await eventually(() => engine.stats().busyDecoders === 0, 1000, 'decoder released');
    await eventually(() => s.gateway.sessionCount() === 0, 1000, 'session gone');
  });

  it('none of this affects a session running at the same time', async () => {
    const clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    const good = await openSession(s, UNIFIED);
    const bad = await openSession(s, UNIFIED);
    const sending = good.sendBinary(Buffer.concat([clip.bytes, silence(600)]), 3200);
    bad.ws.send('{{{');
    bad.ws.send(Buffer.alloc(777));
    bad.ws.send(Buffer.alloc(64 * 1024 + 10));
    bad.sendJson({ type: 'init' });
    bad.ws.terminate();
    const rude = await openSocket(`${s.wsUrl}/v1/stt/${UNIFIED}`, { Authorization: `Bearer ${s.key}` });
    rude.ws.send(Buffer.alloc(10));
    await sending;
    good.sendJson({ type: 'close' });
    assert.equal((await good.closed).code, 1000);
    assert.equal(good.ofType('error').length, 0);
    assert.match(finalText(good), /gospel/);
    assert.equal((await rude.closed).code, 1008);
  });
});
