/**
 * smallest.ai Lightning and Pulse STT (shared/spec/protocols.md §4.1–4.2) end to end, with a plain `ws`
 * client written from the spec: query-string configuration, `session_id`/`transcript`/`is_final`/
 * `is_last`, `full_transcript` (every frame), `word_timestamps`, the `{"type":"end"}` flow, Pulse `finalize`/`close_stream` and
 * VAD events, and errors in the `{"status":"error","error":{…}}` shape.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { loadClip, openSocket, silence, startTestServer, type RecordingClient, type TestServer } from './helpers.js';

const word = z.object({ word: z.string(), start: z.number().min(0), end: z.number().min(0), confidence: z.number().min(0).max(1) }).strict();
const transcriptSchema = z
  .object({
    session_id: z.string().min(1),
    transcript: z.string(),
    is_final: z.boolean(),
    is_last: z.boolean(),
    language: z.string().optional(),
    full_transcript: z.string(),
    word_timestamps: z.array(word).optional(),
    words: z.array(word).optional(), // §4.1's name for the same array
    from_finalize: z.boolean().optional(),
  })
  .strict();
const vadSchema = z.object({ type: z.enum(['speech_started', 'speech_ended']), session_id: z.string(), timestamp: z.number().min(0) }).strict();
const errorSchema = z.object({ status: z.literal('error'), error: z.object({ message: z.string().min(1), code: z.string().min(1) }).strict() }).strict();
const anyMessage = z.union([transcriptSchema, vadSchema, errorSchema]);

function assertAllValid(c: RecordingClient): void {
  for (const m of c.messages) {
    const r = anyMessage.safeParse(m);
    assert.ok(r.success, `invalid frame ${JSON.stringify(m)}`);
  }
}

describe('smallest.ai Lightning / Pulse get_text', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.cleanup();
  });
  const open = (path: string, query: string) => openSocket(`${s.wsUrl}${path}?${query}`, { Authorization: `Bearer ${s.key}` });

  it('Lightning: streams partials and finals, {"type":"end"} gives is_last then a 1000 close', async () => {
    const clip = await loadClip('asr_en/en_ls_1272-128104-0000.wav');
    const c = await open('/api/v1/lightning/get_text', 'language=en&encoding=linear16&sample_rate=16000&word_timestamps=true&full_transcript=true&format=false');
    await c.sendBinary(clip.bytes, 4096);
    c.sendJson({ type: 'end' });
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    assertAllValid(c);
    const msgs = c.messages as z.infer<typeof transcriptSchema>[];
    assert.ok(msgs.some((m) => !m.is_final && m.transcript), 'interim transcripts');
    const finals = msgs.filter((m) => m.is_final && !m.is_last);
    assert.ok(finals.length >= 1);
    assert.ok(finals.every((m) => m.language === 'en' && Array.isArray(m.word_timestamps)));
    const last = msgs.at(-1)!;
    assert.equal(last.is_last, true, 'the last message has is_last');
    assert.equal(msgs.filter((m) => m.is_last).length, 1);
    assert.match(last.full_transcript!, /class|glad|welcome|apostle/);
    assert.equal(new Set(msgs.map((m) => m.session_id)).size, 1);
  });

  it('Lightning: format=true (default) punctuates; word_timestamps=false omits the word array', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await open('/waves/v1/lightning/get_text', 'sample_rate=16000&word_timestamps=false');
    await c.sendBinary(Buffer.concat([clip.bytes, silence(1000)]), 4096);
    c.sendJson({ type: 'finalize' }); // Lightning: finalize = end of audio
    await c.closed;
    const f = (c.messages as z.infer<typeof transcriptSchema>[]).find((m) => m.is_final && m.transcript)!;
    assert.equal(f.word_timestamps, undefined);
    assert.match(f.transcript, /^[A-Z0-9].*[.?]$/);
  });

  it('Pulse: finalize keeps the session (from_finalize), VAD events, close_stream ends it', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await open('/waves/v1/pulse/get_text', 'language=en&encoding=linear16&sample_rate=16000&vad_events=true&eou_timeout_ms=400');
    await c.sendBinary(Buffer.concat([silence(300), clip.bytes, silence(1000)]), 4096);
    await c.waitFor((m) => m.type === 'speech_ended');
    await c.sendBinary(clip.bytes.subarray(0, 16000), 4096);
    c.sendJson({ type: 'finalize' });
    const ff = await c.waitFor((m) => m.from_finalize === true);
    assert.equal(ff.is_final, true);
    assert.equal(ff.is_last, false);
    c.sendJson({ type: 'close_stream' });
    const closed = await c.closed;
    assert.equal(closed.code, 1000);
    assertAllValid(c);
    const started = c.messages.filter((m) => m.type === 'speech_started');
    assert.ok(started.length >= 1 && (started[0]!.timestamp as number) < 1.0);
    assert.equal(c.messages.at(-1)!.is_last, true);
  });

  it('invalid query values are HTTP 400 JSON; unknown messages get an error frame and the session survives', async () => {
    for (const q of ['sample_rate=7', 'encoding=foo', 'eou_timeout_ms=5', 'word_timestamps=maybe']) {
      await assert.rejects(open('/waves/v1/pulse/get_text', q), (e: { statusCode?: number; body?: string }) => {
        assert.equal(e.statusCode, 400, q);
        assert.deepEqual(Object.keys(JSON.parse(e.body!) as object).sort(), ['error', 'status']); // §4.1 error shape
        assert.equal((JSON.parse(e.body!) as { error: { code: string } }).error.code, 'config_error');
        return true;
      });
    }
    await assert.rejects(openSocket(`${s.wsUrl}/waves/v1/pulse/get_text`, {}), (e: { statusCode?: number }) => e.statusCode === 401);
    const c = await open('/waves/v1/pulse/get_text', 'sample_rate=16000');
    c.sendJson({ type: 'flush_please' });
    const err = await c.waitFor((m) => m.status === 'error');
    assert.match((err.error as { message: string }).message, /unknown message type/);
    c.sendJson({ type: 'close_stream' });
    assert.equal((await c.closed).code, 1000);
    assertAllValid(c);
  });
});
