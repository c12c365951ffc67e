/**
 * The streaming TTS interface over a per-segment engine (issue 10 part 1 "Streaming TTS engine
 * interface … with today's segmenter/queue/epoch logic moved from the session into an adapter for
 * per-segment engines, as engines/stt/segmented.ts does for STT").
 *
 * `pushText` feeds a {@link TextSegmenter} (sentence/clause boundaries, src/text/segmenter.ts); each
 * finished segment is queued and synthesised in order, one at a time, by `engine.synthesize`.
 * `flush` releases the segmenter's remainder and queues a `flushed` marker. `clear` bumps the
 * generation, kills the running engine job (its AbortSignal), and empties the queue and the
 * segmenter — synchronously, so no audio produced before the clear is yielded after it.
 *
 * Flow control is by iteration: the adapter pulls a PCM chunk from the engine only when the
 * consumer asks for the next event, so a consumer that awaits its socket pauses the engine process
 * (its pipe fills and it blocks).
 */
import { TextSegmenter, type SegmenterOptions } from '../../text/segmenter.js';
import { toVoxgateError } from '../../util/errors.js';
import type { TtsEngine, TtsStream, TtsStreamEvent, TtsSynthesisRequest } from './types.js';

type Item = { kind: 'segment'; text: string } | { kind: 'flush' };

/**
 * Open a streaming session on `engine`: its own `openStream` when it has one, else the
 * {@link SegmentedTtsStream} adapter.
 * @param req voice id and speed, already validated against the engine's capabilities.
 */
export function openTtsStream(engine: TtsEngine, req: Omit<TtsSynthesisRequest, 'text'>, segmenter?: Partial<SegmenterOptions>): TtsStream {
  return engine.openStream?.(req) ?? new SegmentedTtsStream(engine, req, segmenter);
}

/** {@link TtsStream} over a per-segment {@link TtsEngine} (see the module docs). */
export class SegmentedTtsStream implements TtsStream {
  readonly sampleRate: number;
  private gen = 0;
  private readonly segmenter: TextSegmenter;
  private readonly queue: Item[] = [];
  private queuedChars = 0;
  private segCount = 0;
  private inSegment = false;
  private job: AbortController | null = null;
  private closed = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly engine: TtsEngine,
    private readonly req: Omit<TtsSynthesisRequest, 'text'>,
    segmenter?: Partial<SegmenterOptions>,
  ) {
    this.segmenter = new TextSegmenter(segmenter);
    const voices = engine.capabilities.voices;
    this.sampleRate = (voices.find((v) => v.id === req.voice) ?? voices[0])?.sampleRate ?? 16000;
  }

  get generation(): number {
    return this.gen;
  }

  get pendingChars(): number {
    return this.segmenter.pendingChars + this.queuedChars;
  }

  get busy(): boolean {
    return this.inSegment || this.queue.length > 0;
  }

  pushText(text: string): void {
    if (this.closed || !text) return;
    for (const s of this.segmenter.push(text)) this.enqueue({ kind: 'segment', text: s });
  }

  flush(): void {
    if (this.closed) return;
    const last = this.segmenter.flush();
    if (last) this.enqueue({ kind: 'segment', text: last });
    this.enqueue({ kind: 'flush' });
  }

  clear(): void {
    this.gen++;
    this.job?.abort();
    this.job = null;
    this.queue.length = 0;
    this.queuedChars = 0;
    this.segmenter.clear();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clear();
    this.wakeUp();
  }

  private enqueue(item: Item): void {
    if (item.kind === 'segment') this.queuedChars += item.text.length;
    this.queue.push(item);
    this.wakeUp();
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TtsStreamEvent> {
    while (!this.closed) {
      const item = this.queue.shift();
      if (!item) {
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      const gen = this.gen;
      if (item.kind === 'flush') {
        yield { kind: 'flushed', gen };
        continue;
      }
      this.queuedChars -= item.text.length;
      const segmentId = `seg_${String(++this.segCount).padStart(3, '0')}`;
      this.inSegment = true;
      const ctl = new AbortController();
      this.job = ctl;
      try {
        yield { kind: 'segment_start', segmentId, text: item.text, gen };
        if (gen !== this.gen) continue;
        let failure: Error | null = null;
        try {
          for await (const pcm of this.engine.synthesize({ text: item.text, voice: this.req.voice, speed: this.req.speed }, ctl.signal)) {
            if (gen !== this.gen || this.closed) break; // `break` ends the engine's iteration: its job is killed
            yield { kind: 'audio', pcm, gen };
          }
        } catch (err) {
          if (gen !== this.gen || this.closed || (err as Error).name === 'AbortError') continue;
          const e = toVoxgateError(err);
          if (e.code !== 'provider_error') throw e;
          failure = e;
        }
        if (gen !== this.gen || this.closed) continue;
        if (failure) yield { kind: 'segment_error', segmentId, error: failure, gen };
        if (gen === this.gen) yield { kind: 'segment_end', segmentId, gen };
      } finally {
        if (this.job === ctl) this.job = null;
        this.inSegment = false;
      }
    }
  }
}
