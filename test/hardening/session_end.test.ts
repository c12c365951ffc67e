/**
 * Issue #14 item 9: when the *server* ends a session (here: the session length limit), audio the
 * client sent before it learned of that is still in flight. Those frames must not be answered with
 * errors ("audio after close was rejected") — that second error line made the playground test
 * flaky — and in the Deepgram dialect they must not abort the drain (finals and the closing
 * `Metadata` were lost). And the client SDK stops sending once the server ends the session.
 *
 * Deterministic, no timing luck: each client sends a minute of real speech at once. The server reads
 * at most ~10 s ahead of its engine (back-pressure pauses the socket), so when the 1 s limit fires
 * most of that minute is still unread in the socket; it is read while the session drains — always.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SttClient } from '../../src/client/stt.js';
import { loadClip, openSession, openSocket, startTestServer, type TestServer } from '../helpers.js';

/** About `seconds` of real speech (a clip repeated), 16 kHz linear16 bytes. */
async function speech(seconds: number): Promise<Buffer> {
  const clip = await loadClip('asr_en/en_jfk_inaugural_excerpt.wav');
  return Buffer.concat(new Array<Buffer>(Math.ceil(seconds / clip.seconds)).fill(clip.bytes));
}

describe('server-ended sessions and audio in flight (issue #14 item 9)', { timeout: 120_000 }, () => {
  let s: TestServer;
  let minute: Buffer;
  before(async () => {
    s = await startTestServer({ maxSessionSeconds: 1 });
    minute = await speech(60);
  });
  after(async () => {
    await s.cleanup();
  });

  it('unified: one error frame for the limit, finals, close 1008 — no error per late audio frame', async () => {
    const c = await openSession(s, 'local/pocketsphinx:en');
    void c.sendBinary(minute).catch(() => {});
    const { code, reason } = await c.closed;
    const errors = c.ofType('error');
    assert.equal(errors.length, 1, `exactly one error frame: ${JSON.stringify(errors)}`);
    assert.equal(errors[0]!.code, 'max_connection_duration_exceeded');
    assert.match(errors[0]!.message as string, /audio sent from now on is not transcribed/);
    assert.ok(c.ofType('final_transcript').length > 0, 'finals for the audio received are delivered');
    assert.equal(code, 1008);
    assert.match(reason, /^max_connection_duration_exceeded; \d+ audio bytes sent after that were not transcribed$/);
  });

  it('Deepgram /v1/listen: late audio does not abort the drain; finals and the closing Metadata arrive', async () => {
    const c = await openSocket(`${s.wsUrl}/v1/listen?encoding=linear16&sample_rate=16000`, { Authorization: `Token ${s.key}` });
    void c.sendBinary(minute).catch(() => {});
    const { code } = await c.closed;
    assert.ok(c.messages.some((m) => m.type === 'Results' && m.is_final), 'finals delivered');
    assert.equal(c.messages.at(-1)?.type, 'Metadata', `closing Metadata last: ${JSON.stringify(c.messages.slice(-2))}`);
    assert.notEqual(code, 1008, 'not closed as a client data error (DATA-0000)');
  });

  it('the SDK stops sending audio once the server ends the session', async () => {
    const client = await SttClient.connect({ url: s.wsUrl, model: 'local/pocketsphinx:en', key: s.key, init: { encoding: 'linear16', sample_rate: 16000 } });
    const errors: string[] = [];
    client.on('message', (m) => (m.type === 'error' ? errors.push(m.code) : undefined));
    const ending = new Promise<string>((r) => client.once('ending', r));
    const closed = new Promise<number>((r) => client.once('close', r));
    // A live microphone: 20 ms frames until the SDK refuses them.
    const frame = minute.subarray(0, 640);
    let refused = false;
    while (!refused) {
      refused = !client.sendAudio(frame);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(await ending, /^max_connection_duration_exceeded: /);
    assert.ok(client.ending, 'ending reason exposed');
    assert.equal(client.sendAudio(frame), false);
    assert.equal(await closed, 1008);
    assert.deepEqual(errors, ['max_connection_duration_exceeded']);
  });
});
