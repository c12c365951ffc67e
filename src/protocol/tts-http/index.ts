/**
 * The TTS HTTP request dialect (pure; no I/O): the JSON bodies of `POST /v1/tts/{model}`, the unmute
 * bridge and `POST /v1/speak` (shared/spec/protocols.md §1.7, §3), tolerant of the field names
 * other providers' clients send, and how the response's encoding and container follow from the body
 * and the `Accept` header. Moved out of the front door (issue 10 part 1: no dialect logic in
 * src/server/).
 */
import { z } from 'zod';
import { isPcmEncoding, type TtsEncoding } from '../../audio/encode.js';
import { VoxgateError } from '../../util/errors.js';

/** HTTP/JSON request body of the TTS HTTP routes (§1.7), tolerant of provider-specific field names. */
export const httpBodySchema = z
  .object({
    text: z.string({ error: 'Missing required field: text (a string)' }),
    voice: z.string().optional(),
    /** Deepgram-style bodies put the voice in `model`. */
    model: z.string().optional(),
    /** Rime/Sarvam-style voice field. */
    speaker: z.string().optional(),
    language: z.string().optional(),
    target_language_code: z.string().optional(),
    encoding: z.string().optional(),
    sample_rate: z.coerce.number().optional(),
    speed: z.coerce.number().optional(),
    container: z.enum(['wav', 'none', 'ogg']).optional(),
    /** Soniox-style format name: `wav`, `pcm`, `mp3`, `opus`/`ogg`, `mulaw`, `alaw`. */
    audio_format: z.enum(['wav', 'pcm', 'mp3', 'opus', 'ogg', 'mulaw', 'alaw']).optional(),
    stream: z.boolean().optional(),
    config: z
      .object({ sample_rate: z.coerce.number().optional(), encoding: z.string().optional(), language: z.string().optional(), speed: z.coerce.number().optional() })
      .loose()
      .optional(),
  })
  .loose();

/** `audio_format` names → encoding and container. */
export const AUDIO_FORMATS: Record<string, { encoding: TtsEncoding; container?: 'wav' | 'none' }> = {
  wav: { encoding: 'linear16', container: 'wav' },
  pcm: { encoding: 'linear16', container: 'none' },
  mp3: { encoding: 'mp3' },
  opus: { encoding: 'opus' },
  ogg: { encoding: 'opus' },
  mulaw: { encoding: 'mulaw', container: 'none' },
  alaw: { encoding: 'alaw', container: 'none' },
};

/** Encoding (and container) implied by an `Accept` header when the request names none; `{}` when it implies nothing. */
export function encodingFromAccept(accept: string | undefined): { encoding?: TtsEncoding; container?: 'wav' | 'none' } {
  const a = (accept ?? '').toLowerCase();
  if (a.includes('audio/mpeg') || a.includes('audio/mp3')) return { encoding: 'mp3' };
  if (a.includes('audio/ogg') || a.includes('audio/opus')) return { encoding: 'opus' };
  if (a.includes('audio/pcm') || a.includes('audio/l16')) return { encoding: 'linear16', container: 'none' };
  return {};
}

/**
 * The container of a response in encoding `e`: PCM encodings default to `wav` (or `none`), mp3 and
 * opus carry their own framing.
 * @throws VoxgateError `config_error` for a container the encoding cannot have.
 */
export function containerFor(e: TtsEncoding, asked: 'wav' | 'none' | 'ogg' | undefined): 'wav' | 'none' {
  if (isPcmEncoding(e)) {
    if (asked === 'ogg') throw new VoxgateError('config_error', `container "ogg" is not available for ${e}; use wav or none`);
    return asked ?? 'wav';
  }
  if (e === 'mp3' && asked && asked !== 'none') throw new VoxgateError('config_error', `container "${asked}" is not available for mp3; use none`);
  if (e === 'opus' && asked === 'wav') throw new VoxgateError('config_error', 'container "wav" is not available for opus (it is Ogg)');
  return 'none';
}
