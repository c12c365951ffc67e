/**
 * Multichannel transcription (Deepgram `multichannel=true`, shared/spec/protocols.md §2.2, §2.4
 * `channel_index`): one engine stream per channel behind the ordinary {@link SttStream} interface.
 *
 * `write()` takes interleaved N-channel PCM at the engine rate and feeds each channel to its own
 * stream; events are re-emitted with the channel index as a second argument, so the session tags
 * each `Results` with `channel_index: [i, N]`. Finalize, close and abort apply to every channel.
 */
import { EventEmitter } from 'node:events';
import type { SttFinal, SttPartial, SttStream } from '../engines/stt/types.js';
import { deinterleave } from '../audio/pcm.js';

/** Events of a {@link ChannelFanout}: the single-stream events plus the 0-based channel index. */
export interface ChannelFanoutEvents {
  partial: [SttPartial, number];
  final: [SttFinal, number];
  speech_started: [{ timestamp: number }, number];
  error: [Error];
}

/** N engine streams driven as one. */
export class ChannelFanout extends EventEmitter<ChannelFanoutEvents> implements Omit<SttStream, keyof EventEmitter> {
  /**
   * @param streams one started engine stream per channel, in channel order (at least one).
   */
  constructor(private readonly streams: SttStream[]) {
    super();
    streams.forEach((s, i) => {
      s.on('partial', (p) => this.emit('partial', p, i));
      s.on('final', (f) => this.emit('final', f, i));
      s.on('speech_started', (e) => this.emit('speech_started', e, i));
      s.on('error', (e) => this.emit('error', e));
    });
  }

  /** Number of channels. */
  get channels(): number {
    return this.streams.length;
  }

  /**
   * Queue interleaved PCM (`frames × channels` samples at the engine rate).
   * @throws RangeError when the length is not a whole number of frames.
   */
  write(pcm: Int16Array): void {
    const parts = deinterleave(pcm, this.streams.length);
    parts.forEach((p, i) => this.streams[i]!.write(p));
  }

  /**
   * Pass the client's bytes through to the single stream (passthrough sessions are mono).
   * @throws Error when the engine stream cannot take encoded bytes.
   */
  writeEncoded(bytes: Uint8Array): void {
    const s = this.streams[0]!;
    if (!s.writeEncoded || this.streams.length !== 1) throw new Error('engine stream does not take encoded audio');
    s.writeEncoded(bytes);
  }

  finalize(): void {
    for (const s of this.streams) s.finalize();
  }

  async close(): Promise<void> {
    await Promise.all(this.streams.map((s) => s.close()));
  }

  abort(): void {
    for (const s of this.streams) s.abort();
  }

  /** Seconds of audio written (per channel). */
  get audioSeconds(): number {
    return this.streams[0]!.audioSeconds;
  }

  /** The largest backlog of any channel, seconds. */
  get backlogSeconds(): number {
    return Math.max(...this.streams.map((s) => s.backlogSeconds));
  }
}
