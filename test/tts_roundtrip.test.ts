/**
 * Round trip through the gateway's own routes: the 10 sentences of shared/spec/engines.md §8 are
 * synthesised with the flite voice `rms` over the unified TTS WebSocket (16 kHz linear16), then
 * transcribed through voxgate's STT route `local/pocketsphinx:en`. Issue #4 requires WER ≤ 10 %
 * (engines.md §2.3: 1.9 % for rms with stock PocketSphinx). Measured through voxgate (pruned
 * search): rms passes; kal16 11.3 %, slt 10.4 %, awb 13.2 % — hence rms.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeWords, wordErrors } from '../bench/lib/stats.js';
import { finalText, openSession, silence, startTestServer, type TestServer } from './helpers.js';
import { openTtsSession } from './tts_helpers.js';

/** engines.md §8 "10 sentences". */
export const ROUND_TRIP_SENTENCES = [
  'the quick brown fox jumps over the lazy dog',
  'please call me back when you get home tonight',
  'the weather today will be sunny with a high of seventy degrees',
  "i would like to book a table for two at seven o'clock",
  'turn left at the next intersection and drive for two miles',
  'the meeting has been moved to thursday afternoon',
  'can you send me the report before the end of the week',
  'my flight leaves from the airport at nine in the morning',
  'the children played in the park until it started to rain',
  'we need to buy milk bread and eggs from the store',
];

describe('TTS → STT round trip', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s.cleanup();
  });

  it('flite (rms) audio transcribed by voxgate STT: WER ≤ 10 % over the 10 sentences', async (t) => {
    const tts = await openTtsSession(s, 'local/flite:en', { voice: 'rms', config: { encoding: 'linear16', sample_rate: 16000, pacing: false } });
    let errors = 0;
    let words = 0;
    const report: string[] = [];
    for (const sentence of ROUND_TRIP_SENTENCES) {
      const from = tts.frames.length;
      tts.send({ type: 'text', text: sentence, flush: true });
      const fl = await tts.waitType('flushed', 15000, from);
      const audio = tts.audio(from, fl);
      assert.ok(audio.length > 16000, `audio for "${sentence}"`);
      const stt = await openSession(s, 'local/pocketsphinx:en');
      await stt.sendBinary(Buffer.concat([silence(300), audio, silence(800)]));
      stt.sendJson({ type: 'close' });
      await stt.closed;
      const hyp = finalText(stt);
      const e = wordErrors(normalizeWords(sentence), normalizeWords(hyp));
      errors += e.substitutions + e.deletions + e.insertions;
      words += e.refWords;
      report.push(`${sentence} → ${hyp}`);
    }
    tts.ws.close();
    const wer = errors / words;
    t.diagnostic(`WER ${(wer * 100).toFixed(1)} % (${errors}/${words})`);
    assert.ok(wer <= 0.1, `WER ${(wer * 100).toFixed(1)} % over ${words} words:\n${report.join('\n')}`);
  });
});
