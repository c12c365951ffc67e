/**
 * Issue 9 §3 "Shapes and codes real clients read", STT side, end to end: a real gateway on port 0,
 * real speech, the real engine, plain `ws` clients.
 * - Over capacity every STT route refuses the upgrade with HTTP 429 and its dialect's JSON body
 *   (Deepgram: `err_code`/`err_msg`/`request_id` + `dg-error`; protocols.md §2.5 "excess → HTTP 429 at
 *   handshake", §5) instead of accepting and closing 1013.
 * - Interim `Results` carry words and a confidence (§2.4).
 * - `diarize=undefined` (Mastra's Deepgram voice) opens a session.
 * - Pulse: a `finalize` closes the utterance with a `speech_ended`; an endpointed utterance's
 *   `speech_ended` is at its last word's end (§4.2).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, loadClip, openSession, openSocket, silence, startTestServer, type RecordingClient, type TestServer } from './helpers.js';

const UNIFIED = 'local/pocketsphinx:en';
const DG_STYLE = 'local/pocketsphinx:en-deepgram';
type Rejection = { statusCode: number; body: string; headers: Record<string, string> };
type Alt = { transcript: string; confidence: number; words: { word: string; start: number; end: number; confidence: number }[] };
const alt = (m: Record<string, unknown>): Alt => (m.channel as { alternatives: Alt[] }).alternatives[0]!;

async function rejection(p: Promise<RecordingClient>): Promise<Rejection> {
  const r = await p.then(
    (c) => {
      c.ws.close();
      return null;
    },
    (e: unknown) => e as Rejection,
  );
  assert.ok(r, 'the upgrade was accepted; expected an HTTP refusal');
  return r;
}

describe('over capacity: HTTP 429 at the handshake on every STT route (issue 9 §3)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({}, { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 1 } });
  });
  after(async () => {
    await s.cleanup();
  });
  const engine = () => s.engines.get('pocketsphinx')!;
  const auth = () => ({ Authorization: `Token ${s.key}` });

  it('refuses /v1/listen, smallest.ai and the unified routes with 429 + the dialect body while the only decoder is busy', async () => {
    const a = await openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000`, auth());
    await eventually(() => engine().stats().activeStreams === 1, 5000, 'the first session to hold the decoder');

    const dg = await rejection(openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000`, auth()));
    assert.equal(dg.statusCode, 429);
    const body = JSON.parse(dg.body) as { err_code: string; err_msg: string; request_id: string };
    assert.equal(body.err_code, 'TOO_MANY_REQUESTS');
    assert.match(body.err_msg, /capacity|busy/);
    assert.equal(dg.headers['dg-request-id'], body.request_id);
    assert.ok(dg.headers['dg-error'], 'dg-error header');
    assert.ok(dg.headers['retry-after'], 'Retry-After header');

    for (const path of ['/waves/v1/pulse/get_text?sample_rate=16000', '/api/v1/lightning/get_text', `/v1/stt/${UNIFIED}`, `/v1/bridges/unmute/stt/${DG_STYLE}`]) {
      const r = await rejection(openSocket(`${s.wsUrl}${path}`, { Authorization: `Bearer ${s.key}` }));
      assert.equal(r.statusCode, 429, path);
      const b = JSON.parse(r.body) as { error: string | { code: string } };
      // smallest.ai routes: {status:"error", error:{message, code}} (§4.1); SLNG routes: {error, message}.
      assert.equal(typeof b.error === 'string' ? b.error : b.error.code, 'rate_limit', path);
      assert.equal(typeof b.error === 'string', !path.includes('get_text'), path);
    }

    a.sendJson({ type: 'CloseStream' });
    assert.equal((await a.closed).code, 1000);
    await eventually(() => s.gateway.sessionCount() === 0 && engine().stats().activeStreams === 0, 5000, 'the decoder to be released');
  });

  it('a unified session awaiting init holds its place: a second session is refused until it ends', async () => {
    const u = await openSocket(`${s.wsUrl}/v1/stt/${UNIFIED}`, { Authorization: `Bearer ${s.key}` });
    const r = await rejection(openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000`, auth()));
    assert.equal(r.statusCode, 429);
    u.sendJson({ type: 'init', config: { sample_rate: 16000, encoding: 'linear16' } });
    await u.waitType('ready');
    u.sendJson({ type: 'close' });
    assert.equal((await u.closed).code, 1000);
    await eventually(() => s.gateway.sessionCount() === 0 && engine().stats().activeStreams === 0, 5000, 'the decoder to be released');
    const ok = await openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000`, auth());
    ok.sendJson({ type: 'CloseStream' });
    assert.equal((await ok.closed).code, 1000);
  });
});

describe('shapes on the wire (issue 9 §3)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.cleanup();
  });

  const checkInterims = (c: RecordingClient, what: string): void => {
    const interims = c.messages.filter((m) => m.type === 'Results' && m.is_final === false && alt(m).transcript);
    assert.ok(interims.length > 0, `${what}: interim Results`);
    for (const m of interims) {
      const a = alt(m);
      assert.equal(a.words.length, a.transcript.split(/\s+/).filter(Boolean).length, `${what}: ${JSON.stringify(a)}`);
      assert.ok(a.confidence > 0, `${what}: interim confidence ${a.confidence}`);
      const start = m.start as number;
      const end = start + (m.duration as number);
      for (const w of a.words) assert.ok(w.start >= start - 1e-3 && w.end <= end + 1e-3 && w.end >= w.start, `${what}: word ${JSON.stringify(w)} outside [${start}, ${end}]`);
    }
  };

  it('/v1/listen and the Deepgram-style route: interim Results carry words and a confidence', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const audio = Buffer.concat([silence(300), clip.bytes, silence(1000)]);
    const dg = await openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true&endpointing=300`, { Authorization: `Token ${s.key}` });
    await dg.sendBinary(audio);
    dg.sendJson({ type: 'CloseStream' });
    assert.equal((await dg.closed).code, 1000);
    checkInterims(dg, '/v1/listen');

    const st = await openSession(s, DG_STYLE, { enable_partials: true });
    await st.sendBinary(audio);
    st.sendJson({ type: 'close' });
    assert.equal((await st.closed).code, 1000);
    checkInterims(st, 'deepgram-style');
  });

  it("/v1/listen accepts Mastra's diarize=undefined (a documented no-op) and transcribes", async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await openSocket(`${s.wsUrl}/v1/listen?model=nova-2&diarize=undefined&filler_words=undefined&encoding=linear16&sample_rate=16000`, { Authorization: `Token ${s.key}` });
    await c.sendBinary(Buffer.concat([clip.bytes, silence(500)]));
    c.sendJson({ type: 'CloseStream' });
    assert.equal((await c.closed).code, 1000);
    assert.ok(c.messages.some((m) => m.type === 'Results' && m.is_final && alt(m).transcript));
    // Honoured parameters stay strict.
    const r = await rejection(openSocket(`${s.wsUrl}/v1/listen?interim_results=undefined`, { Authorization: `Token ${s.key}` }));
    assert.equal(r.statusCode, 400);
  });

  it('Pulse: speech_ended at the last word end, one per speech_started, also when finalize closes the utterance', async () => {
    const clip = await loadClip('asr_en/en_cmu_goforward.wav');
    const c = await openSocket(`${s.wsUrl}/waves/v1/pulse/get_text?sample_rate=16000&vad_events=true&eou_timeout_ms=800&format=false`, { Authorization: `Bearer ${s.key}` });
    // 1) endpointed utterance
    await c.sendBinary(Buffer.concat([silence(300), clip.bytes, silence(1500)]), 4096);
    const ended = await c.waitFor((m) => m.type === 'speech_ended');
    const final = c.messages.filter((m) => m.is_final === true && m.transcript).at(-1)!;
    const words = final.word_timestamps as { end: number }[];
    assert.ok(words.length > 0, 'word_timestamps on the final');
    assert.ok((ended.timestamp as number) <= words.at(-1)!.end + 1e-3, `speech_ended ${String(ended.timestamp)} after the last word end ${words.at(-1)!.end}`);
    // 2) utterance cut short by finalize (no trailing silence)
    await c.sendBinary(clip.bytes, 4096);
    c.sendJson({ type: 'finalize' });
    await c.waitFor((m) => m.from_finalize === true);
    await c.waitFor((m) => m.type === 'speech_ended' && m !== ended, 5000);
    c.sendJson({ type: 'close_stream' });
    assert.equal((await c.closed).code, 1000);
    const vad = c.messages.filter((m) => m.type === 'speech_started' || m.type === 'speech_ended').map((m) => m.type);
    assert.ok(vad.length >= 4, JSON.stringify(vad));
    vad.forEach((t, i) => assert.equal(t, i % 2 === 0 ? 'speech_started' : 'speech_ended', `alternating VAD events: ${JSON.stringify(vad)}`));
    assert.ok(c.messages.filter((m) => 'session_id' in m && !('type' in m)).every((m) => typeof m.full_transcript === 'string' && JSON.stringify(m.words) === JSON.stringify(m.word_timestamps)));
  });
});
