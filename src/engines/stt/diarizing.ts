/**
 * Diarization in the engine layer (issue 13 "Embedded diarizer", "Upstream pass-through",
 * "Multichannel as diarization"): a stream wrapper that gives every final word a `speaker` (and
 * `speakerConfidence` where known) and every labelled final its segment `speaker`, whichever engine
 * transcribes. Three modes, chosen per stream by {@link diarizationMode}:
 *
 * | mode       | when                                                     | who labels                                      |
 * |------------|----------------------------------------------------------|-------------------------------------------------|
 * | `channel`  | `multichannel=true` (one engine stream per channel)      | the channel index is the speaker (confidence 1) |
 * | `upstream` | the engine's capabilities say `diarization` (Deepgram)   | the backend; its `speaker` is passed unchanged  |
 * | `embedded` | any other engine (PocketSphinx, SLNG relays, fakes)      | a {@link StreamDiarizer} fed a tee of the PCM   |
 *
 * In `upstream` mode the engine is started with `config.diarize` (Deepgram: `diarize=true` on the
 * upstream query) and no embedded diarizer is created. In the other modes the engine is started
 * without it. Whatever the mode, the engine is asked for word timings (labels are per word; the
 * segment speaker is the label of most of its words' time) and the words are removed again when the
 * client did not ask for them.
 *
 * Placement with failover (src/engines/stt/failover.ts): the wrapper sits ABOVE the failover engine —
 * the session wraps the streams the front door's {@link FailoverSttEngine} returns. So the diarizer
 * sees every sample the client sent, in order, exactly once (a replay to a new backend is not fed to
 * it again), and the word times it labels are already rebased to the client's stream clock; its
 * history and the labels already emitted survive a backend switch. The failover engine declares
 * `diarization` only when every backend diarizes, so a model mixing a diarizing upstream with an
 * embedded one is labelled by the embedded diarizer throughout: one label space per stream.
 *
 * Partials: never labelled. Deepgram labels interim words too, but those labels may change with the
 * next interim; voxgate only ever sends a label it will not revise (issue 13: "a label already sent
 * is never changed"), so labels appear on finals. The stability across finals is the
 * {@link StreamDiarizer}'s contract (it maps clusters onto labels already emitted).
 *
 * Units: times in seconds from the start of the stream; PCM 16-bit mono at the engine's input rate.
 */
import { EventEmitter } from 'node:events';
import type { RequestContext } from '../context.js';
import type { Diarizer, SpeakerLabel, TimeSpan } from '../../diarize/types.js';
import { createDiarizer } from '../../diarize/index.js';
import { VoxgateError } from '../../util/errors.js';
import type { SttCapabilities, SttEngine, SttFinal, SttStream, SttStreamConfig, SttStreamEvents, SttWord } from './types.js';

/** How a stream is diarized (module docs). */
export type DiarizationMode = 'off' | 'channel' | 'upstream' | 'embedded';

/**
 * The mode for a stream.
 * @param caps the capabilities of the engine the session drives (the failover engine's: `diarization`
 *   only when every backend diarizes).
 * @param config the stream config; `diarize` absent = off.
 * @param multichannel the session transcribes each channel separately.
 */
export function diarizationMode(caps: SttCapabilities, config: Pick<SttStreamConfig, 'diarize'>, multichannel: boolean): DiarizationMode {
  if (!config.diarize) return 'off';
  if (multichannel) return 'channel';
  return caps.diarization ? 'upstream' : 'embedded';
}

let defaultInstance: Diarizer | null = null;
/**
 * The process-wide embedded diarizer: the classical one (src/diarize/index.ts `createDiarizer`,
 * experimental), created on first use. It is a factory: each stream gets its own `StreamDiarizer`.
 */
export function defaultDiarizer(): Diarizer {
  defaultInstance ??= createDiarizer();
  return defaultInstance;
}

