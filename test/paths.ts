/**
 * Test-only paths: the shared data beside the repository (../shared/data), read in place.
 * Kept free of server imports so unit tests can use it cheaply.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../src/util/paths.js';
import { parseWavHeader } from '../src/audio/wav.js';

/** Absolute path of a file under ../shared/data. */
export function sharedData(rel: string): string {
  return path.resolve(packageRoot(), '..', 'shared', 'data', rel);
}

/** Synchronously read a 16-bit PCM WAV from ../shared/data as interleaved samples. */
export function readSharedWavSync(rel: string): Int16Array {
  const buf = readFileSync(sharedData(rel));
  const h = parseWavHeader(buf);
  if (h.kind !== 'wav' || h.format !== 'pcm_s16le') throw new Error(`${rel}: not a 16-bit PCM WAV`);
  const len = h.dataLength ?? buf.length - h.dataOffset;
  const bytes = buf.subarray(h.dataOffset, h.dataOffset + len - (len % 2));
  return new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}
