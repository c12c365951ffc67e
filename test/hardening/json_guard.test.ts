/**
 * src/util/json_guard.ts: the structural scan that bounds JSON before `JSON.parse` (issue 14 #1).
 * Pure, no server: strings (with escapes, across chunk boundaries) never count as structure.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonShapeScanner, jsonShapeError } from '../../src/util/json_guard.js';

const L = { maxDepth: 4, maxTokens: 20 };

describe('json_guard', () => {
  it('accepts shallow documents and refuses the first level past maxDepth', () => {
    assert.equal(jsonShapeError('{"a":[[1]]}', L), null);
    assert.match(jsonShapeError('[[[[[1]]]]]', L) ?? '', /nested deeper than 4 levels/);
  });

  it('counts values, keys and separators; refuses more than maxTokens', () => {
    assert.equal(jsonShapeError('[1,2,3]', L), null);
    assert.match(jsonShapeError(`[${Array(30).fill(1).join(',')}]`, L) ?? '', /more than 20 values/);
  });

  it('brackets, quotes and backslashes inside strings are not structure', () => {
    assert.equal(jsonShapeError(JSON.stringify({ t: '[[[[[[{{{{{,,,,,::::: \\" \\\\ "' }), L), null);
    assert.equal(jsonShapeError('{"a":"\\\\"}', L), null); // an escaped backslash ends before the quote
    assert.match(jsonShapeError('{"a":"\\\\",[[[[1]]]]}', L) ?? '', /nested/);
  });

  it('gives the same answer whatever the chunking (bytes), including a split escape', () => {
    const doc = Buffer.from(JSON.stringify({ a: 'x\\"[[[[[', b: [[1, 2]], c: 'é"' }));
    const whole = new JsonShapeScanner(L).push(doc);
    for (let cut = 1; cut < doc.length; cut++) {
      const s = new JsonShapeScanner(L);
      s.push(doc.subarray(0, cut));
      assert.equal(s.push(doc.subarray(cut)), whole, `cut at ${cut}`);
    }
    assert.equal(whole, null);
  });

  it('a long base64 string is one token', () => {
    assert.equal(jsonShapeError(JSON.stringify({ type: 'audio', data: 'QUJD'.repeat(500_000) }), L), null);
  });
});
