/**
 * Tests of the classical diarizer (src/diarize/classical.ts, issue 13) on ../shared/data/diarization
 * with its RTTMs: offline DER on the clean 2–3 speaker files, pooled DER with the count unknown,
 * speaker-count hints, the online mode (stable labels, mapping onto emitted labels, capped history)
 * and bad input. Bounds are looser than measured (bench/results/diarize.json) but catch a broken
 * diarizer (a single-speaker answer scores 50–67 % on these files).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ClassicalDiarizer, createDiarizer, SingleSpeakerDiarizer, MfccExtractor, RealFft, mapClustersToLabels } from '../src/diarize/index.js';
import { computeDer, parseRttm, type ScoredTurn } from '../src/diarize/der.js';
import { runOnline, simulatedFinals } from '../bench/lib/diarize_online.js';
import { readSharedWavSync, sharedData } from './paths.js';

interface Case { pcm: Int16Array; ref: ScoredTurn[]; k: number }
const cache = new Map<string, Case>();
function load(name: string): Case {
  let c = cache.get(name);
  if (!c) {
    const ref = [...parseRttm(readFileSync(sharedData(`diarization/${name}.rttm`), 'utf8')).values()].flat();
    c = { pcm: readSharedWavSync(`diarization/${name}.wav`), ref, k: new Set(ref.map((r) => r.speaker)).size };
    cache.set(name, c);
  }
  return c;
}
const CLEAN = ['pyannote_sample', 'picovoice_falcon_3spk'];
const ALL = ['pyannote_sample', 'picovoice_falcon_3spk', 'ami_pyannote_dev00', 'ami_pyannote_tst00'];
const diarizer = new ClassicalDiarizer();

test('MFCC: real FFT power spectrum equals a direct DFT; frames at a 10 ms hop', () => {
  const n = 16;
  const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 0.7) + 0.3 * Math.cos(i * 2.1) + (i % 3) * 0.1);
  const out = new Float64Array(n / 2 + 1);
  new RealFft(n).power(x, out);
  for (let k = 0; k <= n / 2; k++) {
    let re = 0, im = 0;
    for (let t = 0; t < n; t++) { re += x[t]! * Math.cos((2 * Math.PI * k * t) / n); im -= x[t]! * Math.sin((2 * Math.PI * k * t) / n); }
    assert.ok(Math.abs(out[k]! - (re * re + im * im)) < 1e-9, `bin ${k}`);
  }
  const fx = new MfccExtractor(16000);
  const s = fx.stream();
  // 1 s in uneven chunks gives the same frames as at once.
  const pcm = load('picovoice_falcon_3spk').pcm.subarray(32000, 48000);
  const whole = fx.stream().push(pcm);
  const a = s.push(pcm.subarray(0, 1234)), b = s.push(pcm.subarray(1234));
  assert.equal(whole.count, 98); // (16000 − 400) / 160 + 1
  assert.equal(a.count + b.count, whole.count);
  assert.deepEqual([...a.data, ...b.data], [...whole.data]);
});

for (const name of CLEAN) {
  test(`offline: ${name} — DER ≤ 10 % with the count given, ≤ 25 % unknown, ≥ 2 speakers found`, () => {
    const { pcm, ref, k } = load(name);
    const given = computeDer(ref, diarizer.diarize(pcm, 16000, { numSpeakers: k }));
    const hyp = diarizer.diarize(pcm, 16000);
    const unknown = computeDer(ref, hyp);
    assert.ok(given.der <= 0.1, `given DER ${given.der}`);
    assert.ok(unknown.der <= 0.25, `unknown DER ${unknown.der}`);
    assert.ok(new Set(hyp.map((t) => t.speaker)).size >= 2);
    // Turns: ordered, non-overlapping, inside the file, labels from 0.
    for (let i = 0; i < hyp.length; i++) {
      assert.ok(hyp[i]!.end > hyp[i]!.start && hyp[i]!.start >= 0 && hyp[i]!.end <= pcm.length / 16000 + 1e-9);
      if (i) assert.ok(hyp[i]!.start >= hyp[i - 1]!.end - 1e-9);
    }
    assert.equal(hyp[0]!.speaker, 0);
  });
}

test('offline: pooled DER over all RTTM files with the count unknown ≤ 45 %, and far better than one speaker', () => {
  let err = 0, tot = 0, errOne = 0, totOne = 0;
  const single = new SingleSpeakerDiarizer();
  for (const name of ALL) {
    const { pcm, ref } = load(name);
    const r = computeDer(ref, diarizer.diarize(pcm, 16000));
    err += r.der * r.total;
    tot += r.total;
    const one = computeDer(ref, single.diarize(pcm, 16000));
    errOne += one.der * one.total;
    totOne += one.total;
  }
  assert.ok(err / tot <= 0.45, `pooled DER ${err / tot}`);
  assert.ok(err / tot < errOne / totOne - 0.1, `pooled ${err / tot} vs single speaker ${errOne / totOne}`);
});

test('offline: speaker-count hints bound the clustering', () => {
  const { pcm } = load('picovoice_falcon_3spk');
  const count = (o: object): number => new Set(diarizer.diarize(pcm, 16000, o).map((t) => t.speaker)).size;
  assert.equal(count({ numSpeakers: 2 }), 2);
  assert.ok(count({ maxSpeakers: 2 }) <= 2);
  assert.ok(count({ minSpeakers: 4 }) >= 4);
  assert.equal(count({ numSpeakers: 1 }), 1);
  // Nonsense hints are ignored, not fatal.
  assert.ok(count({ numSpeakers: NaN, minSpeakers: -3, maxSpeakers: Infinity }) >= 2);
});

test('offline: silence, empty and tiny inputs give no turns; energy fallback at 8 kHz still finds speakers', () => {
  assert.deepEqual(diarizer.diarize(new Int16Array(0), 16000), []);
  assert.deepEqual(diarizer.diarize(new Int16Array(16000 * 3), 16000), []);
  assert.deepEqual(diarizer.diarize(new Int16Array(10), 16000), []);
  assert.throws(() => diarizer.diarize(new Int16Array(10), 0), RangeError);
  const { pcm, ref } = load('picovoice_falcon_3spk');
  const down = new Int16Array(Math.floor(pcm.length / 2));
  for (let i = 0; i < down.length; i++) down[i] = (pcm[2 * i]! + pcm[2 * i + 1]!) >> 1;
  const r = computeDer(ref, diarizer.diarize(down, 8000, { numSpeakers: 3 }));
  assert.ok(r.der <= 0.25, `8 kHz DER ${r.der}`);
});

test('online: falcon (three speakers in turn) gets three labels in order of appearance, DER ≤ 10 %', () => {
  const { pcm, ref } = load('picovoice_falcon_3spk');
  const run = runOnline(createDiarizer(), pcm, 16000);
  assert.deepEqual(run.finals.map((f) => [...new Set(f.labels.map((l) => l.speaker))]), [[0], [1], [2]]);
  assert.ok(computeDer(ref, run.turns).der <= 0.1);
  for (const f of run.finals) for (const l of f.labels) assert.ok(l.confidence >= 0 && l.confidence <= 1);
});

test('online: a returning speaker gets the label already emitted for them (A B A)', () => {
  // spk1 1.7–3.9 s, spk2 6.2–11.1 s of the falcon file; A = spk2's first half, B = spk1, A' = spk2's second half.
  const { pcm } = load('picovoice_falcon_3spk');
  const cut = (a: number, b: number): Int16Array => pcm.subarray(Math.round(a * 16000), Math.round(b * 16000));
  const gap = new Int16Array(16000);
  const parts = [cut(6.2, 8.6), gap, cut(1.7, 3.9), gap, cut(8.6, 11.1), gap];
  const all = new Int16Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  const spans: { start: number; end: number }[] = [];
  for (const p of parts) {
    if (p !== gap) spans.push({ start: off / 16000, end: (off + p.length) / 16000 });
    all.set(p, off);
    off += p.length;
  }
  const words = spans.map((s) => {
    const n = Math.round((s.end - s.start) / 0.4);
    return Array.from({ length: n }, (_, i) => ({ start: s.start + ((s.end - s.start) * i) / n, end: s.start + ((s.end - s.start) * (i + 1)) / n }));
  });
  const run = runOnline(createDiarizer(), all, 16000, undefined, words);
  const major = run.finals.map((f) => {
    const c = new Map<number, number>();
    for (const l of f.labels) c.set(l.speaker, (c.get(l.speaker) ?? 0) + 1);
    return [...c].sort((a, b) => b[1] - a[1])[0]![0];
  });
  assert.equal(major[0], 0);
  assert.equal(major[1], 1);
  assert.equal(major[2], 0, `labels ${JSON.stringify(run.finals.map((f) => f.labels.map((l) => l.speaker)))}`);
});

test('online: each word is labelled once with a dense label; history and held frames stay capped over a long stream', () => {
  const d = new ClassicalDiarizer({ historyS: 20, keepFramesS: 15 });
  const parts = ALL.map((n) => load(n).pcm);
  const loops = 3;
  const len = parts.reduce((a, p) => a + p.length, 0) * loops;
  const pcm = new Int16Array(len);
  let off = 0;
  for (let i = 0; i < loops; i++) for (const p of parts) { pcm.set(p, off); off += p.length; }
  const finals = simulatedFinals(pcm, 16000);
  const s = d.stream(16000);
  const emitted = new Map<string, number>();
  let next = 0, maxHistory = 0, maxFrames = 0;
  for (let pos = 0; pos < pcm.length; pos += 1600) {
    s.write(pcm.subarray(pos, pos + 1600));
    const written = Math.min(pcm.length, pos + 1600) / 16000;
    while (next < finals.length && finals[next]![finals[next]!.length - 1]!.end + 0.3 <= written) {
      const words = finals[next++]!;
      const labels = s.labelFinal(words);
      assert.equal(labels.length, words.length);
      labels.forEach((l, i) => {
        const key = `${words[i]!.start.toFixed(3)}`;
        assert.ok(!emitted.has(key));
        emitted.set(key, l.speaker);
        assert.ok(Number.isInteger(l.speaker) && l.speaker >= 0);
      });
      const st = s.stats();
      maxHistory = Math.max(maxHistory, st.historyS);
      maxFrames = Math.max(maxFrames, st.framesHeld);
    }
  }
  const st = s.stats();
  assert.ok(st.evicted > 0, 'history was evicted into anchors');
  assert.ok(maxHistory <= 20 + 30.5, `history ${maxHistory} s`); // cap + one final's speech (≤ 30 s file)
  assert.ok(maxFrames <= 1500, `frames held ${maxFrames}`);
  // Labels are dense from 0.
  const labels = new Set(emitted.values());
  assert.deepEqual([...labels].sort((a, b) => a - b), [...Array(labels.size).keys()]);
  s.close();
  s.close();
  assert.deepEqual(s.labelFinal([{ start: 0, end: 1 }]).length, 1);
});

test('online: count hint caps the labels; odd word spans never throw', () => {
  const { pcm } = load('picovoice_falcon_3spk');
  const run = runOnline(createDiarizer(), pcm, 16000, { maxSpeakers: 2 });
  assert.ok(new Set(run.turns.map((t) => t.speaker)).size <= 2);
  const s = createDiarizer().stream(16000);
  s.write(pcm.subarray(0, 32000));
  const odd = s.labelFinal([{ start: NaN, end: 1 }, { start: 1.5, end: 1.2 }, { start: -5, end: -1 }, { start: 100, end: 101 }, { start: 0.1, end: 0.5 }]);
  assert.equal(odd.length, 5);
  for (const l of odd) assert.ok(Number.isInteger(l.speaker) && l.speaker >= 0 && l.confidence >= 0 && l.confidence <= 1);
  assert.deepEqual(s.labelFinal([]), []);
  // Audio never written: still labelled (speaker 0), confidence 0.
  const fresh = createDiarizer().stream(16000);
  assert.deepEqual(fresh.labelFinal([{ start: 0, end: 0.5 }]), [{ speaker: 0, confidence: 0 }]);
});

test('online mapping: re-clustered speakers keep the labels already emitted, whatever the cluster order', () => {
  const never = (): number => { throw new Error('not needed'); };
  // Cluster 0 holds what was emitted as label 1, cluster 1 what was label 0; cluster 2 is new speech.
  assert.deepEqual(mapClustersToLabels([[0, 300], [250, 10], [0, 0]], [true, true, true], 2, Infinity, never), { labels: [1, 0, 2], nextLabel: 3 });
  // Two clusters competing for label 0: the bigger overlap keeps it, the other (with new speech) gets a new label.
  assert.deepEqual(mapClustersToLabels([[100], [400]], [true, true], 1, Infinity, never), { labels: [1, 0], nextLabel: 2 });
  // An unmapped cluster with only old speech gets no label; first labels start at 0.
  assert.deepEqual(mapClustersToLabels([[50], [20]], [false, false], 1, Infinity, never).labels, [0, -1]);
  assert.deepEqual(mapClustersToLabels([[], []], [true, true], 0, Infinity, never), { labels: [0, 1], nextLabel: 2 });
  // At the label cap, a new cluster takes the label of the nearest mapped cluster.
  assert.deepEqual(mapClustersToLabels([[10, 0], [0, 10], [0, 0]], [true, true, true], 2, 2, (k, mapped) => { assert.equal(k, 2); assert.deepEqual(mapped, [0, 1]); return 1; }).labels, [0, 1, 1]);
});

test('online: pooled DER over all RTTM files with the count unknown ≤ 45 % (bench measures ~35 %)', () => {
  let err = 0, tot = 0;
  const d = createDiarizer();
  for (const name of ALL) {
    const { pcm, ref } = load(name);
    const r = computeDer(ref, runOnline(d, pcm, 16000).turns);
    err += r.der * r.total;
    tot += r.total;
  }
  assert.ok(err / tot <= 0.45, `online pooled DER ${err / tot}`);
});
