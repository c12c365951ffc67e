/**
 * A scripted fake STT engine for unit tests (issue 10 Part 1: "fake STT/TTS engines so sessions and
 * failover are unit-tested without real engines"; modelled on LiveKit agents-js's test fakes around
 * `agents/src/stt/stt.ts`).
 *
 * The engine recognises nothing: a {@link FakeSttScript} says what each stream emits once a given
 * number of **seconds of audio** has been written (`after 1.2 s emit partial "hello", at 2 s final
 * "hello world" with these words`), and how it fails — refuse at `start`, fail mid-stream with a
 * `retryable` flag, or stall (stop answering while audio keeps coming). Because the triggers are audio
 * time, not wall time, a test's results are deterministic however slowly the box runs.
 *
 * Events are delivered asynchronously, in script order, from a queue drained on `setImmediate` — like
 * a real engine, never re-entering the caller's `write()`.
 *
 * Registered as engine id `fake` (see registry.ts) so a test config can name it; it is not in the
 * default catalogue. The script comes from the first catalogue entry naming the engine
 * (`options.script`), or is set at run time through {@link FakeSttEngine.script}.
 */
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import type { ErrorCode } from '../../../util/errors.js';
import { FakeEngineError, ScriptedFake } from '../../fake.js';
import type { SttCapabilities, SttEngine, SttEngineStats, SttFinal, SttStream, SttStreamConfig, SttStreamEvents, SttWord } from '../types.js';

export { FakeEngineError };

/** zod schema of a scripted failure. */
export const fakeFailureSchema = z.object({
  /** Catalogue error code carried by the error; default `provider_error`. */
  code: z.string().default('provider_error'),
  message: z.string().default('fake engine failure'),
  /** LiveKit's `retryable`: another attempt/backend may succeed. Default true. */
  retryable: z.boolean().default(true),
});
/** A scripted failure: `code` is an {@link ErrorCode}. */
export type FakeFailure = z.infer<typeof fakeFailureSchema>;

/** A word of a scripted final: times in seconds from the stream start. */
const fakeWordSchema = z.object({ word: z.string(), start: z.number().min(0), end: z.number().min(0), confidence: z.number().min(0).max(1).default(0.9) });

/** zod schema of one script step. Exactly one action per step is expected; when several are given they run in the order listed here. */
export const fakeSttStepSchema = z.object({
  /** Fire once this many seconds of audio have been written to the stream (≥ 0). */
  at: z.number().min(0),
  /** Emit `speech_started` at this audio time. */
  speechStarted: z.boolean().optional(),
  /** Emit a partial with this transcript (from the end of the previous final to `at`). */
  partial: z.string().optional(),
  /**
   * Emit a final covering [end of the previous final, `at`). `words` omitted: the transcript's words
   * spread evenly over that range (when the stream has word timestamps).
   */
  final: z
    .object({
      transcript: z.string(),
      words: z.array(fakeWordSchema).optional(),
      confidence: z.number().min(0).max(1).default(0.9),
      speechFinal: z.boolean().default(true),
    })
    .optional(),
  /** Fail the stream: an `error` event with a {@link FakeEngineError}; nothing follows. */
  error: fakeFailureSchema.optional(),
  /** Stall: from here on nothing is emitted, written audio piles up as backlog, `close()` never drains (only `abort()` ends it). */
  stall: z.boolean().optional(),
});
/** One step of a {@link FakeSttScript}. */
export type FakeSttStep = z.input<typeof fakeSttStepSchema>;

/** zod schema of a whole STT script. */
export const fakeSttScriptSchema = z.object({
  /** `start()` rejects with this failure (e.g. `{code:'rate_limit', retryable:true}`). */
  failAtStart: fakeFailureSchema.optional(),
  /** Steps, fired in order of `at` (ties keep their listed order). */
  steps: z.array(fakeSttStepSchema).default([]),
  /** Transcript of the final a client `finalize` forces (default `''`; ignored with {@link decode}). */
  finalizeTranscript: z.string().default(''),
  /**
   * Recognise the audio itself, so results depend on the audio a stream actually received (failover
   * replay tests). The audio is read as consecutive blocks of `blockSeconds`; a block whose first
   * sample v is positive is the word `w<v>` spanning the block, any other block is silence. The first
   * word block after a final emits `speech_started`; each word block a partial (words so far); a
   * silence block after words ends the utterance: a final at the block's start with those words
   * (times in seconds of audio this stream received). `finalize()` and `close()` emit the pending
   * words as the final. Scripted steps still fire at their audio times (e.g. an `error` mid-stream).
   */
  decode: z.object({ blockSeconds: z.number().positive().default(0.5) }).optional(),
});
/** A fake STT script (input form: defaults may be omitted). */
export type FakeSttScript = z.input<typeof fakeSttScriptSchema>;
type ParsedScript = z.output<typeof fakeSttScriptSchema>;
type ParsedStep = z.output<typeof fakeSttStepSchema>;

