/**
 * The synthesis pipeline shared by the TTS WebSocket session, the HTTP routes and the CLI:
 * text segment → engine (PCM at the voice's rate) → {@link AudioEncoder} (resample + encode) → sink.
 * Backpressure flows backwards: a sink that returns a promise pauses the encoder, which pauses
 * iteration over the engine's output, whose pipe then fills and blocks the engine process.
 */
import { createEncoder, type AudioEncoder, type ByteSink } from '../audio/encode.js';
import { abortError } from '../engines/tts/process.js';
import { TextSegmenter, type SegmenterOptions } from '../text/segmenter.js';
import type { ResolvedTtsOptions } from './tts_options.js';

/**
 * Synthesise one segment into `encoder`.
 * @param pace called after each PCM chunk with its duration in seconds; a returned promise delays
 *   the next chunk (real-time pacing).
 * @throws AbortError when `signal` aborts (the engine job is killed); VoxgateError `provider_error`
 *   when the engine fails.
 */
export async function renderSegment(o: ResolvedTtsOptions, text: string, encoder: AudioEncoder, signal: AbortSignal, pace?: (seconds: number) => void | Promise<void>): Promise<void> {
  const synth = o.engine.synthesize({ text, voice: o.voice.id, speed: o.speed }, signal);
  for await (const pcm of synth) {
    if (signal.aborted) throw abortError();
    const wait = encoder.write(pcm);
    if (wait) await wait;
    const paced = pace?.(pcm.length / synth.sampleRate);
    if (paced) await paced;
    // Let the event loop run between chunks (resampling is synchronous work): a `clear` arriving
    // mid-segment is then handled within one chunk's processing time, not after the whole segment.
    else await new Promise<void>((r) => setImmediate(r));
  }
  if (signal.aborted) throw abortError();
}

/** Split a complete text into segments exactly as a streaming session would. */
export function segmentText(text: string, options?: Partial<SegmenterOptions>): string[] {
  const seg = new TextSegmenter(options);
  const out = seg.push(text);
  const last = seg.flush();
  if (last) out.push(last);
  return out;
}

/**
 * Synthesise a whole text as one encoded stream (HTTP responses, `voxgate speak`).
 * @param onSegment called before each segment starts (index, text), e.g. for progress.
 * @returns seconds of audio produced (at the output rate).
 * @throws AbortError / VoxgateError as {@link renderSegment}; the encoder is aborted on failure.
 */
export async function synthesizeText(o: ResolvedTtsOptions, text: string, sink: ByteSink, signal: AbortSignal, onSegment?: (i: number, text: string) => void): Promise<{ seconds: number }> {
  const encoder = createEncoder({ encoding: o.encoding, sampleRate: o.sampleRate, inputRate: o.voice.sampleRate, sink });
  try {
    const segments = segmentText(text);
    for (let i = 0; i < segments.length; i++) {
      onSegment?.(i, segments[i]!);
      await renderSegment(o, segments[i]!, encoder, signal);
    }
    await encoder.end();
    if (signal.aborted) throw abortError();
    return { seconds: encoder.seconds };
  } catch (err) {
    encoder.abort();
    throw err;
  }
}
