/**
 * zod schemas of Deepgram's streaming TTS protocol `/v1/speak` (shared/spec/protocols.md §3),
 * both directions, as in Deepgram's AsyncAPI (D1) and the official JS SDK types
 * (`SpeakV1Text`, `SpeakV1Flush`, `SpeakV1Clear`, `SpeakV1Close`; `SpeakV1Metadata`,
 * `SpeakV1Flushed`, `SpeakV1Cleared`, `SpeakV1Warning`).
 */
import { z } from 'zod';

/** Deepgram's per-message text limit on the WebSocket, characters (§3: 2001+ → error). */
export const SPEAK_MAX_CHARS = 2000;
/** Flush messages allowed per {@link FLUSH_WINDOW_MS} before a `Warning` (§3). */
export const FLUSH_LIMIT = 20;
/** Window of the Flush limit, ms. */
export const FLUSH_WINDOW_MS = 60_000;

/** Client → server text frames. `KeepAlive` is accepted too (Deepgram's STT keep-alive; harmless here). */
export const speakClientMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('Speak'), text: z.string() }).loose(),
  z.object({ type: z.literal('Flush') }).loose(),
  z.object({ type: z.literal('Clear') }).loose(),
  z.object({ type: z.literal('Close') }).loose(),
  z.object({ type: z.literal('KeepAlive') }).loose(),
]);

/** Server → client text frames (binary frames carry raw audio, no container). */
export const speakServerMessageSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('Metadata'),
      request_id: z.string().uuid(),
      model_name: z.string().min(1),
      model_version: z.string().min(1),
      model_uuid: z.string().uuid(),
      additional_model_uuids: z.array(z.string()).optional(),
    })
    .strict(),
  z.object({ type: z.literal('Flushed'), sequence_id: z.number().int().min(0) }).strict(),
  z.object({ type: z.literal('Cleared'), sequence_id: z.number().int().min(0) }).strict(),
  z.object({ type: z.literal('Warning'), description: z.string().min(1), code: z.string().min(1) }).strict(),
]);

/** A server text frame of this dialect. */
export type SpeakServerMessage = z.infer<typeof speakServerMessageSchema>;
