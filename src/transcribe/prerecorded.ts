/**
 * Pre-recorded (file) transcription as a stream with bounded memory (issue #3 "Pre-recorded (HTTP)";
 * shared/spec/protocols.md §1.7, §2.2):
 *
 *   request body ──▶ decoder (raw / WAV in-process, containers via ffmpeg) ──▶ engine stream(s) ──▶ finals
 *
 * The body is pulled chunk by chunk; when the engine's backlog passes {@link MAX_BACKLOG_SECONDS} the
 * pull waits, so a file of any length holds at most that much undecoded PCM in memory (plus the
 * decoder's and the socket's buffers). The upload's byte count is enforced while streaming
 * (`payload_too_large`), and an aborted upload (client gone) aborts the decoder and the engine
 * streams at once.
 */
import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { SttEngine, SttFinal, SttStream } from '../engines/stt/types.js';
import { ChannelFanout } from '../session/channel_fanout.js';
import { VoxgateError, toVoxgateError } from '../util/errors.js';

/** Undecoded audio (seconds) the engine may queue before the body stops being read. */
export const MAX_BACKLOG_SECONDS = 20;

/** What the pipeline needs from a decoder (a subset of `PcmDecoder` in src/audio/decoder.ts). */
export interface FileDecoder
  extends EventEmitter<{ pcm: [Int16Array]; format: [{ channels: number; sampleRate: number }]; error: [VoxgateError]; drain: [] }> {
  /** @returns false when the caller should wait for `drain`. */
  write(bytes: Uint8Array): boolean;
  /** Flush and release; rejects with the decode error. */
  end(): Promise<void>;
  abort(): void;
  /** Output channels per frame (0 until known). */
  readonly channels: number;
}

/** Options of {@link transcribeBody}. */
export interface TranscribeBodyOptions {
  engine: SttEngine;
  /** A decoder already created for the body's encoding, with the engine's rate as target. */
  decoder: FileDecoder;
  /** ISO-639-1 language for the engine. */
  language: string;
  /** One transcript per channel (Deepgram `multichannel=true`); requires a decoder that keeps channels. */
  multichannel: boolean;
  /** Silence (ms) that ends an utterance (Deepgram `utt_split` × 1000). */
  endpointingMs: number;
  /** Largest accepted body, bytes. */
  maxBytes: number;
}

/** The transcription of one file. Times in seconds from the start of the audio. */
export interface TranscribeBodyResult {
  /** Finals per transcript channel, in time order. */
  channels: SttFinal[][];
  /** Seconds of audio decoded (per channel). */
  duration: number;
  /** Bytes of the body. */
  bytes: number;
  /** SHA-256 (hex) of the body. */
  sha256: string;
  /** Channels in the source audio. */
  sourceChannels: number;
}

/**
 * Transcribe a request body.
 * @param body the upload as an async iterable of byte chunks (a Node `Readable`).
 * @throws VoxgateError `payload_too_large` over `maxBytes`; `invalid_audio` when the body is not
 *   decodable (or empty / holds no audio); `rate_limit` when the engine has no free decoder;
 *   `invalid_request` when the client went away. Every resource is released before it throws.
 */
export async function transcribeBody(body: AsyncIterable<Uint8Array | string>, o: TranscribeBodyOptions): Promise<TranscribeBodyResult> {
  const sha = createHash('sha256');
  let bytes = 0;
  let fanout = null as ChannelFanout | null;
  let starting = null as Promise<ChannelFanout> | null;
  let failure = null as VoxgateError | null;
  const finals: SttFinal[][] = [];
  const pending: Int16Array[] = [];
  let sourceChannels = 0;

  const startStreams = async (channels: number): Promise<ChannelFanout> => {
    const n = o.multichannel ? Math.max(1, channels) : 1;
    const streams: SttStream[] = [];
    try {
      for (let i = 0; i < n; i++) {
        streams.push(await o.engine.start({ language: o.language, partials: false, wordTimestamps: true, vad: true, endpointingMs: o.endpointingMs }));
      }
    } catch (err) {
      for (const s of streams) s.abort();
      throw toVoxgateError(err);
    }
    for (let i = 0; i < n; i++) finals.push([]);
    const f = new ChannelFanout(streams);
    f.on('final', (r, ch) => {
      if (r.transcript) finals[ch]!.push(r);
    });
    f.on('error', (e) => (failure ??= new VoxgateError('internal_error', `speech engine failed: ${e.message}`)));
    return f;
  };

  const { decoder } = o;
  decoder.on('error', (e) => (failure ??= e));
  decoder.on('pcm', (pcm) => {
    if (fanout) fanout.write(pcm);
    else {
      pending.push(pcm);
      starting ??= startStreams(decoder.channels || 1).then((f) => {
        fanout = f;
        for (const p of pending.splice(0)) f.write(p);
        return f;
      });
      starting.catch((e: unknown) => (failure ??= toVoxgateError(e)));
    }
  });
  decoder.on('format', (f) => (sourceChannels = f.channels));

  const cleanup = () => {
    decoder.abort();
    fanout?.abort();
    void starting?.then((f) => f.abort(), () => {});
  };
  try {
    for await (const chunk of body) {
      if (failure) throw failure;
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      bytes += buf.length;
      if (bytes > o.maxBytes) throw new VoxgateError('payload_too_large', `request body exceeds the ${o.maxBytes}-byte limit`);
      sha.update(buf);
      if (!decoder.write(buf)) await new Promise<void>((r) => decoder.once('drain', () => r()));
      while (fanout && fanout.backlogSeconds > MAX_BACKLOG_SECONDS && !failure) await new Promise((r) => setTimeout(r, 20));
    }
    if (failure) throw failure;
    if (bytes === 0) throw new VoxgateError('invalid_audio', 'the request body is empty; send the audio file as the body (or multipart field "audio")');
    await decoder.end();
    if (failure) throw failure;
    const f = fanout ?? (starting ? await starting : null);
    if (!f) throw new VoxgateError('invalid_audio', 'the upload holds no audio samples');
    await f.close();
    if (failure) throw failure;
    return { channels: finals, duration: f.audioSeconds, bytes, sha256: sha.digest('hex'), sourceChannels: sourceChannels || decoder.channels || 1 };
  } catch (err) {
    cleanup();
    const e = toVoxgateError(err);
    if ((err as NodeJS.ErrnoException)?.code === 'ECONNRESET' || /aborted/i.test((err as Error)?.message ?? '')) {
      throw new VoxgateError('invalid_request', 'the upload was aborted before it completed');
    }
    throw e;
  }
}
