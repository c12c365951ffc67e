/**
 * Benchmark audio: the `asr_en` clips of ../shared/data (read in place, never copied) and their
 * reference transcripts from `manifest.tsv`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readWavFile } from '../../src/audio/wav.js';
import { packageRoot } from '../../src/util/paths.js';

/** Sample rate of the benchmark audio, Hz. */
export const SAMPLE_RATE = 16000;

/** The repository root. */
export const repoRoot = packageRoot;

/** Absolute path of the shared data directory (`<repo root>/../shared/data`). */
export function sharedDataDir(): string {
  return path.resolve(repoRoot(), '../shared/data');
}

/** One benchmark clip: 16 kHz mono linear16 audio plus its reference. */
export interface Clip {
  /** Path relative to the shared data directory, e.g. `asr_en/en_cmu_goforward.wav`. */
  file: string;
  /** Short name (file name without directory and extension). */
  name: string;
  /** Reference transcript from the manifest. */
  reference: string;
  /** Little-endian 16-bit PCM bytes. */
  bytes: Buffer;
  /** Duration, seconds. */
  seconds: number;
}

/**
 * Load every manifest row under `asr_en/` (16 kHz mono s16 WAV).
 * @throws Error when the manifest or a clip is missing, or a clip is not 16 kHz mono.
 */
export async function loadAsrEnClips(): Promise<Clip[]> {
  const dir = sharedDataDir();
  const manifest = readFileSync(path.join(dir, 'manifest.tsv'), 'utf8').split(/\r?\n/);
  const header = manifest[0]!.split('\t');
  const iFile = header.indexOf('file');
  const iRef = header.indexOf('reference_transcript');
  if (iFile < 0 || iRef < 0) throw new Error('manifest.tsv lacks the file / reference_transcript columns');
  const clips: Clip[] = [];
  for (const line of manifest.slice(1)) {
    if (!line.trim()) continue;
    const cols = line.split('\t');
    const file = cols[iFile]!;
    if (!file.startsWith('asr_en/')) continue;
    const w = await readWavFile(path.join(dir, file));
    if (w.sampleRate !== SAMPLE_RATE || w.channels !== 1) throw new Error(`${file}: expected 16 kHz mono, got ${w.sampleRate} Hz × ${w.channels}`);
    const bytes = Buffer.from(w.samples.buffer, w.samples.byteOffset, w.samples.byteLength);
    clips.push({ file, name: path.basename(file, '.wav'), reference: cols[iRef] ?? '', bytes, seconds: w.samples.length / SAMPLE_RATE });
  }
  if (clips.length === 0) throw new Error(`no asr_en clips in ${dir}/manifest.tsv`);
  return clips;
}

/** `ms` milliseconds of digital silence as 16 kHz linear16 bytes. */
export function silence(ms: number): Buffer {
  return Buffer.alloc(Math.round((SAMPLE_RATE * ms) / 1000) * 2);
}

/**
 * Cut trailing non-speech from a clip: the audio is kept up to the end of the last 20 ms frame whose
 * RMS is within `thresholdDb` (default 35 dB) of the loudest frame, plus `keepMs` (default 100 ms).
 * Used to send `finalize` "right after the last speech sample".
 */
export function trimTrailingSilence(bytes: Buffer, keepMs = 100, thresholdDb = 35): Buffer {
  const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
  const frame = SAMPLE_RATE / 50;
  const rms: number[] = [];
  for (let o = 0; o < pcm.length; o += frame) {
    let s = 0;
    const end = Math.min(pcm.length, o + frame);
    for (let i = o; i < end; i++) s += pcm[i]! * pcm[i]!;
    rms.push(Math.sqrt(s / Math.max(1, end - o)));
  }
  const peak = Math.max(...rms, 1);
  const floor = peak / 10 ** (thresholdDb / 20);
  let last = rms.length - 1;
  while (last > 0 && rms[last]! < floor) last--;
  const endSample = Math.min(pcm.length, (last + 1) * frame + Math.round((keepMs * SAMPLE_RATE) / 1000));
  return bytes.subarray(0, endSample * 2);
}

/** Pick clips by short name in the given order, skipping names that are absent; falls back to `all` when none match. */
export function pick(all: readonly Clip[], names: readonly string[], max = names.length): Clip[] {
  const out = names.map((n) => all.find((c) => c.name === n)).filter((c): c is Clip => !!c);
  return (out.length ? out : [...all]).slice(0, max);
}