/** Default capabilities: everything a real streaming engine offers, English, 16 kHz. */
export const FAKE_STT_CAPABILITIES: SttCapabilities = {
  partials: true,
  wordTimestamps: true,
  diarization: false,
  languages: ['en'],
  inputSampleRate: 16000,
  endpointing: true,
  vadEvents: true,
};

/** Options of {@link FakeSttEngine}. */
export interface FakeSttEngineOptions {
  /** Engine id; default `fake`. */
  id?: string;
  /** Overrides of {@link FAKE_STT_CAPABILITIES} (capabilities as data, served in `/v1/models`). */
  capabilities?: Partial<SttCapabilities>;
  /** The script every new stream follows; default: no steps. */
  script?: FakeSttScript;
}

function toError(f: FakeFailure): FakeEngineError {
  return new FakeEngineError(f.code as ErrorCode, f.message, f.retryable);
}

/**
 * A scripted {@link SttEngine}. Each `start()` takes the current {@link script} (so a test may change
 * it between sessions); `started` records each stream's config for assertions.
 */
export class FakeSttEngine extends ScriptedFake<typeof fakeSttScriptSchema> implements SttEngine {
  readonly capabilities: SttCapabilities;
  /** No pace limit for audio replayed after a failover (an in-process engine; see `PacedSttEngine` in ../failover.ts). */
  readonly replayPace = null;
  /** Stream configs passed to `start`, in order (including refused starts). */
  readonly started: SttStreamConfig[] = [];
  /** Every chunk passed through undecoded (`writeEncoded`, capability `passthroughEncodings`), in order, as written. */
  readonly encodedWrites: Uint8Array[] = [];
  private readonly open = new Set<FakeSttStream>();

  constructor(o: FakeSttEngineOptions = {}) {
    super(fakeSttScriptSchema, o.id ?? 'fake', o.script);
    this.capabilities = { ...FAKE_STT_CAPABILITIES, ...o.capabilities };
  }

  /** @throws FakeEngineError when the script says `failAtStart`. */
  async start(config: SttStreamConfig): Promise<SttStream> {
    this.started.push(config);
    if (this.parsed.failAtStart) throw toError(this.parsed.failAtStart);
    const s = new FakeSttStream(this.parsed, config, this.capabilities.inputSampleRate, () => this.open.delete(s), this.encodedWrites);
    this.open.add(s);
    return s;
  }

  stats(): SttEngineStats {
    return { activeStreams: this.open.size, idleDecoders: 0, busyDecoders: this.open.size };
  }

  async shutdown(): Promise<void> {
    for (const s of [...this.open]) s.abort();
  }
}

/** One scripted stream. Times are seconds of audio written. */
export class FakeSttStream extends EventEmitter<SttStreamEvents> implements SttStream {
  private samples = 0;
  private next = 0;
  private lastFinalEnd = 0;
  private stalledAt: number | null = null;
  private dead = false;
  /** An error step fired: the stream takes nothing more and ends when the error is delivered. */
  private failed = false;
  private closing: Promise<void> | null = null;
  private drained: (() => void) | null = null;
  private readonly out: (() => void)[] = [];
  private scheduled = false;
  private readonly steps: ParsedStep[];
  /** Decode mode: words of the utterance in progress. */
  private pending: SttWord[] = [];

  constructor(
    private readonly script: ParsedScript,
    private readonly config: SttStreamConfig,
    private readonly rate: number,
    private readonly release: () => void,
    private readonly encodedWrites: Uint8Array[] = [],
  ) {
    super();
    this.steps = script.steps.map((s, i) => ({ s, i })).sort((a, b) => a.s.at - b.s.at || a.i - b.i).map((x) => x.s);
  }

  get audioSeconds(): number {
    return this.samples / this.rate;
  }

  /** Audio written since the stream stalled (0 while it answers). */
  get backlogSeconds(): number {
    return this.stalledAt === null ? 0 : this.audioSeconds - this.stalledAt;
  }

  write(pcm: Int16Array): void {
    if (this.dead || this.closing || this.failed) return;
    const decode = this.script.decode;
    if (!decode) {
      this.samples += pcm.length;
      this.fireDue();
      return;
    }
    const block = Math.max(1, Math.round(decode.blockSeconds * this.rate));
    let off = 0;
    while (off < pcm.length && !this.failed && !this.dead) {
      if (this.samples % block === 0 && this.stalledAt === null) this.onBlock(this.samples / block, pcm[off]!, decode.blockSeconds);
      const take = Math.min(pcm.length - off, block - (this.samples % block));
      this.samples += take;
      off += take;
      this.fireDue();
    }
  }

