/**
 * Parsing of SLNG-style client text frames (`init`, `audio`, `finalize`, `keepalive`, `close`),
 * shared/spec/protocols.md §1.3. Both SLNG STT dialects (unified §1.3 and the Deepgram-style direct
 * route §1.4) accept these client messages, so both use this parser.
 */
import { z } from 'zod';
import type { ClientCommand, SttInitRequest } from '../events.js';
import { clientMessageSchema, initConfigSchema } from './schema.js';
import { checkDiarizeOptions, speakerHint } from '../../diarize/hints.js';
import { toVoxgateError } from '../../util/errors.js';

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Parse one SLNG client text frame.
 * @param extraTypes dialect-specific extra message types mapped to commands (e.g. Deepgram `KeepAlive`).
 * @returns a command; malformed JSON, a missing/unknown `type`, or a bad `audio` payload give
 *   `invalid_request`; an `init.config` with wrongly typed fields gives `config_error`. Never throws.
 */
export function parseSlngClientFrame(text: string, extraTypes: Record<string, ClientCommand> = {}): ClientCommand {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'invalid', code: 'invalid_request', message: 'malformed JSON text frame' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { kind: 'invalid', code: 'invalid_request', message: 'text frames must be JSON objects with a "type" field' };
  }
  const type = (json as { type?: unknown }).type;
  if (typeof type !== 'string') {
    return { kind: 'invalid', code: 'invalid_request', message: 'missing "type" field' };
  }
  // Own keys only: a plain-object lookup would find `constructor`, `toString`, `__proto__`… (issue 14 #8).
  const extra = Object.hasOwn(extraTypes, type) ? extraTypes[type] : undefined;
  if (extra) return extra;
  const parsed = clientMessageSchema.safeParse(json);
  if (!parsed.success) {
    const known = ['init', 'audio', 'finalize', 'keepalive', 'close', ...Object.keys(extraTypes)];
    if (!known.includes(type)) {
      return { kind: 'invalid', code: 'invalid_request', message: `unknown message type "${type.slice(0, 64)}"; expected one of ${known.join(', ')}` };
    }
    return { kind: 'invalid', code: 'invalid_request', message: `invalid "${type}" message: ${z.prettifyError(parsed.error)}` };
  }
  const msg = parsed.data;
  switch (msg.type) {
    case 'init':
      return parseInit(msg.config);
    case 'audio': {
      const data = msg.data.replace(/\s+/g, '');
      if (data.length % 4 === 1 || !BASE64_RE.test(data)) {
        return { kind: 'invalid', code: 'invalid_request', message: '"audio.data" must be base64' };
      }
      return { kind: 'audio', data: Buffer.from(data, 'base64') };
    }
    case 'finalize':
      return { kind: 'finalize' };
    case 'keepalive':
      return { kind: 'keepalive' };
    case 'close':
      return { kind: 'close' };
  }
}

/** Translate an `init.config` object into a dialect-neutral {@link SttInitRequest}. */
export function parseInit(config: unknown): ClientCommand {
  if (config === undefined || config === null) return { kind: 'init', init: {} };
  const parsed = initConfigSchema.safeParse(config);
  if (!parsed.success) {
    return { kind: 'invalid', code: 'config_error', message: `invalid init config: ${z.prettifyError(parsed.error)}` };
  }
  const c = parsed.data;
  const init: SttInitRequest = {
    language: c.language,
    sampleRate: c.sample_rate,
    encoding: c.encoding,
    channels: c.channels,
    partials: c.enable_partials ?? c.enable_partial_transcripts,
    vad: c.enable_vad,
    wordTimestamps: c.enable_word_timestamps,
    endpointingMs: c.endpointing === false ? null : c.endpointing,
    vadEvents: c.vad_events,
  };
  try {
    const d = c.diarization ?? {};
    const hints = checkDiarizeOptions({
      numSpeakers: speakerHint(c.diarization?.num_speakers !== undefined ? 'diarization.num_speakers' : 'num_speakers', d.num_speakers ?? c.num_speakers),
      minSpeakers: speakerHint(c.diarization?.min_speakers !== undefined ? 'diarization.min_speakers' : 'min_speakers', d.min_speakers ?? c.min_speakers),
      maxSpeakers: speakerHint(c.diarization?.max_speakers !== undefined ? 'diarization.max_speakers' : 'max_speakers', d.max_speakers ?? c.max_speakers),
    });
    const on = c.enable_diarization === true || c.diarize === true || (c.diarization !== undefined && c.enable_diarization !== false && c.diarize !== false);
    if (on) init.diarize = hints;
  } catch (err) {
    return { kind: 'invalid', code: 'config_error', message: `invalid init config: ${toVoxgateError(err).message}` };
  }
  if (c.smart_format || c.punctuate || c.numerals) {
    init.format = { punctuate: !!(c.punctuate || c.smart_format), numerals: !!(c.numerals || c.smart_format), smartFormat: !!c.smart_format };
  }
  return { kind: 'init', init };
}
