/**
 * A scripted fake TTS engine for unit tests (issue 10 Part 1: "fake STT/TTS engines so sessions and
 * failover are unit-tested without real engines"; in the manner of LiveKit agents-js's fake TTS).
 *
 * Every character of a segment's text becomes `msPerChar` ms of a 440 Hz tone (or of silence), one
 * PCM chunk per character, so the audio's length is known exactly from the text
 * (`chars × msPerChar` ms at the voice's rate). Failures are scripted per segment: a rule matching the
 * segment's text fails it before its first audio (`atChar: 0`), mid-segment after `atChar` characters
 * of audio, stalls there (no more audio until the job is aborted), or silently ends the segment there. Errors are
 * {@link FakeEngineError}s carrying `retryable`.
 *
 * Registered as engine id `fake` in the TTS registry so a test config can name it; not in the default
 * catalogue. Tests change the script at run time through {@link FakeTtsEngine.script}.
 */
import { z } from 'zod';
import { abortError } from '../process.js';
import type { ErrorCode } from '../../../util/errors.js';
import { FakeEngineError, ScriptedFake } from '../../fake.js';
import type { TtsCapabilities, TtsEngine, TtsEngineStats, TtsSynthesis, TtsSynthesisRequest, TtsVoice } from '../types.js';

export { FakeEngineError };

/** zod schema of one failure rule. */
export const fakeTtsFailureSchema = z.object({
  /** The rule applies to segments whose text contains this string; omitted = every segment. */
  when: z.string().optional(),
  /** Characters of audio produced before the failure; 0 = before the first audio byte. */
  atChar: z.number().int().min(0).default(0),
  /**
   * `fail`: iteration throws a {@link FakeEngineError}; `stall`: no more audio until aborted;
   * `silent`: the segment ends there without an error (with `atChar: 0`, no audio at all: the
   * "silent failure" failover treats as a failure, upstreams.md §2.1).
   */
  kind: z.enum(['fail', 'stall', 'silent']).default('fail'),
  /** Catalogue code of the error; default `provider_error` (what TTS sessions treat as an engine failure). */
  code: z.string().default('provider_error'),
  message: z.string().default('fake engine failure'),
  retryable: z.boolean().default(true),
});
/** A failure rule (input form). */
export type FakeTtsFailure = z.input<typeof fakeTtsFailureSchema>;

/** zod schema of a TTS script. */
export const fakeTtsScriptSchema = z.object({
  /** Milliseconds of audio per character of text (> 0). Default 20. */
  msPerChar: z.number().positive().default(20),
  /** `tone`: 440 Hz sine at about −12 dBFS; `silence`: zeros. */
  sound: z.enum(['tone', 'silence']).default('tone'),
  /** Failure rules; the first matching a segment applies. */
  failures: z.array(fakeTtsFailureSchema).default([]),
});
/** A fake TTS script (input form: defaults may be omitted). */
export type FakeTtsScript = z.input<typeof fakeTtsScriptSchema>;

/** The one voice: 16 kHz, English. */
export const FAKE_TTS_VOICE: TtsVoice = { id: 'fake', name: 'Fake tone voice (tests)', languages: ['en-us', 'en'], gender: 'unknown', sampleRate: 16000 };

/** Options of {@link FakeTtsEngine}. */
export interface FakeTtsEngineOptions {
  /** Engine id; default `fake`. */
  id?: string;
  /** Voices; default `[FAKE_TTS_VOICE]`. */
  voices?: TtsVoice[];
  /** Speed range; default 0.5–2 (speed divides `msPerChar`). */
  speed?: { min: number; max: number } | null;
  script?: FakeTtsScript;
}

/**
 * A scripted {@link TtsEngine}. `requests` records each synthesis request, in order, for assertions.
 */
export class FakeTtsEngine extends ScriptedFake<typeof fakeTtsScriptSchema> implements TtsEngine {
  readonly capabilities: TtsCapabilities;
  /** Every `synthesize` request, in order. */
  readonly requests: TtsSynthesisRequest[] = [];
  private active = 0;
  private finished = 0;
  private readonly aborts = new Set<AbortController>();

  constructor(o: FakeTtsEngineOptions = {}) {
    super(fakeTtsScriptSchema, o.id ?? 'fake', o.script);
    const voices = o.voices ?? [FAKE_TTS_VOICE];
    const languages = [...new Set(voices.flatMap((v) => v.languages.map((l) => l.split('-')[0]!)))].sort();
    this.capabilities = { voices, languages, speed: o.speed === undefined ? { min: 0.5, max: 2 } : o.speed, incremental: true };
  }

  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    this.requests.push(req);
    const voice = this.capabilities.voices.find((v) => v.id === req.voice) ?? this.capabilities.voices[0]!;
    const script = this.parsed;
    const rule = script.failures.find((f) => f.when === undefined || req.text.includes(f.when));
    const samplesPerChar = Math.max(1, Math.round((voice.sampleRate * script.msPerChar) / 1000 / (req.speed || 1)));
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const engine = this;
    async function* run(): AsyncGenerator<Int16Array> {
      engine.active++;
      engine.aborts.add(ctl);
      try {
        const chars = [...req.text];
        for (let i = 0; i <= chars.length; i++) {
          if (ctl.signal.aborted) throw abortError();
          if (rule && i === rule.atChar) {
            if (rule.kind === 'stall') {
              await new Promise<void>((resolve) => ctl.signal.addEventListener('abort', () => resolve(), { once: true }));
              throw abortError();
            }
            if (rule.kind === 'silent') return;
            throw new FakeEngineError(rule.code as ErrorCode, rule.message, rule.retryable);
          }
          if (i === chars.length) break;
          yield sound(script.sound, samplesPerChar, i * samplesPerChar, voice.sampleRate);
          await new Promise<void>((r) => setImmediate(r));
        }
      } finally {
        engine.active--;
        engine.finished++;
        engine.aborts.delete(ctl);
        signal?.removeEventListener('abort', onAbort);
      }
    }
    const it = run();
    return { sampleRate: voice.sampleRate, [Symbol.asyncIterator]: () => it };
  }

  stats(): TtsEngineStats {
    return { activeJobs: this.active, queuedJobs: 0, finishedJobs: this.finished };
  }

  async shutdown(): Promise<void> {
    for (const c of this.aborts) c.abort();
  }
}

/** `n` samples of a 440 Hz tone (phase-continuous from sample `offset`) or of silence. */
function sound(kind: 'tone' | 'silence', n: number, offset: number, rate: number): Int16Array {
  const out = new Int16Array(n);
  if (kind === 'silence') return out;
  for (let k = 0; k < n; k++) out[k] = Math.round(8192 * Math.sin((2 * Math.PI * 440 * (offset + k)) / rate));
  return out;
}
