/**
 * eSpeak NG 1.51 (Debian package `espeak-ng`) as a TTS engine: ~130 languages including Hindi
 * (`hi`) and other Indic languages, 22 050 Hz, formant synthesis (intelligible, robotic; GPL-3.0,
 * kept out of the gateway's process). shared/spec/engines.md §1, §5.
 *
 * One `espeak-ng -v <voice> -s <wpm> -b 1 --stdout` child per segment (a {@link ProcessRunner});
 * the text goes in on stdin (so text starting with `-` is never read as an option) and the WAV
 * stream is read from stdout while it is produced — first audio 12.6 ms after `spawn` for a
 * 20-word sentence, 2.1 ms from a warm (pre-started) child.
 *
 * Voices come from `espeak-ng --voices` at `init` (one per language code; the first of duplicate
 * codes wins). Speed: `-s 175 × speed` words per minute (175 is espeak-ng's default rate).
 */
import type { TtsCapabilities, TtsEngine, TtsEngineStats, TtsSynthesis, TtsSynthesisRequest, TtsVoice } from '../types.js';
import { ProcessRunner, runForOutput } from '../process.js';

/** Options of the espeak-ng engine. */
export interface EspeakOptions {
  /** Concurrent `espeak-ng` processes (further jobs queue). */
  maxConcurrentJobs: number;
  /** Kill a job after this long, ms. */
  jobTimeoutMs: number;
  /** Executable name or path. */
  binary?: string;
}

/** espeak-ng's default speaking rate, words per minute (speed 1.0). */
export const ESPEAK_DEFAULT_WPM = 175;
/** espeak-ng's output rate for every voice, Hz. */
export const ESPEAK_SAMPLE_RATE = 22050;

/**
 * Parse `espeak-ng --voices` output into voices.
 * Columns: `Pty Language Age/Gender VoiceName File Other-Languages`, e.g.
 * ` 2  en-us  --/M  English_(America)  gmw/en-US  (en 3)`.
 * @returns voices in listing order, ids lower-cased and unique (first wins).
 */
export function parseEspeakVoices(listing: string): TtsVoice[] {
  const voices: TtsVoice[] = [];
  const seen = new Set<string>();
  for (const line of listing.split('\n').slice(1)) {
    const m = /^\s*\d+\s+(\S+)\s+\S*\/([MF-])\s+(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const id = m[1]!.toLowerCase();
    if (seen.has(id)) continue;
    seen.add(id);
    const others = [...m[5]!.matchAll(/\(([\w-]+)\s+\d+\)/g)].map((x) => x[1]!.toLowerCase());
    const primary = id.split('-')[0]!;
    const languages = [...new Set([id, ...others, primary])];
    voices.push({
      id,
      name: m[3]!.replace(/_/g, ' '),
      languages,
      gender: m[2] === 'M' ? 'male' : m[2] === 'F' ? 'female' : 'unknown',
      sampleRate: ESPEAK_SAMPLE_RATE,
    });
  }
  return voices;
}

/** See the module documentation. */
export class EspeakEngine implements TtsEngine {
  readonly id = 'espeak-ng';
  version = 'espeak-ng';
  capabilities: TtsCapabilities = { voices: [], languages: [], speed: { min: 0.5, max: 2.0 }, incremental: true };
  private readonly runner: ProcessRunner;
  private readonly bin: string;

  constructor(opts: EspeakOptions) {
    this.bin = opts.binary ?? 'espeak-ng';
    this.runner = new ProcessRunner(
      {
        name: 'espeak-ng',
        cmd: this.bin,
        args: (s) => ['-v', s.voice, '-s', String(Math.round(ESPEAK_DEFAULT_WPM * s.speed)), '-b', '1', '--stdout'],
        textVia: 'stdin',
        outputVia: 'stdout',
      },
      { maxConcurrentJobs: opts.maxConcurrentJobs, jobTimeoutMs: opts.jobTimeoutMs },
    );
  }

  /** @throws Error when `espeak-ng` is missing or lists no voices. */
  async init(): Promise<void> {
    const hint = 'install the Debian package "espeak-ng" (scripts/setup.sh does)';
    const version = await runForOutput(this.bin, ['--version'], hint);
    this.version = `espeak-ng-${/\d+\.\d+(\.\d+)?/.exec(version)?.[0] ?? 'unknown'}`;
    const voices = parseEspeakVoices(await runForOutput(this.bin, ['--voices'], hint));
    if (voices.length === 0) throw new Error(`espeak-ng lists no voices; ${hint}`);
    const languages = [...new Set(voices.map((v) => v.id.split('-')[0]!))].sort();
    this.capabilities = { ...this.capabilities, voices, languages };
  }

  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    return this.runner.run({ voice: req.voice, speed: req.speed }, req.text, ESPEAK_SAMPLE_RATE, signal);
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
