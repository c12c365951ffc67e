/**
 * zod schemas of Deepgram's live STT protocol `/v1/listen` (shared/spec/protocols.md §2.3–2.4), both
 * directions. Server schemas are strict so tests catch any field voxgate invents; the client schema
 * is the three control messages of §2.3. `Results`, `SpeechStarted` and `UtteranceEnd` are also the
 * frames of the Deepgram-style SLNG route (§1.4; src/protocol/deepgram-style/schema.ts reuses them),
 * all built by src/protocol/deepgram/shape.ts, whose compile-time checks tie its types to these.
 * (Only zod is imported here: the browser client imports these types.)
 */
import { z } from 'zod';

const channelPair = z.tuple([z.number().int().min(0), z.number().int().min(1)]);

/** A word of `Results.channel.alternatives[].words` (§2.4: required word/start/end/confidence). */
export const listenWordSchema = z
  .object({
    word: z.string(),
    start: z.number().min(0),
    end: z.number().min(0),
    confidence: z.number().min(0).max(1),
    /** Present when `punctuate`, `smart_format` or `numerals` is on. */
    punctuated_word: z.string().optional(),
    speaker: z.number().int().optional(),
    language: z.string().optional(),
  })
  .strict();

/** `metadata` of a `Results` frame (§2.4). */
export const resultsMetadataSchema = z
  .object({
    request_id: z.string().uuid(),
    model_info: z.object({ name: z.string(), version: z.string(), arch: z.string() }).strict(),
    model_uuid: z.string().uuid(),
  })
  .strict();

/** `Results` (§2.4): required `type, channel_index, duration, start, channel, metadata`. */
export const listenResultsSchema = z
  .object({
    type: z.literal('Results'),
    channel_index: channelPair,
    duration: z.number().min(0),
    start: z.number().min(0),
    is_final: z.boolean(),
    speech_final: z.boolean(),
    from_finalize: z.boolean(),
    channel: z
      .object({
        alternatives: z
          .array(
            z
              .object({ transcript: z.string(), confidence: z.number().min(0).max(1), words: z.array(listenWordSchema), languages: z.array(z.string()).optional() })
              .strict(),
          )
          .min(1),
      })
      .strict(),
    metadata: resultsMetadataSchema,
  })
  .strict();

/** `Metadata` at session end (§2.4: required type, transaction_key, request_id, sha256, created, duration, channels). */
export const listenMetadataSchema = z
  .object({
    type: z.literal('Metadata'),
    transaction_key: z.string(),
    request_id: z.string().uuid(),
    sha256: z.string(),
    created: z.string().datetime(),
    /** Seconds of audio received. */
    duration: z.number().min(0),
    channels: z.number().int().min(0),
    models: z.array(z.string().uuid()),
    model_info: z.record(z.string(), z.object({ name: z.string(), version: z.string(), arch: z.string() }).strict()),
  })
  .strict();

/** `UtteranceEnd` (§2.4; requires `utterance_end_ms` and `interim_results`). `last_word_end` in seconds. */
export const listenUtteranceEndSchema = z
  .object({ type: z.literal('UtteranceEnd'), channel: channelPair, last_word_end: z.number().min(0) })
  .strict();

/** `SpeechStarted` (§2.4; requires `vad_events=true`). `timestamp` in seconds. */
export const listenSpeechStartedSchema = z
  .object({ type: z.literal('SpeechStarted'), channel: channelPair, timestamp: z.number().min(0) })
  .strict();

/** Any server frame of `/v1/listen` (there is no JSON error frame in v1: errors are close codes, §2.4–2.5). */
export const listenServerMessageSchema = z.discriminatedUnion('type', [
  listenResultsSchema,
  listenMetadataSchema,
  listenUtteranceEndSchema,
  listenSpeechStartedSchema,
]);
export type ListenServerMessage = z.infer<typeof listenServerMessageSchema>;

/** Client text frames (§2.3). `Finalize` may name a `channel`. */
export const listenClientMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('KeepAlive') }).loose(),
  z.object({ type: z.literal('Finalize'), channel: z.number().int().min(0).optional() }).loose(),
  z.object({ type: z.literal('CloseStream') }).loose(),
]);
