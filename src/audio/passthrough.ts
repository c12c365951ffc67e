/**
 * The "decoder" of a session whose audio an engine takes undecoded (engine contract v2, issue 10
 * part 1: "Opus/mp3 from a client passes through untouched to an upstream that takes it").
 *
 * It has the {@link PcmDecoder} shape so the session's paths (feed, finalize, close, abort) stay
 * one, but it emits no PCM: every byte written goes to `sink` at once, unchanged. Raw encodings are
 * still checked for whole samples (as the raw decoder does), so a malformed frame is refused in the
 * client's dialect instead of garbling the upstream stream.
 */
import { EventEmitter } from 'node:events';
import { isRawEncoding, type DecoderEncoding, type PcmDecoder, type PcmDecoderEvents } from './decoder.js';
import { VoxgateError } from '../util/errors.js';

/**
 * Create a pass-through decoder.
 * @param encoding canonical encoding of the client's audio.
 * @param channels interleaved channels of raw input (frames must hold whole `2 × channels` bytes for linear16).
 * @param sink receives each written chunk, unchanged, synchronously.
 */
export function createPassthroughDecoder(encoding: DecoderEncoding, channels: number, sink: (bytes: Uint8Array) => void): PcmDecoder {
  return new PassthroughDecoder(encoding, channels, sink);
}

class PassthroughDecoder extends EventEmitter<PcmDecoderEvents> implements PcmDecoder {
  readonly backend = 'passthrough' as const;
  readonly synchronous = true;
  readonly needsDrain = false;
  readonly pid = undefined;
  private bytes = 0;
  private done = false;

  constructor(
    readonly encoding: DecoderEncoding,
    readonly channels: number,
    private readonly sink: (bytes: Uint8Array) => void,
  ) {
    super();
  }

  get inputBytes(): number {
    return this.bytes;
  }

  write(bytes: Uint8Array): boolean {
    if (this.done) return true;
    if (isRawEncoding(this.encoding)) {
      const frame = (this.encoding === 'linear16' ? 2 : 1) * this.channels;
      if (bytes.length % frame !== 0) {
        throw new VoxgateError('invalid_request', `${this.encoding} frame of ${bytes.length} bytes does not hold whole samples (${frame} bytes per frame); the frame was rejected`);
      }
    }
    this.bytes += bytes.length;
    this.sink(bytes);
    return true;
  }

  async flush(): Promise<void> {}

  async end(): Promise<void> {
    this.done = true;
  }

  abort(): void {
    this.done = true;
  }
}
