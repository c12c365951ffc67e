/**
 * Deepgram `/v1/listen` end to end with a plain `ws` client written from shared/spec/protocols.md §2:
 * a real gateway on port 0, real speech, the real engine. Every frame is validated against the §2.4
 * schemas; close codes and reasons against §2.5.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';
import { listenServerMessageSchema } from '../src/protocol/deepgram/schema.js';
import { finalText, loadClip, openSocket, sharedData, silence, startTestServer, type RecordingClient, type TestServer } from './helpers.js';

function assertAllValid(c: RecordingClient): void {
  for (const m of c.messages) {
    const r = listenServerMessageSchema.safeParse(m);
    assert.ok(r.success, `invalid frame ${JSON.stringify(m)}: ${r.success ? '' : r.error.message}`);
  }
}

describe('Deepgram /v1/listen', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.cleanup();
  });

  const listen = (query: string, headers?: Record<string, string>, protocols?: string[]) =>
    openSocket(`${s.wsUrl}/v1/listen?${query}`, headers ?? { Authorization: `Token ${s.key}` }, protocols);

  it('streams Results with interim results, SpeechStarted, UtteranceEnd, and ends with Metadata + 1000 on CloseStream', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await listen('model=nova-3&encoding=linear16&sample_rate=16000&channels=1&interim_results=true&endpointing=300&vad_events=true&utterance_end_ms=1000&tag=a&tag=b&some_future_param=1');
    await c.sendBinary(Buffer.concat([silence(300), clip.bytes, silence(1500)]));
    c.sendJson({ type: 'CloseStream' });
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    assertAllValid(c);
    const results = c.ofType('Results');
    assert.ok(results.some((m) => m.is_final === false), 'interim results were sent');
    const finals = results.filter((m) => m.is_final === true);
    assert.ok(finals.length >= 1);
    assert.ok(finals.some((m) => m.speech_final === true), 'endpointing produced speech_final');
    assert.match(finalText(c), /forward/);
    for (const m of results) assert.deepEqual(m.channel_index, [0, 1]);
    const words = finals.flatMap((m) => (m.channel as { alternatives: { words: { start: number; end: number }[] }[] }).alternatives[0]!.words);
    assert.ok(words.length >= 2 && words.every((w) => w.end >= w.start && w.start >= 0.2), 'word times on the stream clock (after the 0.3 s lead-in)');
    assert.ok(!('punctuated_word' in (words[0] as object)), 'no punctuated_word unless formatting is asked for');
    const started = c.ofType('SpeechStarted');
    assert.ok(started.length >= 1 && (started[0]!.timestamp as number) < 1.0);
    const ue = c.ofType('UtteranceEnd');
    assert.equal(ue.length, 1, 'one UtteranceEnd after the 1.5 s of trailing silence');
    const lastEnd = Math.max(...words.map((w) => w.end));
    assert.ok(Math.abs((ue[0]!.last_word_end as number) - lastEnd) < 0.01);
    const meta = c.messages.at(-1)!;
    assert.equal(meta.type, 'Metadata');
    assert.ok(Math.abs((meta.duration as number) - (clip.seconds + 1.8)) < 0.05);
    assert.equal(meta.request_id, (results[0]!.metadata as { request_id: string }).request_id);
  });

  it('answers the handshake with dg-request-id, and that id is the session request_id', async () => {
    const id = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000`, { headers: { Authorization: `Token ${s.key}` } });
      ws.once('upgrade', (res) => {
        resolve(String(res.headers['dg-request-id']));
        ws.close();
      });
      ws.once('error', reject);
    });
    assert.match(id, /^[0-9a-f-]{36}$/);
  });

  it('accepts Bearer and the browser subprotocol form, selecting "token"', async () => {
    const b = await listen('encoding=linear16&sample_rate=16000', { Authorization: `Bearer ${s.key}` });
    b.ws.close();
    const p = await listen('encoding=linear16&sample_rate=16000', {}, ['token', s.key]);
    assert.equal(p.ws.protocol, 'token');
    p.sendJson({ type: 'CloseStream' });
    assert.equal((await p.closed).code, 1000);
    await assert.rejects(listen('encoding=linear16&sample_rate=16000', {}, ['token', 'vgk_bad_key']), (e: { statusCode?: number; headers?: Record<string, string> }) => {
      assert.equal(e.statusCode, 401);
      assert.ok(e.headers?.['dg-request-id'] && e.headers['dg-error']);
      return true;
    });
  });

  it('Finalize gives a from_finalize final and keeps the socket; KeepAlive is silent', async () => {
    const clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    const c = await listen('encoding=linear16&sample_rate=16000&endpointing=false');
    c.sendJson({ type: 'KeepAlive' });
    await c.sendBinary(clip.bytes.subarray(0, 16000 * 2 * 2));
    c.sendJson({ type: 'Finalize' });
    const f = await c.waitFor((m) => m.type === 'Results' && m.from_finalize === true);
    assert.equal(f.is_final, true);
    assert.ok(((f.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript).length > 0);
    c.sendJson({ type: 'KeepAlive' });
    await c.sendBinary(clip.bytes.subarray(16000 * 2 * 2));
    c.sendJson({ type: 'CloseStream' });
    assert.equal((await c.closed).code, 1000);
    assertAllValid(c);
    assert.match(finalText(c), /class|glad|welcome/);
  });

  it('smart_format capitalises and punctuates transcript and punctuated_word', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await listen('encoding=linear16&sample_rate=16000&smart_format=true&endpointing=300');
    await c.sendBinary(Buffer.concat([clip.bytes, silence(800)]));
    c.sendJson({ type: 'CloseStream' });
    await c.closed;
    assertAllValid(c);
    const final = c.ofType('Results').find((m) => m.is_final && (m.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript)!;
    const alt = (final.channel as { alternatives: { transcript: string; words: { word: string; punctuated_word: string }[] }[] }).alternatives[0]!;
    assert.match(alt.transcript, /^[A-Z0-9].*[.?]$/);
    assert.ok(alt.words.every((w) => typeof w.punctuated_word === 'string'));
    assert.match(alt.words[0]!.punctuated_word, /^[A-Z0-9]/);
  });

  it('multichannel=true transcribes each channel independently with channel_index [i, 2]', async () => {
    const c = await listen('encoding=linear16&sample_rate=16000&channels=2&multichannel=true&endpointing=300');
    // The whole stereo WAV, header included: the header is recognised and skipped.
    await c.sendBinary(Buffer.concat([readFileSync(sharedData('diarization/librispeech_stereo_2spk.wav')), Buffer.alloc(16000 * 2 * 2)]));
    c.sendJson({ type: 'CloseStream' });
    assert.equal((await c.closed).code, 1000);
    assertAllValid(c);
    const text = (ch: number) =>
      c
        .ofType('Results')
        .filter((m) => m.is_final && (m.channel_index as number[])[0] === ch)
        .map((m) => (m.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript)
        .join(' ');
    for (const m of c.ofType('Results')) assert.equal((m.channel_index as number[])[1], 2);
    // Left: "he began a confused complaint against the wizard ..."; right: "the horizon seems extremely distant".
    assert.match(text(0), /complaint|wizard|curtain|confused|vanished/);
    assert.doesNotMatch(text(0), /horizon|distant/);
    assert.match(text(1), /horizon|distant|extremely/);
    assert.doesNotMatch(text(1), /wizard|complaint|curtain/);
    assert.equal(c.messages.at(-1)!.channels, 2);
  });

  it('the legacy empty binary frame ends the stream like CloseStream', async () => {
    const c = await listen('encoding=linear16&sample_rate=16000');
    await c.sendBinary(silence(500));
    c.ws.send(Buffer.alloc(0));
    assert.equal((await c.closed).code, 1000);
    assert.equal(c.messages.at(-1)!.type, 'Metadata');
  });

  it('rejects invalid query values with HTTP 400 JSON before upgrading', async () => {
    for (const q of ['encoding=linear16&sample_rate=7', 'encoding=foo', 'interim_results=yes', 'encoding=linear16&sample_rate=11025', 'language=xx', 'model=not-a-model']) {
      await assert.rejects(listen(q), (e: { statusCode?: number; body?: string; headers?: Record<string, string> }) => {
        assert.equal(e.statusCode, 400, q);
        const body = JSON.parse(e.body!) as { err_code: string; err_msg: string; request_id: string };
        assert.equal(body.err_code, 'INVALID_QUERY_PARAMETER');
        assert.ok(body.err_msg.length > 10, body.err_msg);
        assert.equal(e.headers?.['dg-request-id'], body.request_id);
        return true;
      });
    }
  });

  it('closes 1008 DATA-0000 for a malformed frame and for an unknown text message', async () => {
    const a = await listen('encoding=linear16&sample_rate=16000');
    a.ws.send(Buffer.alloc(3)); // not whole linear16 samples
    const ca = await a.closed;
    assert.equal(ca.code, 1008);
    assert.match(ca.reason, /^DATA-0000/);
    const b = await listen('encoding=linear16&sample_rate=16000');
    b.sendJson({ type: 'Flush' });
    const cb = await b.closed;
    assert.equal(cb.code, 1008);
    assert.match(cb.reason, /^DATA-0000.*KeepAlive, Finalize or CloseStream/);
  });

  it('closes 1011 NET-0001 after 10 s without audio or a message', async () => {
    const c = await listen('encoding=linear16&sample_rate=16000');
    const t0 = Date.now();
    const closed = await c.closed;
    const waited = Date.now() - t0;
    assert.equal(closed.code, 1011);
    assert.match(closed.reason, /^NET-0001/);
    assert.ok(waited >= 9500 && waited < 13000, `closed after ${waited} ms`);
  });
});
