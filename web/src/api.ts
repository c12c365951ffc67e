/**
 * The gateway's HTTP API as the playground uses it: the model catalogue (`GET /v1/models`, public)
 * and a key check (`GET /v1/status`, authenticated: 200, or 401 JSON `{error, message}`).
 *
 * Browsers see a refused WebSocket upgrade (HTTP 401/404) only as a failed socket, so the page
 * checks the key over HTTP first, where the status and message are readable.
 */

/** An STT model of the catalogue. */
export interface SttModelInfo {
  code: string;
  name: string;
  /** `unified` or `deepgram-style`; the page always speaks unified (bridge route for others). */
  dialect: string;
}

/** A TTS voice. */
export interface TtsVoiceInfo {
  id: string;
  name: string;
  language?: string;
  /** Native sample rate (Hz) when the catalogue gives it. */
  sampleRate?: number;
}

/** A TTS model of the catalogue with its voices. */
export interface TtsModelInfo {
  code: string;
  name: string;
  dialect: string;
  voices: TtsVoiceInfo[];
  defaultVoice?: string;
  /** Accepted `speed` range, or null when the engine cannot change speed (undefined: unknown). */
  speed?: { min: number; max: number } | null;
}

/** Both halves of the catalogue. */
export interface Catalogue {
  stt: SttModelInfo[];
  tts: TtsModelInfo[];
}

type Raw = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Normalise one catalogue voice (a string id, or an object with id/voice_id/name …). */
function parseVoice(v: unknown): TtsVoiceInfo | null {
  if (typeof v === 'string') return { id: v, name: v };
  if (!v || typeof v !== 'object') return null;
  const r = v as Raw;
  const id = str(r.id) ?? str(r.voice_id) ?? str(r.voice) ?? str(r.name);
  if (!id) return null;
  const langs = Array.isArray(r.languages) ? (r.languages as unknown[]).filter((x): x is string => typeof x === 'string') : [];
  return {
    id,
    name: str(r.name) ?? str(r.display_name) ?? id,
    language: str(r.language) ?? langs[0],
    sampleRate: num(r.sample_rate) ?? num(r.native_sample_rate) ?? num(r.sampleRate),
  };
}

/**
 * Fetch and split the catalogue. Entries without `service_type` are STT (older gateways).
 * @throws Error with a readable message when the gateway cannot be reached or answers badly.
 */
export async function fetchCatalogue(): Promise<Catalogue> {
  let res: Response;
  try {
    res = await fetch('/v1/models', { headers: { Accept: 'application/json' } });
  } catch {
    throw new Error('Cannot reach the gateway (GET /v1/models failed). Is `voxgate serve` running?');
  }
  if (!res.ok) throw new Error(`GET /v1/models answered HTTP ${res.status}.`);
  const body = (await res.json()) as { models?: Raw[] };
  const out: Catalogue = { stt: [], tts: [] };
  for (const m of body.models ?? []) {
    const code = str(m.code);
    if (!code) continue;
    const name = str(m.name) ?? code;
    const dialect = str(m.dialect) ?? 'unified';
    const type = str(m.service_type) ?? 'stt';
    if (type === 'stt') out.stt.push({ code, name, dialect });
    else if (type === 'tts') {
      const caps = (m.capabilities ?? {}) as Raw;
      const rawVoices = Array.isArray(m.voices) ? m.voices : Array.isArray(caps.voices) ? caps.voices : [];
      const voices = rawVoices.map(parseVoice).filter((v): v is TtsVoiceInfo => v !== null);
      const def = str(m.default_voice) ?? str(m.defaultVoice) ?? str(caps.default_voice);
      const sp = caps.speed as { min?: unknown; max?: unknown } | null | undefined;
      const speed = sp === null ? null : num(sp?.min) !== undefined && num(sp?.max) !== undefined ? { min: sp!.min as number, max: sp!.max as number } : undefined;
      out.tts.push({ code, name, dialect, voices, defaultVoice: def, speed });
    }
  }
  return out;
}

/** Result of {@link checkKey}. */
export type KeyCheck = { ok: true } | { ok: false; status: number; message: string };

/**
 * Check an API key with `GET /v1/status` (`Authorization: Bearer`).
 * @returns `{ok: true}`, or the HTTP status (0 when unreachable) and a readable message.
 */
export async function checkKey(key: string): Promise<KeyCheck> {
  let res: Response;
  try {
    res = await fetch('/v1/status', { headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' } });
  } catch {
    return { ok: false, status: 0, message: 'Cannot reach the gateway to check the key (GET /v1/status failed).' };
  }
  if (res.ok) return { ok: true };
  let detail = '';
  try {
    detail = ((await res.json()) as { message?: string }).message ?? '';
  } catch {
    /* not JSON */
  }
  if (res.status === 401 || res.status === 403) {
    return {
      ok: false,
      status: res.status,
      message: `The gateway rejected this API key (HTTP ${res.status}${detail ? `: ${detail}` : ''}). Use the admin key printed by \`voxgate serve\` or create one with \`voxgate keys create --name NAME\`.`,
    };
  }
  return { ok: false, status: res.status, message: `Key check failed: HTTP ${res.status}${detail ? `: ${detail}` : ''}.` };
}
