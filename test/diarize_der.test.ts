/**
 * Unit tests of the DER scorer (src/diarize/der.ts) on hand-computed cases, the RTTM reader, and
 * the Hungarian assignment it uses (src/diarize/hungarian.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeDer, parseRttm, toRttm } from '../src/diarize/der.js';
import { maxWeightAssignment } from '../src/diarize/hungarian.js';

const close = (a: number, b: number, msg?: string): void => assert.ok(Math.abs(a - b) < 1e-9, `${msg ?? ''} ${a} ≉ ${b}`);

test('DER: a perfect hypothesis with other speaker names scores 0 and maps the names', () => {
  const ref = [{ start: 0, end: 5, speaker: 'A' }, { start: 5, end: 9, speaker: 'B' }, { start: 9, end: 12, speaker: 'A' }];
  const hyp = [{ start: 0, end: 5, speaker: 1 }, { start: 5, end: 9, speaker: 0 }, { start: 9, end: 12, speaker: 1 }];
  const r = computeDer(ref, hyp);
  assert.equal(r.der, 0);
  assert.equal(r.mapping.get('A'), '1');
  assert.equal(r.mapping.get('B'), '0');
});

test('DER: a late speaker change is confusion; the 0.25 s collar removes time around reference boundaries', () => {
  const ref = [{ start: 0, end: 10, speaker: 'A' }, { start: 10, end: 20, speaker: 'B' }];
  const hyp = [{ start: 0, end: 12, speaker: 'x' }, { start: 12, end: 20, speaker: 'y' }];
  // No collar: 2 s of B labelled x, over 20 s.
  let r = computeDer(ref, hyp, { collar: 0 });
  close(r.confusion, 2);
  close(r.total, 20);
  close(r.der, 0.1);
  // Collar 0.25: no-score [−0.25, 0.25], [9.75, 10.25] (A's end = B's start), [19.75, 20.25].
  // Scored reference = 20 − 0.25 − 0.5 − 0.25 = 19; confusion = 12 − 10.25 = 1.75.
  r = computeDer(ref, hyp);
  close(r.total, 19);
  close(r.confusion, 1.75);
  close(r.der, 1.75 / 19);
  assert.equal(r.missed, 0);
  assert.equal(r.falseAlarm, 0);
});

test('DER: missed speech and false alarm', () => {
  const ref = [{ start: 0, end: 10, speaker: 'A' }];
  const hyp = [{ start: 2, end: 12, speaker: 'x' }];
  const r = computeDer(ref, hyp, { collar: 0 });
  close(r.missed, 2);
  close(r.falseAlarm, 2);
  close(r.confusion, 0);
  close(r.der, 0.4);
  // With the collar: scored ref = [0.25, 9.75] = 9.5 s; missed [0.25, 2] = 1.75; FA [10.25, 12] = 1.75.
  const c = computeDer(ref, hyp);
  close(c.total, 9.5);
  close(c.missed, 1.75);
  close(c.falseAlarm, 1.75);
});

test('DER: overlapped reference speech counts once per speaker (md-eval default) and can be skipped', () => {
  const ref = [{ start: 0, end: 10, speaker: 'A' }, { start: 5, end: 10, speaker: 'B' }];
  const one = [{ start: 0, end: 10, speaker: 'x' }];
  let r = computeDer(ref, one, { collar: 0 });
  close(r.total, 15);
  close(r.missed, 5);
  close(r.confusion, 0);
  close(r.der, 5 / 15);
  r = computeDer(ref, [...one, { start: 5, end: 10, speaker: 'y' }], { collar: 0 });
  close(r.der, 0);
  // Two system speakers in the overlap, one of them wrong: confusion = min(2,2) − correct(1) = 1 per second.
  r = computeDer(ref, [{ start: 0, end: 10, speaker: 'x' }, { start: 5, end: 10, speaker: 'x2' }, { start: 0, end: 5, speaker: 'x2' }], { collar: 0 });
  // A→x (10 s overlap), B→x2 (5 s): in [0,5) ref {A}, hyp {x, x2}: FA 5; in [5,10) both right.
  close(r.falseAlarm, 5);
  close(r.confusion, 0);
  // skipOverlap drops [5,10): total = 5.
  r = computeDer(ref, one, { collar: 0, skipOverlap: true });
  close(r.total, 5);
  close(r.der, 0);
});

test('DER: the speaker mapping is optimal (Hungarian), not greedy', () => {
  // Overlaps: A–x 6 s, A–y 4 s, B–x 4 s. Greedy takes A→x (6) and leaves B unmapped (total 6);
  // the optimum is A→y, B→x (total 8): errors are A's 6 s labelled x.
  const ref = [{ start: 0, end: 10, speaker: 'A' }, { start: 10, end: 14, speaker: 'B' }];
  const hyp = [{ start: 0, end: 6, speaker: 'x' }, { start: 6, end: 10, speaker: 'y' }, { start: 10, end: 14, speaker: 'x' }];
  const r = computeDer(ref, hyp, { collar: 0 });
  assert.equal(r.mapping.get('A'), 'y');
  assert.equal(r.mapping.get('B'), 'x');
  close(r.confusion, 6);
  close(r.der, 6 / 14);
});

test('DER: a speaker overlapping itself is merged first; empty inputs', () => {
  const ref = [{ start: 0, end: 5, speaker: 'A' }, { start: 3, end: 8, speaker: 'A' }];
  const r = computeDer(ref, [{ start: 0, end: 8, speaker: 0 }], { collar: 0 });
  close(r.total, 8);
  close(r.der, 0);
  assert.equal(computeDer([], []).der, 0);
  assert.equal(computeDer([], [{ start: 0, end: 1, speaker: 0 }]).der, Infinity);
  close(computeDer([{ start: 0, end: 4, speaker: 'A' }], [], { collar: 0 }).der, 1);
});

test('DER: uem limits the scored time', () => {
  const ref = [{ start: 0, end: 10, speaker: 'A' }];
  const hyp = [{ start: 0, end: 5, speaker: 0 }];
  const r = computeDer(ref, hyp, { collar: 0, uem: { start: 0, end: 6 } });
  close(r.total, 6);
  close(r.missed, 1);
});

test('RTTM: parses SPEAKER lines per file, ignores comments/other records, rejects malformed records, round-trips', () => {
  const text = ';; comment\nSPEAKER f1 1 1.440 11.872 <NA> <NA> MEE009 <NA> <NA>\nSPKR-INFO f1 1 <NA> <NA> <NA> unknown MEE009 <NA>\n\nSPEAKER f2 1 0.5 1 <NA> <NA> s <NA> <NA>\n';
  const m = parseRttm(text);
  assert.deepEqual([...m.keys()], ['f1', 'f2']);
  const t = m.get('f1')![0]!;
  assert.equal(t.speaker, 'MEE009');
  close(t.start, 1.44);
  close(t.end, 13.312);
  assert.throws(() => parseRttm('SPEAKER f 1 abc 1 <NA> <NA> s'), /RTTM line 1/);
  assert.throws(() => parseRttm('SPEAKER f 1 1 -2 <NA> <NA> s'), /malformed/);
  assert.throws(() => parseRttm('SPEAKER f 1 1 2'), /malformed/);
  const back = parseRttm(toRttm('f2', m.get('f2')!));
  assert.deepEqual(back.get('f2'), [{ start: 0.5, end: 1.5, speaker: 's' }]);
});

test('Hungarian: maximum-weight assignment on square and rectangular matrices', () => {
  assert.deepEqual(maxWeightAssignment([[1, 2, 3], [2, 4, 6], [3, 6, 9]]).reduce((a, j, i) => a + [[1, 2, 3], [2, 4, 6], [3, 6, 9]][i]![j]!, 0), 14);
  assert.deepEqual(maxWeightAssignment([[7, 0], [8, 1], [0, 0]]), [0, 1, -1]);
  assert.deepEqual(maxWeightAssignment([[0, 5, 1]]), [1]);
  assert.deepEqual(maxWeightAssignment([]), []);
  assert.deepEqual(maxWeightAssignment([[0, 0]]), [-1]);
});
