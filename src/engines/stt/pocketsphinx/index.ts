/**
 * The embedded English STT engine: CMU PocketSphinx 0.8+5prealpha from Debian (`pocketsphinx-en-us`)
 * through the in-repo N-API addon, with Silero VAD endpointing (shared/spec/engines.md §2–3, §1).
 *
 * - One decoder per active stream, from a warm {@link DecoderPool}; the 3-gram LM is loaded once
 *   and shared; decoding runs on the libuv pool, never on the event loop.
 * - Silero VAD (sherpa-onnx-node, model file from the `@ricky0123/vad-web` npm package) decides
 *   utterance boundaries; {@link SegmentedStream} turns that into partials/finals.
 */
import { Endpointer, VadPool } from '../../../audio/vad.js';
import { VoxgateError } from '../../../util/errors.js';
import { SPECULATIVE_LEAD_MS, SegmentedStream } from '../segmented.js';
import type { SttCapabilities, SttEngine, SttEngineStats, SttStream, SttStreamConfig } from '../types.js';
import { SharedModel } from './native.js';
import { DecoderPool } from './pool.js';

/** Options of the PocketSphinx engine (config file `engines.pocketsphinx`). */
export interface PocketSphinxOptions {
  /** Warm decoders kept ready. */
  minIdleDecoders: number;
  /** Concurrent stream cap. */
  maxDecoders: number;
}

/** Capabilities as data (served in `GET /v1/models`). */
export const POCKETSPHINX_CAPABILITIES: SttCapabilities = {
  partials: true,
  wordTimestamps: true,
  diarization: false,
  languages: ['en'],
  inputSampleRate: 16000,
  endpointing: true,
  vadEvents: true,
};

/** See the module documentation. */
export class PocketSphinxEngine implements SttEngine {
  readonly id = 'pocketsphinx';
  readonly version = '0.8+5prealpha (Debian)';
  readonly capabilities = POCKETSPHINX_CAPABILITIES;
  /** Failover replay pace (× real time): none — an embedded decoder takes audio as fast as it decodes (src/engines/stt/failover.ts). */
  readonly replayPace = null;
  private model: SharedModel | null = null;
  private pool: DecoderPool | null = null;
  private readonly vads = new VadPool();
  private readonly streams = new Set<SttStream>();

  constructor(private readonly opts: PocketSphinxOptions) {}

  async init(): Promise<void> {
    this.model = await SharedModel.load();
    this.pool = new DecoderPool(this.model, { minIdle: this.opts.minIdleDecoders, maxDecoders: this.opts.maxDecoders });
    await this.pool.warm();
    this.vads.warm(Math.max(1, this.opts.minIdleDecoders));
    // A detector per possible stream, built in the background: constructing one blocks the event
    // loop for 50–90 ms, which in a burst of session starts stalled every session (issue 14 item 6).
    // ~8 MB each; the pool keeps up to 8 idle after any burst anyway.
    this.vads.keepWarm(this.opts.maxDecoders);
  }

  async start(config: SttStreamConfig): Promise<SttStream> {
    if (!this.pool) throw new VoxgateError('internal_error', 'engine not initialised');
    if (!this.capabilities.languages.includes(config.language)) {
      throw new VoxgateError('config_error', `language "${config.language}" is not supported by ${this.id}`);
    }
    const pool = this.pool;
    const decoder = await pool.acquire();
    const vad = config.vad ? this.vads.acquire() : null;
    let stream: SegmentedStream;
    const release = (): void => {
      pool.release(decoder);
      if (vad) this.vads.release(vad);
      this.streams.delete(stream);
    };
    stream = new SegmentedStream({
      decoder,
      vad: vad
        ? {
            vad,
            endpointer: new Endpointer({
              sampleRate: this.capabilities.inputSampleRate,
              endpointingMs: config.endpointingMs,
              vadHangoverMs: vad.hangoverMs,
              vadOnsetDelayMs: vad.onsetDelayMs,
              pauseMs: config.endpointingMs === null ? null : Math.max(0, config.endpointingMs - SPECULATIVE_LEAD_MS),
            }),
          }
        : null,
      sampleRate: this.capabilities.inputSampleRate,
      config,
      release,
    });
    this.streams.add(stream);
    return stream;
  }

  stats(): SttEngineStats {
    const p = this.pool?.stats();
    return { activeStreams: this.streams.size, idleDecoders: p?.idle ?? 0, busyDecoders: p?.busy ?? 0 };
  }

  /** Streams that could start now (the decoder pool's free capacity; 0 before `init`). */
  freeStreams(): number {
    return this.pool?.available() ?? 0;
  }

  /** Pool details for `/v1/status`. */
  poolStats(): ReturnType<DecoderPool['stats']> | null {
    return this.pool?.stats() ?? null;
  }

  async shutdown(): Promise<void> {
    for (const s of [...this.streams]) s.abort();
    await this.pool?.shutdown();
    this.vads.shutdown();
    this.model?.free();
    this.pool = null;
    this.model = null;
  }
}
