/**
 * "Transcribe a file": a local audio file decoded in the browser (`decodeAudioData`, any format the
 * browser reads: WAV, MP3, Ogg/Opus, FLAC, AAC …), converted to mono linear16 at 16 kHz, and fed
 * to the sender in 20 ms chunks at real-time pace (as a microphone would).
 */

/** Sample rate of the decoded audio (Hz), as declared in `init.sample_rate`. */
export const FILE_RATE = 16000;
/** Samples per chunk (20 ms at 16 kHz). */
const CHUNK = 320;

/**
 * Decode a file to mono 16 kHz int16 samples. `decodeAudioData` resamples to its context's rate
 * (here an OfflineAudioContext at 16 kHz: one band-limited conversion in the browser), then the
 * channels are averaged.
 * @throws Error with a readable message when the browser cannot decode the file.
 */
export async function decodeFile(file: Blob & { name?: string }): Promise<Int16Array> {
  const bytes = await file.arrayBuffer();
  const ctx = new OfflineAudioContext(1, 1, FILE_RATE);
  let audio: AudioBuffer;
  try {
    audio = await ctx.decodeAudioData(bytes);
  } catch {
    throw new Error(`The browser could not decode ${file.name ? `"${file.name}"` : 'this file'} as audio (try WAV, MP3, Ogg or FLAC).`);
  }
  const n = audio.length;
  const out = new Int16Array(n);
  const chans = Array.from({ length: audio.numberOfChannels }, (_, c) => audio.getChannelData(c));
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (const ch of chans) s += ch[i]!;
    const v = Math.round((s / chans.length) * 32767);
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return out;
}

/** A paced playback of decoded samples into a sink. */
export class PacedStream {
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Resolves when every chunk was delivered or {@link stop} was called. */
  readonly done: Promise<'ended' | 'stopped'>;
  private resolveDone!: (v: 'ended' | 'stopped') => void;

  /**
   * Start delivering `samples` (16 kHz) in 20 ms chunks; chunk `i` is due at `t0 + 20 ms × i`.
   * @param onChunk receives each chunk and its level (dBFS).
   */
  constructor(
    private readonly samples: Int16Array,
    private readonly onChunk: (pcm: Int16Array, levelDbfs: number) => void,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
    const t0 = performance.now();
    let i = 0;
    const tick = () => {
      if (this.stopped) return;
      // Catch up after timer throttling (background tabs) by sending every chunk that is due.
      while (i * CHUNK < this.samples.length && t0 + (i * CHUNK * 1000) / FILE_RATE <= performance.now() + 1) {
        const pcm = this.samples.slice(i * CHUNK, (i + 1) * CHUNK);
        this.onChunk(pcm, level(pcm));
        i++;
      }
      if (i * CHUNK >= this.samples.length) {
        this.resolveDone('ended');
        return;
      }
      const due = t0 + (i * CHUNK * 1000) / FILE_RATE;
      this.timer = setTimeout(tick, Math.max(0, due - performance.now()));
    };
    tick();
  }

  /** Seconds of audio in the file. */
  get seconds(): number {
    return this.samples.length / FILE_RATE;
  }

  /** Stop delivering; `done` resolves with `stopped`. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.resolveDone('stopped');
  }
}

/** RMS level of int16 samples in dBFS (−120 for silence). */
export function level(pcm: Int16Array): number {
  let sum = 0;
  for (let i = 0; i < pcm.length; i++) sum += pcm[i]! * pcm[i]!;
  const rms = pcm.length ? Math.sqrt(sum / pcm.length) / 32768 : 0;
  return rms > 0 ? 20 * Math.log10(rms) : -120;
}