  /** Decode mode: block `i` (starting with sample value `v`) began. */
  private onBlock(i: number, v: number, seconds: number): void {
    const at = i * seconds;
    if (v > 0) {
      if (this.pending.length === 0 && this.config.vad) this.enqueue(() => this.emit('speech_started', { timestamp: at }));
      this.pending.push({ word: `w${v}`, start: at, end: at + seconds, confidence: 0.9 });
      if (this.config.partials) {
        const start = this.lastFinalEnd;
        const words = this.pending.map((w) => ({ ...w }));
        const transcript = words.map((w) => w.word).join(' ');
        this.enqueue(() => this.emit('partial', { transcript, start, duration: at + seconds - start, ...(this.config.wordTimestamps ? { words } : {}) }));
      }
    } else if (this.pending.length > 0) {
      this.flushPending(true, false, at);
    }
  }

  /** Decode mode: the pending words as a final ending at `at` seconds. */
  private flushPending(speechFinal: boolean, fromFinalize: boolean, at: number): void {
    const words = this.pending;
    this.pending = [];
    this.queueFinal(words.map((w) => w.word).join(' '), words, 0.9, speechFinal, fromFinalize, at);
  }

  /**
   * Passthrough: records the bytes as written; linear16 advances the script's audio clock by the
   * samples they hold (at the client's rate, scaled to the engine rate), other encodings do not.
   */
  writeEncoded(bytes: Uint8Array): void {
    if (this.dead || this.closing || this.failed) return;
    this.encodedWrites.push(bytes);
    const f = this.config.passthrough;
    if (f?.encoding === 'linear16') this.samples += Math.round((bytes.length / 2 / f.channels) * (this.rate / f.sampleRate));
    this.fireDue();
  }

  finalize(): void {
    if (this.dead || this.closing || this.failed || this.stalledAt !== null) return;
    if (this.script.decode) return this.flushPending(false, true, this.audioSeconds);
    const text = this.script.finalizeTranscript;
    this.queueFinal(text, undefined, 0.9, false, true, this.audioSeconds);
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.dead) return Promise.resolve();
    this.closing = new Promise<void>((resolve) => (this.drained = resolve));
    if (this.stalledAt === null && !this.failed) {
      if (this.script.decode && this.pending.length > 0) this.flushPending(false, false, this.audioSeconds);
      this.enqueue(() => this.finish());
    }
    return this.closing;
  }

  abort(): void {
    this.finish();
  }

  private finish(): void {
    if (this.dead) return;
    this.dead = true;
    this.out.length = 0;
    this.release();
    this.drained?.();
    this.drained = null;
  }

  /** Queue every step whose time has come. */
  private fireDue(): void {
    const now = this.audioSeconds;
    while (this.stalledAt === null && this.next < this.steps.length && this.steps[this.next]!.at <= now) {
      const step = this.steps[this.next++]!;
      if (step.speechStarted && this.config.vad) this.enqueue(() => this.emit('speech_started', { timestamp: step.at }));
      if (step.partial !== undefined && this.config.partials) {
        const start = this.lastFinalEnd;
        this.enqueue(() => this.emit('partial', { transcript: step.partial!, start, duration: step.at - start }));
      }
      if (step.final) this.queueFinal(step.final.transcript, step.final.words, step.final.confidence, step.final.speechFinal, false, step.at);
      if (step.error) {
        const err = toError(step.error);
        this.enqueue(() => {
          this.finish();
          this.emit('error', err);
        });
        this.failed = true; // nothing is fired after an error
        this.next = this.steps.length;
      }
      if (step.stall) this.stalledAt = step.at;
    }
  }

  private queueFinal(transcript: string, words: SttWord[] | undefined, confidence: number, speechFinal: boolean, fromFinalize: boolean, at: number): void {
    const start = this.lastFinalEnd;
    const end = Math.max(at, start);
    this.lastFinalEnd = end;
    const final: SttFinal = { transcript, confidence, start, duration: end - start, language: this.config.language, speechFinal, fromFinalize };
    if (this.config.wordTimestamps) final.words = words ?? spread(transcript, start, end);
    this.enqueue(() => this.emit('final', final));
  }

  private enqueue(f: () => void): void {
    this.out.push(f);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      while (this.out.length > 0 && !this.dead) this.out.shift()!();
    });
  }
}

/** The transcript's words spread evenly over [start, end) seconds. */
function spread(transcript: string, start: number, end: number): SttWord[] {
  const texts = transcript.split(/\s+/).filter(Boolean);
  const step = texts.length > 0 ? (end - start) / texts.length : 0;
  return texts.map((word, i) => ({ word, start: start + i * step, end: start + (i + 1) * step, confidence: 0.9 }));
}
