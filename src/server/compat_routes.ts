/**
 * Query-configured streaming STT routes that speak other vendors' wire protocols (pure; no I/O):
 *
 * - `/v1/listen` — Deepgram live STT (shared/spec/protocols.md §2);
 * - `/api/v1/lightning/get_text`, `/waves/v1/lightning/get_text` — smallest.ai Lightning (§4.1);
 * - `/waves/v1/pulse/get_text` — smallest.ai Pulse (§4.2).
 *
 * The whole configuration is in the query string, so it is parsed and validated against the serving
 * engine here, at the upgrade: an invalid value is an HTTP 400 with a JSON body before any session
 * exists (issue #3 "Bad input"). Unknown query parameters are ignored.
 *
 * Model selection on `/v1/listen`: `model=<catalogue code>` or one of an entry's `aliases` selects that
 * entry; any other Deepgram model name (`nova-3`, `nova-2-general`, `base`, …; §2.2) selects the default
 * entry, so unchanged Deepgram clients work; anything else is a 400 listing the models. smallest.ai
 * routes always use the default entry.
 */
import type { SttModelEntry, VoxgateConfig } from '../config/config.js';
import type { SttEngine } from '../engines/stt/types.js';
import type { SttDialect, SttInitRequest } from '../protocol/events.js';
import { createListenDialect, listenInit } from '../protocol/deepgram/listen.js';
import { parseListenQuery } from '../protocol/deepgram/query.js';
import { createSmallestDialect, parseSmallestQuery, smallestInit } from '../protocol/smallest/index.js';
import { resolveInit } from '../session/stt_session.js';
import { VoxgateError, toVoxgateError } from '../util/errors.js';

/** Deepgram model-name prefixes (§2.2 `model` enum) that map to the default catalogue entry. */
const DEEPGRAM_MODEL_RE = /^(nova|enhanced|base|whisper|general|meeting|phonecall|finance|conversationalai|voicemail|video|custom)([-.a-z0-9]*)$/i;

/** Which compatibility protocol a path speaks. */
export type CompatProtocol = 'deepgram' | 'smallest-lightning' | 'smallest-pulse';

const PATHS: Record<string, CompatProtocol> = {
  '/v1/listen': 'deepgram',
  '/api/v1/lightning/get_text': 'smallest-lightning',
  '/waves/v1/lightning/get_text': 'smallest-lightning',
  '/waves/v1/pulse/get_text': 'smallest-pulse',
};

/** The protocol served at `pathname`, or null when the path is not a compatibility route. */
export function compatProtocol(pathname: string): CompatProtocol | null {
  return PATHS[pathname.replace(/\/+$/, '')] ?? null;
}

/** A matched, validated compatibility route: everything a session needs. */
export interface CompatRoute {
  protocol: CompatProtocol;
  model: SttModelEntry;
  dialect: SttDialect;
  init: SttInitRequest;
}

/** The catalogue entry used when a request names no model of ours (config `compat.defaultModel`, else the first). */
export function defaultSttModel(config: VoxgateConfig): SttModelEntry {
  const code = config.compat.defaultSttModel;
  return (code && config.stt.models.find((m) => m.code === code)) || config.stt.models[0]!;
}

/**
 * Resolve `/v1/listen`'s `model` parameter (module docs).
 * @throws VoxgateError `config_error` for a name that is neither ours nor Deepgram's.
 */
export function resolveListenModel(name: string | undefined, config: VoxgateConfig): SttModelEntry {
  if (!name) return defaultSttModel(config);
  const m = config.stt.models.find((e) => e.code === name || e.aliases.includes(name));
  if (m) return m;
  if (DEEPGRAM_MODEL_RE.test(name)) return defaultSttModel(config);
  throw new VoxgateError('config_error', `unknown model "${name.slice(0, 80)}"; available: ${config.stt.models.map((e) => e.code).join(', ')} (Deepgram model names map to ${defaultSttModel(config).code})`);
}

/**
 * Match and validate a compatibility route: the query, then the model, then `engineFor(model)` (the
 * front door's backend selection, which may refuse the request's region/world-part pins), then the
 * settings against that engine's capabilities.
 * @returns null when `url` is not a compatibility route.
 * @throws VoxgateError `config_error` (HTTP 400) for invalid query values or settings the engine cannot
 *   serve (unsupported language, encoding or sample rate); whatever `engineFor` throws (a
 *   `RoutingError`, backends.ts), unchanged.
 */
export function matchCompatRoute(url: URL, config: VoxgateConfig, engineFor: (model: SttModelEntry) => SttEngine): CompatRoute | null {
  const protocol = compatProtocol(url.pathname);
  if (!protocol) return null;
  let model: SttModelEntry;
  let dialect: SttDialect;
  let init: SttInitRequest;
  try {
    if (protocol === 'deepgram') {
      const opts = parseListenQuery(url.searchParams);
      model = resolveListenModel(opts.model, config);
      dialect = createListenDialect(opts);
      init = listenInit(opts);
    } else {
      const opts = parseSmallestQuery(url.searchParams);
      model = defaultSttModel(config);
      dialect = createSmallestDialect(opts, protocol === 'smallest-pulse' ? 'pulse' : 'lightning');
      init = smallestInit(opts);
    }
    resolveInit(init, engineFor(model), dialect, model);
  } catch (err) {
    throw toVoxgateError(err); // a RoutingError stays itself (it is a VoxgateError)
  }
  return { protocol, model, dialect, init };
}
