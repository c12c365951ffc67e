/**
 * CMU Flite 2.2 (Debian package `flite`) as a TTS engine: English voices, BSD-style licence, more
 * natural than espeak-ng and far better recognised by PocketSphinx (shared/spec/engines.md §5:
 * 1.9–10.4 % WER on flite audio vs 84–98 % on espeak-ng).
 *
 * One `flite` child per segment writes a WAV into a private temporary directory (tmpfs
 * `/dev/shm` when present), read and deleted when the child exits. Flite renders a whole utterance
 * before writing anything, so first-audio latency grows with segment length: measured per 20-word
 * sentence 19.5 ms for the diphone voice `kal16` (13.9 ms for a 10-word clause), 119–126 ms for
 * the clustergen voices `slt`/`rms` (74 ms per clause). The default voice is therefore `kal16`.
 *
 * Speed: `--setf duration_stretch=1/speed` (0.5–2.0 verified: 2.52 s → 5.04 s / 1.25 s).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TtsCapabilities, TtsEngine, TtsEngineStats, TtsSynthesis, TtsSynthesisRequest, TtsVoice } from '../types.js';
import { JobLimiter, runForOutput, synthesisFromChild } from '../process.js';

/** Options of the flite engine. */
export interface FliteOptions {
  /** Concurrent `flite` processes (further jobs queue). */
  maxConcurrentJobs: number;
  /** Kill a job after this long, ms. */
  jobTimeoutMs: number;
  /** Executable name or path. */
  binary?: string;
}

/** The voices Debian's flite 2.2 ships (`flite -lv`), as data. `awb_time` (a talking clock) is omitted. */
export const FLITE_VOICES: TtsVoice[] = [
  { id: 'kal16', name: 'Kal (US English male, diphone, 16 kHz; fastest)', languages: ['en-us', 'en'], gender: 'male', sampleRate: 16000 },
  { id: 'slt', name: 'SLT (US English female, clustergen)', languages: ['en-us', 'en'], gender: 'female', sampleRate: 16000 },
  { id: 'rms', name: 'RMS (US English male, clustergen)', languages: ['en-us', 'en'], gender: 'male', sampleRate: 16000 },
  { id: 'awb', name: 'AWB (Scottish English male, clustergen)', languages: ['en-gb', 'en'], gender: 'male', sampleRate: 16000 },
  { id: 'kal', name: 'Kal (US English male, diphone, 8 kHz)', languages: ['en-us', 'en'], gender: 'male', sampleRate: 8000 },
];

/** Flite's capabilities (speed via duration_stretch; whole-segment rendering). */
export const FLITE_CAPABILITIES: TtsCapabilities = {
  voices: FLITE_VOICES,
  languages: ['en'],
  speed: { min: 0.5, max: 2.0 },
  incremental: false,
};

/** See the module documentation. */
export class FliteEngine implements TtsEngine {
  readonly id = 'flite';
  version = 'flite';
  readonly capabilities = FLITE_CAPABILITIES;
  private readonly limiter: JobLimiter;
  private readonly bin: string;
  private dir: string | null = null;
  private seq = 0;

  constructor(private readonly opts: FliteOptions) {
    this.limiter = new JobLimiter(opts.maxConcurrentJobs);
    this.bin = opts.binary ?? 'flite';
  }

  /** @throws Error when `flite` is missing or lacks a listed voice. */
  async init(): Promise<void> {
    const hint = 'install the Debian package "flite" (scripts/setup.sh does)';
    const version = await runForOutput(this.bin, ['--version'], hint, true);
    this.version = /flite-[\w.-]+/.exec(version)?.[0] ?? 'flite';
    const listed = await runForOutput(this.bin, ['-lv'], hint);
    const have = new Set(listed.replace(/^.*?:/s, '').trim().split(/\s+/));
    const missing = FLITE_VOICES.filter((v) => !have.has(v.id)).map((v) => v.id);
    if (missing.length) throw new Error(`flite lacks voice(s) ${missing.join(', ')} (has: ${[...have].join(' ')}); ${hint}`);
    const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    this.dir = mkdtempSync(path.join(base, 'voxgate-flite-'));
  }

  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    const voice = FLITE_VOICES.find((v) => v.id === req.voice);
    const rate = voice?.sampleRate ?? 16000;
    const outFile = path.join(this.dir ?? tmpdir(), `${process.pid}-${++this.seq}.wav`);
    const stretch = (1 / req.speed).toFixed(4);
    return synthesisFromChild(
      {
        cmd: this.bin,
        // -t: the next argument is the text, literally (never an option or a file name).
        args: ['-voice', req.voice, '--setf', `duration_stretch=${stretch}`, '-t', req.text, '-o', outFile],
        outFile,
        timeoutMs: this.opts.jobTimeoutMs,
        name: 'flite',
      },
      this.limiter,
      rate,
      signal,
    );
  }

  stats(): TtsEngineStats {
    return { activeJobs: this.limiter.active, queuedJobs: this.limiter.queued, finishedJobs: this.limiter.released };
  }

  async shutdown(): Promise<void> {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}