/**
 * What `/v1/models` says about diarization for an engine: `diarization: true` for every engine (the
 * embedded diarizer labels those that do not diarize themselves) and `diarizer` naming who labels:
 * `{source: 'upstream'}` for an engine that diarizes itself, else `{source: 'embedded', id,
 * experimental}` of the embedded diarizer (the classical one is experimental, issue 13).
 * @returns a copy of `caps` with those fields.
 */
export function listedCapabilities(caps: SttCapabilities, diarizer: Diarizer = defaultDiarizer()): SttCapabilities & { diarizer: { source: 'upstream' | 'embedded'; id?: string; experimental: boolean } } {
  return {
    ...caps,
    diarization: true,
    diarizer: caps.diarization ? { source: 'upstream', experimental: false } : { source: 'embedded', id: diarizer.id, experimental: diarizer.experimental },
  };
}

/** Labels word spans of finals: a live {@link StreamDiarizer}, or a fixed speaker (a channel). */
interface Labeller {
  write(pcm: Int16Array): void;
  labelFinal(words: readonly TimeSpan[]): SpeakerLabel[];
  close(): void;
}

/** Every span is `speaker` with confidence 1 (multichannel: the channel is the speaker). */
function fixedLabeller(speaker: number): Labeller {
  return { write: () => undefined, labelFinal: (w) => w.map(() => ({ speaker, confidence: 1 })), close: () => undefined };
}

/**
 * The segment speaker of labelled words: the label covering most of their time (a word of zero
 * length counts a millisecond), ties to the earliest such word's label.
 * @returns undefined when no word has a label.
 */
export function segmentSpeaker(words: readonly Pick<SttWord, 'start' | 'end' | 'speaker'>[]): number | undefined {
  const total = new Map<number, number>();
  let best: number | undefined;
  for (const w of words) {
    if (w.speaker === undefined) continue;
    const t = (total.get(w.speaker) ?? 0) + Math.max(0.001, w.end - w.start);
    total.set(w.speaker, t);
    if (best === undefined || t > total.get(best)!) best = w.speaker;
  }
  return best;
}

/**
 * Start a stream on `engine` with diarization in the given mode (module docs).
 * @param channel the 0-based channel this stream transcribes (mode `channel`).
 * @param diarizer the embedded diarizer (mode `embedded`); default {@link defaultDiarizer}.
 * @returns the engine's stream unchanged when the mode is `off`, else a {@link DiarizingSttStream}.
 * @throws whatever `engine.start` throws; `internal_error` when mode `embedded` is asked for a
 *   stream whose audio passes through undecoded (the session decodes such streams).
 */
export async function startDiarizedStream(
  engine: SttEngine,
  config: SttStreamConfig,
  ctx: RequestContext | undefined,
  mode: DiarizationMode,
  o: { channel?: number; diarizer?: Diarizer } = {},
): Promise<SttStream> {
  if (mode === 'off') return engine.start(config, ctx);
  if (mode === 'embedded' && config.passthrough) throw new VoxgateError('internal_error', 'embedded diarization needs decoded PCM; the stream was opened for undecoded audio');
  const inner: SttStreamConfig = { ...config, wordTimestamps: engine.capabilities.wordTimestamps };
  if (mode !== 'upstream') delete inner.diarize;
  const stream = await engine.start(inner, ctx);
  let labeller: Labeller | null = null;
  try {
    if (mode === 'channel') labeller = fixedLabeller(o.channel ?? 0);
    else if (mode === 'embedded') labeller = (o.diarizer ?? defaultDiarizer()).stream(engine.capabilities.inputSampleRate, config.diarize);
  } catch (err) {
    stream.abort();
    throw err;
  }
  return new DiarizingSttStream(stream, labeller, config.wordTimestamps, engine.capabilities.inputSampleRate);
}

