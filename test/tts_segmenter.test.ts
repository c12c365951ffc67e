/**
 * The incremental text segmenter (src/text/segmenter.ts): sentence/clause boundaries on LLM-token
 * streams, abbreviations, decimals, length cuts, flush/clear.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TextSegmenter, cleanSegment } from '../src/text/segmenter.js';
import { segmentText } from '../src/session/tts_render.js';

/** Feed `tokens` one by one; return [segments emitted after each token]. */
function feed(seg: TextSegmenter, tokens: string[]): string[][] {
  return tokens.map((t) => seg.push(t));
}

describe('TextSegmenter', () => {
  it('releases a sentence as soon as the whitespace after its full stop arrives, token by token', () => {
    const seg = new TextSegmenter();
    const out = feed(seg, ['The', ' weather', ' is', ' nice', '.', ' Tomorrow', ' it', ' rains', '.']);
    assert.deepEqual(out.slice(0, 5), [[], [], [], [], []], 'a "." at the end of the stream is not yet a boundary');
    assert.deepEqual(out[5], ['The weather is nice.']);
    assert.deepEqual(out.slice(6).flat(), []);
    assert.equal(seg.flush(), 'Tomorrow it rains.');
    assert.equal(seg.flush(), null, 'flush empties the buffer');
  });

  it('does not split decimals, abbreviations or initials', () => {
    assert.deepEqual(segmentText('Pi is 3.14 and e is 2.72 today. Mr. Smith met Dr. Jones at St. Mary and J. R. R. Tolkien, e.g. on Monday. Done.'), [
      'Pi is 3.14 and e is 2.72 today.',
      'Mr. Smith met Dr. Jones at St. Mary and J. R. R. Tolkien, e.g. on Monday.',
      'Done.',
    ]);
  });

  it('splits the first clause early, later clauses only when long', () => {
    const seg = new TextSegmenter({ firstClauseChars: 10, clauseChars: 60 });
    assert.deepEqual(seg.push('Hello there, my friend, how are you doing today, I wonder. '), ['Hello there,', 'my friend, how are you doing today, I wonder.']);
    assert.deepEqual(seg.push('Yes, fine. '), ['Yes, fine.'], 'after a sentence boundary the eager first-clause rule does not apply again');
    seg.flush();
    assert.deepEqual(seg.push('Again now, after a flush. '), ['Again now,', 'after a flush.'], 'a flush re-arms the eager first clause');
  });

  it('handles ?, !, closing quotes, newlines, CJK and Devanagari terminators', () => {
    assert.deepEqual(segmentText('Really?! "Yes." (Sure.) Line one\nLine two\n\n'), ['Really?!', '"Yes."', '(Sure.)', 'Line one', 'Line two']);
    assert.deepEqual(segmentText('你好。今天天气很好！'), ['你好。', '今天天气很好！']);
    assert.deepEqual(segmentText('नमस्ते। आप कैसे हैं?'), ['नमस्ते।', 'आप कैसे हैं?']);
  });

  it('cuts a segment with no boundary at the last space before maxChars', () => {
    const words = Array.from({ length: 100 }, (_, i) => `word${i}`).join(' ');
    const segs = segmentText(words, { maxChars: 50 });
    assert.ok(segs.length > 10);
    for (const s of segs) assert.ok(s.length <= 50, `${s.length} > 50: ${s}`);
    assert.equal(segs.join(' '), words, 'nothing is lost or split inside a word');
    const noSpace = 'x'.repeat(120);
    assert.deepEqual(segmentText(noSpace, { maxChars: 50 }).join(''), noSpace);
  });

  it('drops unspeakable segments, collapses whitespace, and clear() forgets everything', () => {
    assert.equal(cleanSegment('  …  — '), null);
    assert.equal(cleanSegment(' a \n\t b '), 'a b');
    const seg = new TextSegmenter();
    seg.push('Something half');
    assert.ok(seg.pendingChars > 0);
    seg.clear();
    assert.equal(seg.pendingChars, 0);
    assert.equal(seg.flush(), null);
  });
});
