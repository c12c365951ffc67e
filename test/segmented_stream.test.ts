/**
 * SegmentedStream logic with a scripted VAD and a scripted decoder (the real engine is covered end
 * to end elsewhere): speculative cuts, decoder-anchored endpoints, merging of resumed speech,
 * finalize/close ordering. Positions are in samples, so nothing here depends on wall-clock timing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Endpointer } from '../src/audio/vad.js';
import { PARTIAL_FALLBACK_CONFIDENCE, SegmentedStream, type PartialHypothesis, type UtteranceDecoder, type UtteranceResult } from '../src/engines/stt/segmented.js';
import type { SttFinal, SttPartial } from '../src/engines/stt/types.js';

const W = 512;
const RATE = 16000;

/** A decoder whose successive utterance results are scripted. */
function scriptedDecoder(results: UtteranceResult[]): UtteranceDecoder & { ends: number } {
  const d = {
    ends: 0,
    process: async () => '',
    endUtterance: async () => results[d.ends++] ?? { text: '', confidence: 0, words: [] },
  };
  return d;
}

/** Build a stream whose VAD answers `flags[i]` for window i. */
function streamWith(flags: boolean[], decoder: UtteranceDecoder, endpointingMs: number | null = 300) {
  let i = 0;
  const vad = { acceptWindow: () => flags[i++] ?? false };
  const endpointer = new Endpointer({ sampleRate: RATE, endpointingMs, vadHangoverMs: 160, vadOnsetDelayMs: 160, pauseMs: endpointingMs === null ? null : endpointingMs - 150 });
  const s = new SegmentedStream({
    decoder,
    vad: { vad, endpointer },
    sampleRate: RATE,
    config: { language: 'en', partials: false, wordTimestamps: true, vad: true, endpointingMs },
    release: () => {},
  });
  const finals: SttFinal[] = [];
  s.on('final', (f) => finals.push(f));
  return { s, finals };
}

/** Write `n` windows one at a time, letting queued decoder work run between windows (like real time). */
async function feed(s: SegmentedStream, n: number): Promise<void> {
  for (let k = 0; k < n; k++) {
    s.write(new Int16Array(W));
    await new Promise((r) => setImmediate(r));
  }
}

const word = (w: string, start: number, end: number) => ({ word: w, start, end, confidence: 0.8 });
const flags = (...runs: [boolean, number][]) => runs.flatMap(([v, n]) => Array<boolean>(n).fill(v));

