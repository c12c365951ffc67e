/**
 * Compressed audio on streaming routes, end to end: a real gateway on port 0, real WebSocket
 * clients, real speech from ../shared/data encoded at test time with Debian's ffmpeg (Ogg/Opus,
 * WebM/Opus, MP3, FLAC), the real engine. Also: undecodable audio → `invalid_audio` + close 1008,
 * and no ffmpeg child outlives its session (client vanishing mid-stream, server-side failures).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { serverMessageSchema as unifiedSchema } from '../src/protocol/unified/schema.js';
import { eventually, finalText, openSession, openSocket, type RecordingClient, startTestServer, type TestServer } from './helpers.js';
import { FixtureDir, ffmpegChildren } from './audio_fixtures.js';

const UNIFIED = 'local/pocketsphinx:en';
const DGSTYLE = 'local/pocketsphinx:en-deepgram';
const CLIP = 'asr_en/en_ls_1272-128104-0000.wav'; // "... the middle classes ... his gospel"

function assertAllValid(c: RecordingClient): void {
  for (const m of c.messages) {
    const r = unifiedSchema.safeParse(m);
    assert.ok(r.success, `invalid frame ${JSON.stringify(m)}`);
  }
}

describe('compressed audio on streaming routes', () => {
  let s: TestServer;
  let fx: FixtureDir;
  before(async () => {
    s = await startTestServer();
    fx = new FixtureDir();
  });
  after(async () => {
    await s.cleanup();
    fx.cleanup();
  });

  const cases = [
    { encoding: 'opus', format: 'ogg-opus' },
    { encoding: 'ogg_opus', format: 'ogg-opus-file' },
    { encoding: 'opus', format: 'webm' },
    { encoding: 'webm', format: 'webm' },
    { encoding: 'mp3', format: 'mp3' },
    { encoding: 'flac', format: 'flac' },
  ] as const;
  for (const { encoding, format } of cases) {
    it(`unified: ${format} declared as encoding=${encoding}, streamed in 4 KB chunks → transcript`, async () => {
      const bytes = fx.read(fx.encode([CLIP], format));
      const c = await openSession(s, UNIFIED, { encoding, sample_rate: 48000 });
      await c.sendBinary(bytes, 4096);
      c.sendJson({ type: 'close' });
      const closed = await c.closed;
      assert.equal(closed.code, 1000, JSON.stringify(c.messages));
      assertAllValid(c);
      const text = finalText(c);
      assert.match(text, /middle/, text);
      assert.match(text, /gospel/, text);
      assert.equal(c.ofType('error').length, 0);
    });
  }

  it('deepgram-style route: Ogg/Opus → Results with words', async () => {
    const bytes = fx.read(fx.encode([CLIP], 'ogg-opus'));
    const c = await openSession(s, DGSTYLE, { encoding: 'opus' });
    await c.sendBinary(bytes, 4096);
    c.sendJson({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
    assert.match(finalText(c), /gospel/);
  });

  it('finalize on a compressed stream: the final covers the audio sent before it, session stays open', async () => {
    const bytes = fx.read(fx.encode(['asr_en/en_cmu_goforward.wav'], 'ogg-opus', { gapSeconds: 0 }));
    const c = await openSession(s, UNIFIED, { encoding: 'opus', endpointing: false });
    await c.sendBinary(bytes, 2048);
    c.sendJson({ type: 'finalize' });
    const f = await c.waitFor((m) => m.type === 'final_transcript' && m.from_finalize === true);
    assert.match(f.transcript as string, /forward/);
    assert.equal(c.ws.readyState, c.ws.OPEN);
    c.sendJson({ type: 'close' });
    assert.equal((await c.closed).code, 1000);
  });

  it('random bytes declared as opus → undecodable-audio error frame (SLNG code invalid_request), close 1008, no ffmpeg left', async () => {
    const c = await openSession(s, UNIFIED, { encoding: 'opus' });
    c.ws.send(randomBytes(4000));
    const err = await c.waitType('error');
    assert.equal(err.code, 'invalid_request'); // SLNG code list (issue 9 §3); the detail is in the message
    assert.match(err.message as string, /opus/);
    const closed = await c.closed;
    assert.equal(closed.code, 1008);
    await eventually(() => ffmpegChildren().length === 0, 5000, 'ffmpeg children to exit');
  });

  it('an MP3 declared as opus → undecodable-audio error naming what was received', async () => {
    const bytes = fx.read(fx.encode([CLIP], 'mp3'));
    const c = await openSession(s, UNIFIED, { encoding: 'opus' });
    c.ws.send(bytes.subarray(0, 4096));
    const err = await c.waitType('error');
    assert.equal(err.code, 'invalid_request'); // SLNG code list (issue 9 §3); the detail is in the message
    assert.match(err.message as string, /MP3/);
    assert.equal((await c.closed).code, 1008);
  });

  it('an Ogg header followed by garbage → undecodable-audio error, close 1008', async () => {
    const bytes = fx.read(fx.encode([CLIP], 'ogg-opus'));
    const c = await openSession(s, UNIFIED, { encoding: 'ogg-opus' });
    // A valid first page (OpusHead), then noise: ffmpeg finds no further page.
    c.ws.send(Buffer.concat([bytes.subarray(0, 200), randomBytes(600 * 1024)]));
    const err = await c.waitType('error', 20000);
    assert.equal(err.code, 'invalid_request'); // SLNG code list (issue 9 §3); the detail is in the message
    assert.equal((await c.closed).code, 1008);
  });

  it('client vanishes mid-stream → its ffmpeg child is killed', async () => {
    const before = ffmpegChildren();
    const bytes = fx.read(fx.encode([CLIP], 'webm'));
    const c = await openSession(s, UNIFIED, { encoding: 'webm' });
    c.ws.send(bytes.subarray(0, bytes.length >> 1));
    await eventually(() => ffmpegChildren().length > before.length, 5000, 'an ffmpeg child to run');
    assert.equal(s.gateway.sessionCount(), 1);
    c.ws.terminate();
    await eventually(() => ffmpegChildren().length === 0, 5000, 'ffmpeg children to exit');
    await eventually(() => s.gateway.sessionCount() === 0, 5000, 'the session to close');
    await eventually(() => s.engines.get('pocketsphinx')!.stats().activeStreams === 0, 5000, 'the engine stream to be released');
  });

  describe('Deepgram /v1/listen', () => {
    const listen = (query: string) => openSocket(`${s.wsUrl}/v1/listen?${query}`, { Authorization: `Token ${s.key}` });
    const dgText = (c: RecordingClient, ch = 0) =>
      c
        .ofType('Results')
        .filter((m) => m.is_final && (m.channel_index as number[])[0] === ch)
        .map((m) => (m.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript)
        .join(' ');

    it('WebM/Opus without `encoding` (containerised audio, sniffed) → Results, Metadata, 1000', async () => {
      const bytes = fx.read(fx.encode([CLIP], 'webm'));
      const c = await listen('model=nova-3&punctuate=false');
      await c.sendBinary(bytes, 4096);
      c.sendJson({ type: 'CloseStream' });
      assert.equal((await c.closed).code, 1000);
      assert.match(dgText(c), /gospel/);
      assert.equal(c.messages.at(-1)!.type, 'Metadata');
    });

    it('MP3 with encoding=mp3 → Results', async () => {
      const bytes = fx.read(fx.encode([CLIP], 'mp3'));
      const c = await listen('encoding=mp3');
      await c.sendBinary(bytes, 4096);
      c.sendJson({ type: 'CloseStream' });
      assert.equal((await c.closed).code, 1000);
      assert.match(dgText(c), /middle/);
    });

    it('random bytes declared as opus → close 1008 DATA-0000, no ffmpeg left', async () => {
      const c = await listen('encoding=opus');
      c.ws.send(randomBytes(4000));
      const closed = await c.closed;
      assert.equal(closed.code, 1008);
      assert.match(closed.reason, /^DATA-0000/);
      await eventually(() => ffmpegChildren().length === 0, 5000, 'ffmpeg children to exit');
    });

    it('multichannel Ogg/Opus (stereo) → independent transcripts per channel', async () => {
      const bytes = fx.read(fx.transcode('diarization/librispeech_stereo_2spk.wav', 'ogg-opus-hq'));
      const c = await listen('encoding=ogg-opus&channels=2&multichannel=true');
      await c.sendBinary(bytes, 4096);
      c.sendJson({ type: 'CloseStream' });
      assert.equal((await c.closed).code, 1000);
      assert.match(dgText(c, 0), /complaint|wizard|curtain|confused|vanished/);
      assert.doesNotMatch(dgText(c, 0), /horizon|distant/);
      assert.match(dgText(c, 1), /horizon|distant|extremely/);
    });

    it('multichannel declared for 2 channels but the Ogg/Opus is mono → close 1008 DATA-0000', async () => {
      const bytes = fx.read(fx.encode([CLIP], 'ogg-opus'));
      const c = await listen('encoding=opus&channels=2&multichannel=true');
      await c.sendBinary(bytes.subarray(0, 8192));
      const closed = await c.closed;
      assert.equal(closed.code, 1008);
      assert.match(closed.reason, /^DATA-0000/);
    });
  });

  it('unknown encoding is still a config_error at init', async () => {
    const d = await openSocket(`${s.wsUrl}/v1/stt/${UNIFIED}`, { Authorization: `Bearer ${s.key}` });
    d.sendJson({ type: 'init', config: { encoding: 'speex' } });
    const err = await d.waitType('error');
    assert.equal(err.code, 'config_error');
    assert.match(err.message as string, /opus/);
    assert.equal((await d.closed).code, 1008);
  });
});
