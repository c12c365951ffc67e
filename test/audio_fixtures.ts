/**
 * Test fixtures for compressed audio: real clips from ../shared/data encoded with Debian's ffmpeg
 * at test time into os.tmpdir() (never into the repository), and a look at this process's ffmpeg
 * children (to prove none outlives its session or request).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sharedData } from './paths.js';

/** Encodings the fixtures can produce: ffmpeg output arguments per format. */
export const ENCODE_ARGS = {
  /** Ogg/Opus with 20 ms pages, as a streaming client writes it. */
  'ogg-opus': ['-c:a', 'libopus', '-b:a', '24k', '-page_duration', '20000', '-f', 'ogg'],
  /** Ogg/Opus at 96 kb/s (stereo material: 24 kb/s shared by two channels blurs them). */
  'ogg-opus-hq': ['-c:a', 'libopus', '-b:a', '96k', '-page_duration', '20000', '-f', 'ogg'],
  /** Ogg/Opus with ffmpeg's default 1 s pages (a file). */
  'ogg-opus-file': ['-c:a', 'libopus', '-b:a', '24k', '-f', 'ogg'],
  webm: ['-c:a', 'libopus', '-b:a', '24k', '-f', 'webm'],
  /** FLAC in Ogg (a non-Opus Ogg stream). */
  'ogg-flac': ['-c:a', 'flac', '-f', 'ogg'],
  mp3: ['-c:a', 'libmp3lame', '-b:a', '64k', '-ar', '44100', '-f', 'mp3'],
  flac: ['-c:a', 'flac', '-f', 'flac'],
  /** AAC in MP4 with the index at the end (ffmpeg's default): cannot be decoded from a pipe. */
  m4a: ['-c:a', 'aac', '-b:a', '64k', '-f', 'ipod'],
  /** AAC in MP4 with the index first. */
  'm4a-faststart': ['-c:a', 'aac', '-b:a', '64k', '-movflags', '+faststart', '-f', 'ipod'],
  /** 96 kHz, 32-bit, stereo FLAC (~650 KB/s): many bytes before ffmpeg's first output. */
  'flac-hires': ['-c:a', 'flac', '-ar', '96000', '-ac', '2', '-sample_fmt', 's32', '-f', 'flac'],
  wav: ['-c:a', 'pcm_s16le', '-f', 'wav'],
  'wav-float': ['-c:a', 'pcm_f32le', '-f', 'wav'],
} as const;
export type FixtureFormat = keyof typeof ENCODE_ARGS;

/** A temporary directory for encoded fixtures; `cleanup()` deletes it. */
export class FixtureDir {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'voxgate-fixtures-'));

  /**
   * Encode `inputs` (paths relative to ../shared/data, concatenated in order, each followed by
   * `gapSeconds` of silence) into `format`; returns the file's path.
   */
  encode(inputs: string[], format: FixtureFormat, opts: { gapSeconds?: number; channels?: number; name?: string } = {}): string {
    const out = path.join(this.dir, `${opts.name ?? `${inputs.map((i) => path.basename(i, '.wav')).join('+').slice(0, 60)}`}.${format}`);
    const args = ['-hide_banner', '-loglevel', 'error', '-y'];
    for (const i of inputs) args.push('-i', sharedData(i));
    const gap = opts.gapSeconds ?? 0.6;
    const chains = inputs.map((_, k) => `[${k}:a]aresample=16000,aformat=channel_layouts=mono,apad=pad_dur=${gap}[a${k}]`).join(';');
    const concat = `${inputs.map((_, k) => `[a${k}]`).join('')}concat=n=${inputs.length}:v=0:a=1[out]`;
    args.push('-filter_complex', `${chains};${concat}`, '-map', '[out]');
    if (opts.channels) args.push('-ac', String(opts.channels));
    args.push(...ENCODE_ARGS[format], out);
    execFileSync('ffmpeg', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    return out;
  }

  /** Transcode one file of ../shared/data as it is (rate and channels kept) into `format`. */
  transcode(input: string, format: FixtureFormat): string {
    const out = path.join(this.dir, `${path.basename(input, '.wav')}.as-is.${format}`);
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-i', sharedData(input), ...ENCODE_ARGS[format], out], { stdio: ['ignore', 'ignore', 'inherit'] });
    return out;
  }

  /** Read a fixture. */
  read(file: string): Buffer {
    return readFileSync(file);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * PIDs of live (non-zombie) `ffmpeg` processes descended from this process (ffmpeg runs in the
 * spawner helpers, grandchildren of this process).
 */
export function ffmpegChildren(): number[] {
  const rows: { pid: number; ppid: number; comm: string; state: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid …; comm may contain spaces, so split after the last ')'.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    rows.push({ pid: Number(name), ppid: Number(ppid), comm, state: state! });
  }
  const mine = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of rows) if (mine.has(r.ppid) && !mine.has(r.pid)) (mine.add(r.pid), (grew = true));
  }
  return rows.filter((r) => mine.has(r.pid) && r.comm === 'ffmpeg' && r.state !== 'Z').map((r) => r.pid);
}
