/**
 * Plays streamed linear16 TTS audio as it arrives with the Web Audio API: each chunk becomes an
 * AudioBuffer scheduled back to back on the context clock (no waiting for the whole clip), with a
 * short lead so network jitter does not starve the output. `stop()` silences everything at once
 * (barge-in).
 */

/** First chunk (and any chunk after an underrun) starts this far ahead of the clock (s). */
const LEAD_S = 0.05;

/** A streaming PCM player. */
export class PcmPlayer {
  private ctx: AudioContext | null = null;
  private nextTime = 0;
  private carry: number | null = null;
  private sources = new Set<AudioBufferSourceNode>();
  private generation = 0;
  /** Seconds of audio decoded into buffers since {@link reset}. */
  decodedSeconds = 0;
  /** Seconds of audio that finished playing since {@link reset}. */
  playedSeconds = 0;
  /** `performance.now()` (ms) at which the first buffer since {@link reset} starts sounding. */
  firstSoundAt: number | null = null;
  /** Called whenever the counters change. */
  onProgress: () => void = () => {};

  /** Create/resume the AudioContext. Call from a user gesture (browsers' autoplay policy). */
  async unlock(): Promise<void> {
    this.ctx ??= new AudioContext({ latencyHint: 'interactive' });
    if (this.ctx.state !== 'running') await this.ctx.resume();
  }

  /** Counters back to zero for a new utterance (does not stop playback). */
  reset(): void {
    this.decodedSeconds = 0;
    this.playedSeconds = 0;
    this.firstSoundAt = null;
    this.carry = null;
  }

  /** True while scheduled audio remains. */
  get playing(): boolean {
    return this.sources.size > 0;
  }

  /**
   * Queue linear16 (16-bit little-endian, mono) bytes at `sampleRate` Hz for playback right after
   * what is already queued. An odd trailing byte is kept for the next chunk.
   */
  enqueue(bytes: Uint8Array, sampleRate: number): void {
    const ctx = this.ctx;
    if (!ctx || bytes.length === 0) return;
    let data = bytes;
    if (this.carry !== null) {
      data = new Uint8Array(bytes.length + 1);
      data[0] = this.carry;
      data.set(bytes, 1);
      this.carry = null;
    }
    if (data.length % 2) {
      this.carry = data[data.length - 1]!;
      data = data.subarray(0, data.length - 1);
    }
    const n = data.length / 2;
    if (n === 0) return;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const buf = ctx.createBuffer(1, n, sampleRate);
    const ch = buf.getChannelData(0);
    for (let i = 0; i < n; i++) ch[i] = view.getInt16(2 * i, true) / 32768;
    const src = ctx.createBufferSource();
    src.buffer = buf;
    src.connect(ctx.destination);
    const now = ctx.currentTime;
    const start = this.nextTime < now + 0.005 ? now + LEAD_S : this.nextTime;
    src.start(start);
    this.nextTime = start + buf.duration;
    if (this.firstSoundAt === null) this.firstSoundAt = performance.now() + (start - now) * 1000;
    this.decodedSeconds += buf.duration;
    this.sources.add(src);
    const gen = this.generation;
    src.onended = () => {
      this.sources.delete(src);
      if (gen === this.generation) this.playedSeconds += buf.duration;
      this.onProgress();
    };
    this.onProgress();
  }

  /** Stop all queued and sounding audio immediately. */
  stop(): void {
    this.generation++;
    for (const s of this.sources) {
      try {
        s.stop();
      } catch {
        /* not started */
      }
      s.disconnect();
    }
    this.sources.clear();
    this.nextTime = 0;
    this.carry = null;
    this.onProgress();
  }
}