describe('SegmentedStream', () => {
  it('endpoints at last recognised word end + endpointing when the VAD releases late', async () => {
    // Speech flags for windows 10..45: the VAD reports silence at the end of window 46 (1.504 s), so
    // its own end-of-speech estimate is 1.344 s and its endpoint 1.644 s. The decoder says the last
    // word ended at 1.3 s: the utterance ends at the window reaching 1.6 s.
    const d = scriptedDecoder([{ text: 'hello there', confidence: 0.8, words: [word('hello', 0.3, 0.7), word('there', 0.75, 1.3)] }]);
    const { s, finals } = streamWith(flags([false, 10], [true, 36], [false, 40]), d);
    await feed(s, 86);
    await s.close();
    assert.equal(finals.length, 1);
    const f = finals[0]!;
    assert.equal(f.speechFinal, true);
    assert.equal(f.transcript, 'hello there');
    const spanEnd = f.start + f.duration;
    assert.ok(spanEnd >= 1.6 - 1e-9 && spanEnd < 1.6 + W / RATE, `utterance ended at ${spanEnd} s, expected the window reaching 1.6 s`);
    assert.equal(f.words!.at(-1)!.end, 1.3 + f.start);
  });

  it('speech resuming after a cut continues the same utterance: one final, merged words on the stream clock', async () => {
    // Speech flags 10..30 (speech ends ≈ 0.99 s), a 4-window pause (128 ms VAD-off + 160 ms
    // hangover < 300 ms: cut, no endpoint), speech 35..58, silence.
    const d = scriptedDecoder([
      { text: 'alpha', confidence: 0.6, words: [word('alpha', 0.35, 0.95)] },
      { text: 'beta', confidence: 1.0, words: [word('beta', 0.05, 0.7)] },
    ]);
    const { s, finals } = streamWith(flags([false, 10], [true, 21], [false, 4], [true, 24], [false, 60]), d);
    await feed(s, 119);
    await s.close();
    assert.equal(finals.length, 1, JSON.stringify(finals));
    const f = finals[0]!;
    assert.equal(f.transcript, 'alpha beta');
    assert.equal(f.speechFinal, true);
    assert.deepEqual(f.words!.map((w) => w.word), ['alpha', 'beta']);
    const [a, b] = f.words!;
    assert.ok(b!.start > a!.end, 'second segment offset by its own start');
    assert.ok(Math.abs(f.confidence - 0.8) < 1e-9, 'confidence is the mean over all words');
  });

  it('a decoder endpoint never comes more than the guard before the VAD estimate of end of speech', async () => {
    // The decoder's last word ends at 0.3 s although the VAD heard speech until ≈ 1.47 s (e.g. an
    // unrecognised filler): the endpoint waits for the VAD estimate minus the guard, plus endpointing.
    const d = scriptedDecoder([{ text: 'um', confidence: 0.5, words: [word('um', 0.1, 0.3)] }]);
    const { s, finals } = streamWith(flags([false, 10], [true, 36], [false, 40]), d);
    await feed(s, 86);
    await s.close();
    const vadEnd = (47 * W) / RATE - 0.16; // VAD off reported at the end of window 46, minus its hangover
    const spanEnd = finals[0]!.start + finals[0]!.duration;
    assert.ok(spanEnd >= vadEnd - 0.1 + 0.3 - 1e-9, `ended at ${spanEnd} s, before ${vadEnd - 0.1 + 0.3} s`);
  });

  it('finalize answers after earlier audio, with from_finalize; an idle finalize gives an empty final', async () => {
    const d = scriptedDecoder([{ text: 'one', confidence: 0.9, words: [word('one', 0.2, 0.5)] }]);
    const { s, finals } = streamWith(flags([false, 5], [true, 30]), d, null);
    await feed(s, 35);
    s.finalize();
    s.finalize();
    await s.close();
    assert.deepEqual(
      finals.map((f) => [f.transcript, f.fromFinalize, f.speechFinal]),
      [
        ['one', true, false],
        ['', true, false],
      ],
    );
  });

  it('close drains every final; abort releases exactly once and emits nothing more', async () => {
    let released = 0;
    const d = scriptedDecoder([{ text: 'x', confidence: 1, words: [word('x', 0, 0.1)] }]);
    const s = new SegmentedStream({
      decoder: d,
      vad: null,
      sampleRate: RATE,
      config: { language: 'en', partials: false, wordTimestamps: false, vad: false, endpointingMs: null },
      release: () => released++,
    });
    const finals: SttFinal[] = [];
    s.on('final', (f) => finals.push(f));
    s.write(new Int16Array(RATE));
    await s.close();
    assert.equal(finals.length, 1);
    assert.equal(finals[0]!.words, undefined, 'no words unless asked for');
    s.abort();
    s.abort();
    assert.equal(released, 1);
  });

  describe('partials with words, and finals never carrying fewer words than the partials showed (issue 9)', () => {
    /** A stream with partials and word timestamps on, whose VAD answers `vadFlags[i]` for window i. */
    function wordStream(vadFlags: boolean[], decoder: UtteranceDecoder) {
      let i = 0;
      const vad = { acceptWindow: () => vadFlags[i++] ?? false };
      const endpointer = new Endpointer({ sampleRate: RATE, endpointingMs: 300, vadHangoverMs: 160, vadOnsetDelayMs: 160, pauseMs: 150 });
      const s = new SegmentedStream({
        decoder,
        vad: { vad, endpointer },
        sampleRate: RATE,
        config: { language: 'en', partials: true, wordTimestamps: true, vad: true, endpointingMs: 300 },
        release: () => {},
      });
      const finals: SttFinal[] = [];
      const partials: SttPartial[] = [];
      s.on('final', (f) => finals.push(f));
      s.on('partial', (p) => partials.push(p));
      return { s, finals, partials };
    }
    const pw = (w: string, start: number, end: number) => ({ word: w, start, end });

    it('an empty end-of-utterance result after partials with words: the final carries the last partial\'s words', async () => {
      const hyps: PartialHypothesis[] = [
        { text: 'for', words: [pw('for', 0.2, 0.5)] },
        { text: 'for queen', words: [pw('for', 0.2, 0.5), pw('queen', 0.6, 0.9)] },
      ];
      // The first segment's partials grow; after its (speculative) end the rest is silence.
      let k = 0;
      let ended = false;
      const d: UtteranceDecoder = {
        process: async () => '',
        processWithWords: async () => (ended ? { text: '', words: [] } : hyps[Math.min(k++, hyps.length - 1)]!),
        endUtterance: async () => {
          ended = true;
          return { text: '', confidence: 0, words: [] };
        },
      };
      const { s, finals, partials } = wordStream(flags([false, 10], [true, 36], [false, 40]), d);
      await feed(s, 86);
      await s.close();
      assert.ok(partials.length > 0);
      assert.equal(finals.length, 1, JSON.stringify(finals));
      const f = finals[0]!;
      assert.equal(f.transcript, 'for queen');
      assert.deepEqual(
        f.words!.map((w) => [w.word, +(w.start - f.start).toFixed(6), +(w.end - f.start).toFixed(6), w.confidence]),
        [
          ['for', 0.2, 0.5, PARTIAL_FALLBACK_CONFIDENCE],
          ['queen', 0.6, 0.9, PARTIAL_FALLBACK_CONFIDENCE],
        ],
      );
      assert.equal(f.confidence, PARTIAL_FALLBACK_CONFIDENCE);
      assert.equal(s.partialFallbackCount, 1);
    });

    it('without partial words the fallback spreads the partial\'s words over the segment; a non-empty result is kept as decoded', async () => {
      let ended = false;
      const d = {
        process: async () => (ended ? '' : 'one two'),
        endUtterance: async () => {
          ended = true;
          return { text: '', confidence: 0, words: [] };
        },
      };
      const a = wordStream(flags([false, 10], [true, 36], [false, 40]), d);
      await feed(a.s, 86);
      await a.s.close();
      const f = a.finals[0]!;
      assert.equal(f.transcript, 'one two');
      assert.equal(f.words!.length, 2);
      assert.ok(f.words![0]!.start >= f.start && f.words![1]!.end <= f.start + f.duration + 1e-9 && f.words![0]!.end <= f.words![1]!.start + 1e-9);

      // A later decode that genuinely differs (fewer words, but not none) is the final.
      let ends = 0;
      const d2 = {
        process: async () => (ends > 0 ? '' : 'one two three'),
        endUtterance: async () => (ends++ === 0 ? { text: 'one', confidence: 0.9, words: [word('one', 0.2, 0.4)] } : { text: '', confidence: 0, words: [] }),
      };
      const b = wordStream(flags([false, 10], [true, 36], [false, 40]), d2);
      await feed(b.s, 86);
      await b.s.close();
      assert.equal(b.finals[0]!.transcript, 'one');
      assert.equal(b.s.partialFallbackCount, 0);
    });

    it('partials carry words on the stream clock: held segments with their posteriors, live words with their stability', async () => {
      // Speech 10..30, a short pause (cut, no endpoint), speech 35..58, silence.
      let seg = 0;
      const liveHyps = [
        [{ text: 'alpha', words: [pw('alpha', 0.3, 0.9)] }],
        [{ text: 'beta', words: [pw('beta', 0.05, 0.5)] }],
      ];
      let n = 0;
      const d: UtteranceDecoder = {
        process: async () => '',
        processWithWords: async () => liveHyps[seg]?.[0] ?? { text: '', words: [] },
        endUtterance: async () => {
          const r =
            seg === 0
              ? { text: 'alpha', confidence: 0.6, words: [word('alpha', 0.35, 0.95)] }
              : seg === 1
                ? { text: 'beta', confidence: 1, words: [word('beta', 0.05, 0.7)] }
                : { text: '', confidence: 0, words: [] };
          seg++;
          n++;
          return r;
        },
      };
      const { s, partials, finals } = wordStream(flags([false, 10], [true, 21], [false, 4], [true, 24], [false, 60]), d);
      await feed(s, 119);
      await s.close();
      assert.ok(n >= 2);
      const first = partials.find((p) => p.transcript === 'alpha')!;
      assert.ok(first, JSON.stringify(partials.map((p) => p.transcript)));
      assert.equal(first.words!.length, 1);
      assert.ok(Math.abs(first.words![0]!.start - (first.start + 0.3)) < 1e-9, 'live word times are on the stream clock');
      assert.equal(first.words![0]!.confidence, 0.5, 'a word seen in one partial: stability 1/2');
      assert.equal(first.confidence, 0.5);
      const merged = partials.find((p) => p.transcript === 'alpha beta')!;
      assert.ok(merged, JSON.stringify(partials.map((p) => p.transcript)));
      assert.deepEqual(merged.words!.map((w) => w.word), ['alpha', 'beta']);
      assert.equal(merged.words![0]!.confidence, 0.8, 'a held segment\'s word carries its posterior');
      assert.ok(merged.words![1]!.start > merged.words![0]!.end, 'the live segment is offset by its own start');
      assert.equal(finals.length, 1);
      assert.equal(finals[0]!.transcript, 'alpha beta');
    });

    it('stability grows as a word survives consecutive partials', async () => {
      // The same word in the first partials (only the first of them is emitted: same text), then a
      // new word: the first word (start moved by 10 ms: the same word) has survived three partials.
      let calls = 0;
      let ended = false;
      const d: UtteranceDecoder = {
        process: async () => '',
        processWithWords: async () => {
          if (ended) return { text: '', words: [] };
          calls++;
          return calls < 3 ? { text: 'steady', words: [pw('steady', 0.3, 0.6)] } : { text: 'steady on', words: [pw('steady', 0.31, 0.6), pw('on', 0.6, 0.8)] };
        },
        endUtterance: async () => {
          const r = ended ? { text: '', confidence: 0, words: [] } : { text: 'steady on', confidence: 0.9, words: [word('steady', 0.3, 0.6), word('on', 0.6, 0.8)] };
          ended = true;
          return r;
        },
      };
      const { s, partials } = wordStream(flags([false, 10], [true, 36], [false, 40]), d);
      await feed(s, 86);
      await s.close();
      const on = partials.find((p) => p.transcript === 'steady on')!;
      assert.ok(on, JSON.stringify(partials.map((p) => p.transcript)));
      assert.equal(on.words![0]!.confidence, 3 / 4, 'survived three consecutive partials');
      assert.equal(on.words![1]!.confidence, 1 / 2);
      assert.equal(on.confidence, (3 / 4 + 1 / 2) / 2);
    });
  });
});