/**
 * An engine stream whose finals carry speakers (module docs). With a labeller (modes `channel`,
 * `embedded`) it labels every word of every final; without one (mode `upstream`) the engine's own
 * word labels pass unchanged and only the segment `speaker` is derived from them.
 *
 * A labeller that throws (a diarizer defect) fails the stream with `internal_error` after delivering
 * that final unlabelled: the transcript is not lost, and the client is told labelling stopped.
 */
export class DiarizingSttStream extends EventEmitter<SttStreamEvents> implements SttStream {
  private closed = false;
  private samples = 0;

  /**
   * @param inner the engine's stream (started with word timings when the engine has them).
   * @param labeller null: the engine labels (upstream pass-through).
   * @param clientWords the client asked for words (else they are removed after labelling).
   * @param rate Hz of the PCM written (to clamp spans to the audio written).
   */
  constructor(
    private readonly inner: SttStream,
    private readonly labeller: Labeller | null,
    private readonly clientWords: boolean,
    private readonly rate: number,
  ) {
    super();
    inner.on('partial', (p) => this.emit('partial', p));
    inner.on('speech_started', (e) => this.emit('speech_started', e));
    inner.on('error', (e) => {
      this.release();
      this.emit('error', e);
    });
    inner.on('final', (f) => this.onFinal(f));
  }

  /** Tee the PCM to the diarizer (before the engine sees it, so a final never refers to audio it lacks), then queue it. */
  write(pcm: Int16Array): void {
    if (!this.closed && this.labeller) {
      this.labeller.write(pcm);
      this.samples += pcm.length;
    }
    this.inner.write(pcm);
  }

  /** Undecoded audio: only without an embedded diarizer (channel labels and upstream labels need no PCM). */
  get writeEncoded(): ((bytes: Uint8Array) => void) | undefined {
    const w = this.inner.writeEncoded;
    return w ? (bytes: Uint8Array) => w.call(this.inner, bytes) : undefined;
  }

  finalize(): void {
    this.inner.finalize();
  }

  async close(): Promise<void> {
    try {
      await this.inner.close();
    } finally {
      this.release();
    }
  }

  abort(): void {
    this.release();
    this.inner.abort();
  }

  get audioSeconds(): number {
    return this.inner.audioSeconds;
  }

  get backlogSeconds(): number {
    return this.inner.backlogSeconds;
  }

  private release(): void {
    if (this.closed) return;
    this.closed = true;
    this.labeller?.close();
  }

  private onFinal(f: SttFinal): void {
    let words = f.words;
    let failure: Error | null = null;
    if (this.labeller && words && words.length > 0 && !this.closed) {
      const limit = this.samples / this.rate;
      const spans = words.map((w) => {
        const end = Math.min(Math.max(w.end, w.start), limit);
        return { start: Math.min(Math.max(0, w.start), end), end };
      });
      try {
        const labels = this.labeller.labelFinal(spans);
        if (labels.length !== spans.length) throw new Error(`the diarizer returned ${labels.length} labels for ${spans.length} words`);
        words = words.map((w, i) => ({ ...w, speaker: labels[i]!.speaker, speakerConfidence: labels[i]!.confidence }));
      } catch (err) {
        failure = err as Error;
      }
    } else if (this.labeller && (!words || words.length === 0) && f.transcript && !this.closed) {
      // An engine without word timings: the whole final is one span.
      try {
        const end = Math.min(f.start + f.duration, this.samples / this.rate);
        const [label] = this.labeller.labelFinal([{ start: Math.min(f.start, end), end }]);
        if (label) f = { ...f, speaker: label.speaker };
      } catch (err) {
        failure = err as Error;
      }
    }
    const out: SttFinal = { ...f };
    const speaker = words ? segmentSpeaker(words) : undefined;
    if (speaker !== undefined) out.speaker = speaker;
    if (this.clientWords) {
      if (words) out.words = words;
    } else {
      delete out.words;
    }
    this.emit('final', out);
    if (failure) {
      this.release();
      this.inner.abort();
      this.emit('error', new VoxgateError('internal_error', `speaker diarization failed: ${failure.message}`));
    }
  }
}
