/** Tests of src/audio/pcm.ts: byte conversion at odd offsets, down-mixing, float scaling. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToInt16LE, downmix, float32ToInt16, int16ToBytesLE, int16ToFloat32 } from '../src/audio/pcm.js';

test('bytesToInt16LE reads a view at an odd byte offset', () => {
  const backing = new Uint8Array([0xaa, 0x01, 0x00, 0xff, 0xff, 0x00, 0x80, 0xff, 0x7f]);
  const view = backing.subarray(1); // byteOffset 1: an Int16Array view here would throw
  assert.equal(view.byteOffset % 2, 1);
  assert.deepEqual([...bytesToInt16LE(view)], [1, -1, -32768, 32767]);
});

test('bytesToInt16LE copies (later writes to the bytes do not leak)', () => {
  const bytes = new Uint8Array([1, 0]);
  const out = bytesToInt16LE(bytes);
  bytes[0] = 9;
  assert.equal(out[0], 1);
});

test('bytesToInt16LE rejects an odd byte count', () => {
  assert.throws(() => bytesToInt16LE(new Uint8Array(3)), RangeError);
});

test('int16ToBytesLE is the inverse of bytesToInt16LE', () => {
  const x = Int16Array.of(0, 1, -1, 32767, -32768, 12345);
  const bytes = int16ToBytesLE(x);
  assert.deepEqual([...bytes.subarray(0, 4)], [0, 0, 1, 0]);
  assert.deepEqual(bytesToInt16LE(bytes), x);
});

test('downmix averages each frame with rounding and cannot clip', () => {
  assert.deepEqual([...downmix(Int16Array.of(100, 200, -3, 0, 32767, 32767, -32768, -32768), 2)], [150, -1, 32767, -32768]);
  assert.deepEqual([...downmix(Int16Array.of(3, 3, 4, -9, 0, 0), 3)], [3, -3]);
});

test('downmix of mono returns the input unchanged', () => {
  const x = Int16Array.of(1, 2, 3);
  assert.equal(downmix(x, 1), x);
});

test('downmix rejects bad channel counts and partial frames', () => {
  assert.throws(() => downmix(Int16Array.of(1, 2, 3), 2), RangeError);
  assert.throws(() => downmix(Int16Array.of(1, 2), 0), RangeError);
  assert.throws(() => downmix(Int16Array.of(1, 2), 1.5), RangeError);
});

test('int16 → float32 → int16 is exact for every value', () => {
  const all = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);
  const f = int16ToFloat32(all);
  assert.equal(f[0], -1);
  assert.equal(f[65535], 32767 / 32768);
  assert.deepEqual(float32ToInt16(f), all);
});

test('float32ToInt16 clips and maps NaN to 0', () => {
  assert.deepEqual([...float32ToInt16(Float32Array.of(1, 1.5, -1, -2, NaN, 0.5, -0.5))], [32767, 32767, -32768, -32768, 0, 16384, -16384]);
});
