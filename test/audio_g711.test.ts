/** Tests of src/audio/g711.ts: ITU-T G.711 reference values, round trips and quantisation error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAlaw, decodeMulaw, encodeAlaw, encodeMulaw } from '../src/audio/g711.js';

const ALL_CODES = Uint8Array.from({ length: 256 }, (_, i) => i);
const ALL_INT16 = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);

test('μ-law decodes reference codes', () => {
  assert.deepEqual([...decodeMulaw(Uint8Array.of(0x00, 0x80, 0xff, 0x7f, 0xfe, 0x7e, 0x8f))], [-32124, 32124, 0, 0, 8, -8, 16764]);
});

test('A-law decodes reference codes', () => {
  assert.deepEqual([...decodeAlaw(Uint8Array.of(0xd5, 0x55, 0xaa, 0x2a, 0xd4, 0x80))], [8, -8, 32256, -32256, 24, 5504]);
});

test('μ-law encodes silence, extremes and saturates', () => {
  assert.deepEqual([...encodeMulaw(Int16Array.of(0, 32767, -32768, 32635, -1))], [0xff, 0x80, 0x00, 0x80, 0x7f]);
});

test('A-law encodes silence, extremes and saturates', () => {
  assert.deepEqual([...encodeAlaw(Int16Array.of(0, 32767, -32768, -1))], [0xd5, 0xaa, 0x2a, 0x55]);
});

test('every μ-law code survives decode → encode (except negative zero 0x7F)', () => {
  const back = encodeMulaw(decodeMulaw(ALL_CODES));
  for (let c = 0; c < 256; c++) assert.equal(back[c], c === 0x7f ? 0xff : c, `code 0x${c.toString(16)}`);
});

test('every A-law code survives decode → encode', () => {
  assert.deepEqual([...encodeAlaw(decodeAlaw(ALL_CODES))], [...ALL_CODES]);
});

test('decode tables are odd-symmetric and monotonic in magnitude', () => {
  const mu = decodeMulaw(ALL_CODES);
  const a = decodeAlaw(ALL_CODES);
  for (let c = 0; c < 128; c++) {
    assert.ok(mu[c] === -mu[c | 0x80]! && a[c] === -a[c | 0x80]!, `code 0x${c.toString(16)}`);
  }
  // μ-law: codes 0x80..0xFF run from +max down to 0.
  for (let c = 0x81; c <= 0xff; c++) assert.ok(mu[c]! < mu[c - 1]!);
});

for (const [name, encode, decode, clipAt] of [
  ['μ-law', encodeMulaw, decodeMulaw, 32124],
  ['A-law', encodeAlaw, decodeAlaw, 32256],
] as const) {
  test(`${name} quantisation error of every int16 is at most half a step`, () => {
    const back = decode(encode(ALL_INT16));
    for (let i = 0; i < ALL_INT16.length; i++) {
      const x = ALL_INT16[i]!;
      const err = Math.abs(back[i]! - x);
      if (Math.abs(x) > clipAt) {
        assert.ok(Math.abs(back[i]!) === clipAt, `saturation of ${x}`);
        continue;
      }
      // A segment holds 16 steps and starts at 16 × its step (μ-law after adding the bias 132);
      // the smallest step is 8 (μ-law) or 16 (A-law). Reconstruction is at mid-step.
      const halfStep = Math.max(name === 'A-law' ? 8 : 4, (Math.abs(x) + (name === 'A-law' ? 0 : 132)) / 32);
      assert.ok(err <= halfStep, `${name} ${x} → ${back[i]} (error ${err}, half step ${halfStep})`);
    }
  });

  test(`${name} keeps a full-scale sine at ≥ 35 dB SNR`, () => {
    const x = Int16Array.from({ length: 8000 }, (_, i) => Math.round(30000 * Math.sin((2 * Math.PI * 1013 * i) / 8000)));
    const y = decode(encode(x));
    let sig = 0;
    let noise = 0;
    for (let i = 0; i < x.length; i++) {
      sig += x[i]! ** 2;
      noise += (y[i]! - x[i]!) ** 2;
    }
    assert.ok(10 * Math.log10(sig / noise) >= 35);
  });
}
