/**
 * CMU Flite 2.2 (Debian package `flite`) as a TTS engine: English voices, BSD-style licence, more
 * natural than espeak-ng and far better recognised by PocketSphinx (shared/spec/engines.md §5:
 * 1.9–10.4 % WER on flite audio vs 84–98 % on espeak-ng).
 *
 * One `flite -voice <v> --setf duration_stretch=<1/speed> -f <text> -o <wav>` child per segment
 * (a {@link ProcessRunner}): a warm child reads its text from a FIFO it opened in advance, a cold
 * one from a temporary file; the WAV goes to a private temporary directory (tmpfs `/dev/shm` when
 * present) and is read when the child exits. Flite renders a whole utterance before writing, so
 * first-audio latency grows with segment length: measured per 20-word sentence 19.5 ms cold for
 * the diphone voice `kal16`, 119–126 ms for the clustergen voices `slt`/`rms`; a warm `kal16`
 * renders a 10-word clause in 6.1 ms. The default voice is therefore `kal16`.
 *
 * Speed: `duration_stretch = 1/speed` (0.5–2.0 verified: 2.52 s of speech → 5.04 s / 1.25 s).
 */
import type { TtsCapabilities, TtsEngine, TtsEngineStats, TtsSynthesis, TtsSynthesisRequest, TtsVoice } from '../types.js';
import { ProcessRunner, runForOutput } from '../process.js';

/** Options of the flite engine. */
export interface FliteOptions {
  /** Concurrent `flite` jobs (further jobs queue). */
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
  private readonly runner: ProcessRunner;
  private readonly bin: string;

  constructor(opts: FliteOptions) {
    this.bin = opts.binary ?? 'flite';
    this.runner = new ProcessRunner(
      {
        name: 'flite',
        cmd: this.bin,
        // -f: the text is read from a file/FIFO, never parsed as options.
        args: (s, io) => ['-voice', s.voice, '--setf', `duration_stretch=${(1 / s.speed).toFixed(4)}`, '-f', io.textPath!, '-o', io.outPath!],
        textVia: 'file',
        outputVia: 'file',
      },
      { maxConcurrentJobs: opts.maxConcurrentJobs, jobTimeoutMs: opts.jobTimeoutMs },
    );
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
    await this.runner.init();
  }

  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    const rate = FLITE_VOICES.find((v) => v.id === req.voice)?.sampleRate ?? 16000;
    return this.runner.run({ voice: req.voice, speed: req.speed }, req.text, rate, signal);
  }

  prepare(req: Omit<TtsSynthesisRequest, 'text'>): void {
    this.runner.prepare({ voice: req.voice, speed: req.speed });
  }

  stats(): TtsEngineStats {
    return this.runner.stats();
  }

  async shutdown(): Promise<void> {
    await this.runner.shutdown();
  }
}
