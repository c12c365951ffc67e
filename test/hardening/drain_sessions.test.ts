/**
 * Issue #14 item 4, in process: `RunningVoxgate.drain()` (what SIGTERM calls) on a real gateway.
 * - While an STT session waits for its utterance to end, everything new is refused with 503 (TTS
 *   upgrades in their dialect, HTTP requests before their body is read) and /healthz says `draining`.
 * - TTS going-away semantics (docs/operations.md "Shutdown"): text already received is spoken to its end,
 *   `audio_end`, then close 1001.
 * - A client that falls silent mid-utterance: at half the deadline the utterance is cut, its final
 *   delivered, close 1001 — nothing said is lost.
 * The STT client's pause is what holds the drain open, so the 503 checks do not race it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadClip, openSocket, silence, type RecordingClient } from '../helpers.js';
import { openTts, openTtsSession, startTtsServer } from '../tts_helpers.js';
import type { TestServer } from '../helpers.js';

const CLIP = 'asr_en/en_cmu_goforward.wav';

/** A unified STT session that has streamed the first 45 % of the clip and shown an interim result. */
async function midUtterance(s: TestServer): Promise<{ c: RecordingClient; rest: Buffer }> {
  const clip = await loadClip(CLIP);
  const at = Math.round((clip.bytes.length * 0.45) / 2) * 2;
  const c = await openSocket(`${s.wsUrl}/v1/stt/local/pocketsphinx:en`, { Authorization: `Bearer ${s.key}` });
  c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', enable_partials: true } });
  await c.sendBinary(clip.bytes.subarray(0, at));
  await c.waitFor((m) => m.type === 'partial_transcript' && Boolean(m.transcript), 30_000);
  return { c, rest: Buffer.concat([clip.bytes.subarray(at), silence(1500)]) };
}

describe('gateway drain (issue #14 item 4)', { timeout: 120_000 }, () => {
  it('refuses new work with 503 while sessions drain; TTS speaks the text it has, then 1001', async () => {
    const s = await startTtsServer();
    try {
      const { c: stt, rest } = await midUtterance(s);
      const tts = await openTtsSession(s, 'local/flite:en', { config: { sample_rate: 16000, encoding: 'linear16' } });
      tts.send({ type: 'text', text: 'The server is going away. This sentence is still spoken to its end.' });
      await tts.waitType('segment_start'); // the text reached the session

      const drained = s.drain(20_000);

      // TTS: the received text is spoken, audio_end, close 1001.
      const ttsClose = await tts.closed;
      assert.equal(ttsClose.code, 1001, tts.describe());
      assert.equal(ttsClose.reason, 'server shutting down');
      const end = tts.messages.find((m) => m.type === 'audio_end');
      assert.ok(end, `audio_end before the close: ${tts.describe()}`);
      const segs = tts.messages.filter((m) => m.type === 'segment_end').length;
      assert.equal(segs, 2, `both sentences spoken: ${tts.describe()}`);
      assert.ok(Math.abs(tts.audio().length / 32000 - (end.duration as number)) <= 0.001, 'all the audio was sent');

      // The STT session is still open (its user is mid-sentence): new work is refused meanwhile.
      assert.equal(stt.ws.readyState, stt.ws.OPEN);
      const h = await fetch(`${s.url}/healthz`);
      assert.equal(h.status, 503);
      assert.deepEqual(await h.json(), { status: 'draining' });
      const refusedTts = await openTts(s, '/v1/tts/local/flite:en').then(
        () => assert.fail('TTS upgrade accepted during the drain'),
        (e: { statusCode?: number; body?: string }) => e,
      );
      assert.equal(refusedTts.statusCode, 503);
      assert.equal((JSON.parse(refusedTts.body!) as { error: string }).error, 'backpressure');
      const speak = await openTts(s, '/v1/speak?model=aura-2-thalia-en', { Authorization: `Token ${s.key}` }).then(
        () => assert.fail('/v1/speak upgrade accepted during the drain'),
        (e: { statusCode?: number; body?: string }) => e,
      );
      assert.equal(speak.statusCode, 503);
      assert.equal((JSON.parse(speak.body!) as { err_code: string }).err_code, 'SERVICE_UNAVAILABLE');
      const post = await fetch(`${s.url}/v1/tts/local/flite:en`, { method: 'POST', headers: { Authorization: `Bearer ${s.key}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ text: 'hello' }) });
      assert.equal(post.status, 503);
      assert.equal(((await post.json()) as { error: string }).error, 'backpressure');

      // The user finishes the sentence: its final, then 1001.
      await stt.sendBinary(rest);
      const sttClose = await stt.closed;
      assert.equal(sttClose.code, 1001);
      const text = stt.ofType('final_transcript').map((m) => m.transcript).join(' ');
      for (const w of ['forward', 'meters']) assert.ok(text.includes(w), `"${w}" in "${text}"`);
      const report = await drained;
      assert.equal(report.sessions, 2);
      assert.equal(report.deadlineReached, false);
    } finally {
      await s.cleanup();
    }
  });

  it('an in-flight HTTP request finishes during the drain; the drain then ends before its deadline', async () => {
    const s = await startTtsServer();
    try {
      const text = 'This answer is long enough to be streamed while the server drains. '.repeat(6);
      const res = await fetch(`${s.url}/v1/tts/local/flite:en`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${s.key}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ text, stream: true, encoding: 'linear16', sample_rate: 16000, container: 'none' }),
      });
      assert.equal(res.status, 200); // headers received: the request is in flight on the server
      const drained = s.drain(30_000);
      const body = Buffer.from(await res.arrayBuffer());
      assert.ok(body.length > 16000 * 2 * 5, `the whole answer arrived: ${body.length} bytes`);
      const report = await drained;
      assert.equal(report.deadlineReached, false, JSON.stringify(report));
      assert.ok(report.totalMs < 30_000);
    } finally {
      await s.cleanup();
    }
  });

  it('a client silent mid-utterance: cut at half the deadline, its final delivered, 1001', async () => {
    const s = await startTtsServer();
    try {
      const { c } = await midUtterance(s);
      const report = await s.drain(4000);
      const { code, reason } = await c.closed;
      assert.equal(code, 1001);
      assert.equal(reason, 'server shutting down', 'closed by the cut, not by the deadline');
      const finals = c.ofType('final_transcript');
      assert.equal(finals.length, 1, JSON.stringify(c.messages));
      assert.ok((finals[0]!.transcript as string).length > 0, 'the words said before the pause are in the final');
      assert.equal(report.deadlineReached, false);
    } finally {
      await s.cleanup();
    }
  });
});
