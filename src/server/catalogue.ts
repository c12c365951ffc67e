/**
 * The catalogue listing of `GET /v1/models` (protocols.md §1.8 catalogue record fields): the fields
 * every STT and TTS entry shares, in one place. The STT listing (server.ts) and the TTS listing
 * (tts_routes.ts) add their kind's own fields (capabilities, voices) and the backends' placement.
 */

/** What the shared part of a listing entry needs from a catalogue entry. */
export interface ListedModel {
  code: string;
  engine: string;
  dialect: string;
  name?: string;
  description?: string;
}

/**
 * The shared fields of one `/v1/models` entry: `code`, `service_type`, `name`, `description`,
 * `engine`, `dialect`, `streaming`, `api_path` and `bridge_path` (the unmute bridge of the same model).
 * @param kind `stt` or `tts` (`service_type`, and the path prefix `/v1/stt/` or `/v1/tts/`).
 */
export function listingBase(kind: 'stt' | 'tts', m: ListedModel): Record<string, unknown> {
  return {
    code: m.code,
    service_type: kind,
    name: m.name ?? m.code,
    description: m.description ?? '',
    engine: m.engine,
    dialect: m.dialect,
    streaming: true,
    api_path: `/v1/${kind}/${m.code}`,
    bridge_path: `/v1/bridges/unmute/${kind}/${m.code}`,
  };
}
