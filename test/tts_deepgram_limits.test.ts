/**
 * Deepgram `/v1/speak` limits that are documented and now enforced (issue 9 §3; protocols.md §3,
 * D2/D5), on a real gateway with real clients:
 * - `speed` is 0.7–1.5 on Deepgram: out of range → HTTP 400 with Deepgram's error body
 *   (`INVALID_QUERY_PARAMETER`) at the WebSocket upgrade and on REST, although the engine could go further;
 * - at most 20 `Flush` per 60 s: beyond that a `Warning` says the flush was not processed, and no
 *   `Flushed` answers it (Deepgram: "you will receive a warning message stating that we cannot
 *   process any more flush messages until the 60-second time window has passed");
 * - REST with empty text → 400 `{"err_code":"Bad Request","err_msg":"Input text contains no characters.",…}`
 *   (Deepgram's "400 Input Text Contained No Characters"), not a 200 with an empty WAV.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { speakServerMessageSchema } from '../src/protocol/deepgram-speak/schema.js';
import type { TestServer } from './helpers.js';
import { openTts, startTtsServer } from './tts_helpers.js';

describe('Deepgram /v1/speak limits', () => {
  let s: TestServer;
  const open = (query: string) => openTts(s, `/v1/speak${query}`, { Authorization: `Token ${s.key}` });
  const post = (query: string, body: unknown) =>
    fetch(`http://127.0.0.1:${s.port}/v1/speak${query}`, { method: 'POST', headers: { 'content-type': 'application/json', Authorization: `Token ${s.key}` }, body: JSON.stringify(body) });
  before(async () => {
    s = await startTtsServer();
  });
  after(async () => {
    await s.cleanup();
  });

  it('speed outside 0.7–1.5 is refused at the upgrade (400, Deepgram body); the range ends are accepted', async () => {
    for (const speed of ['0.69', '1.6', '2', '0.5']) {
      await assert.rejects(open(`?model=kal16&speed=${speed}`), (e: { statusCode: number; body: string; headers: Record<string, string> }) => {
        assert.equal(e.statusCode, 400, `speed=${speed}`);
        const body = JSON.parse(e.body) as Record<string, string>;
        assert.deepEqual(Object.keys(body).sort(), ['err_code', 'err_msg', 'request_id']);
        assert.equal(body.err_code, 'INVALID_QUERY_PARAMETER');
        assert.match(body.err_msg!, /speed.*0\.7.*1\.5/);
        assert.ok(e.headers['dg-error']);
        return true;
      });
    }
    for (const speed of ['0.7', '1.5']) {
      const c = await open(`?model=kal16&speed=${speed}`);
      await c.waitType('Metadata');
      c.ws.close();
    }
  });

  it('REST: speed outside 0.7–1.5 → 400 with the Deepgram body', async () => {
    for (const speed of ['1.75', '0.6']) {
      const res = await post(`?model=kal16&speed=${speed}`, { text: 'Hello there.' });
      const body = (await res.json()) as Record<string, string>;
      assert.equal(res.status, 400, `speed=${speed}: ${JSON.stringify(body)}`);
      assert.equal(body.err_code, 'INVALID_QUERY_PARAMETER');
      assert.match(body.err_msg!, /speed/);
    }
    assert.equal((await post('?model=kal16&speed=1.5', { text: 'Hello there.' })).status, 200);
  });

  it('the 21st Flush within 60 s gets a Warning and is not processed (no Flushed for it)', async () => {
    const c = await open('?model=kal16&encoding=linear16&sample_rate=16000');
    await c.waitType('Metadata');
    for (let i = 0; i < 20; i++) c.send({ type: 'Flush' });
    await c.waitIndex((f) => f.kind === 'json' && f.m.type === 'Flushed' && f.m.sequence_id === 19);
    // Idle, with nothing buffered, a processed Flush is answered synchronously, before the next
    // frame is read; the Clear after it is answered in order: by Cleared every Flushed has been sent.
    c.send({ type: 'Flush' });
    c.send({ type: 'Clear' });
    const cl = await c.waitType('Cleared');
    const types = c.frames.slice(0, cl + 1).map((f) => (f.kind === 'json' ? (f.m.type as string) : 'audio'));
    assert.deepEqual(types, ['Metadata', ...Array<string>(20).fill('Flushed'), 'Warning', 'Cleared'], c.describe());
    assert.deepEqual(
      c.messages.filter((m) => m.type === 'Flushed').map((m) => m.sequence_id),
      Array.from({ length: 20 }, (_, i) => i),
    );
    const w = c.json(types.indexOf('Warning'));
    assert.match(w.description as string, /Flush/);
    assert.match(w.description as string, /not processed/);
    for (const m of c.messages) assert.ok(speakServerMessageSchema.safeParse(m).success, JSON.stringify(m));
    c.ws.close();
  });

  it('REST: empty text → 400 "Input text contains no characters." in Deepgram\'s shape', async () => {
    for (const text of ['', '   ']) {
      const res = await post('?model=aura-asteria-en', { text });
      const body = (await res.json()) as Record<string, string>;
      assert.equal(res.status, 400, `text ${JSON.stringify(text)}: ${JSON.stringify(body)}`);
      assert.deepEqual(Object.keys(body).sort(), ['err_code', 'err_msg', 'request_id']);
      assert.equal(body.err_code, 'Bad Request');
      assert.equal(body.err_msg, 'Input text contains no characters.');
      assert.equal(res.headers.get('dg-error'), 'Input text contains no characters.');
      assert.equal(res.headers.get('dg-request-id'), body.request_id);
    }
  });
});
