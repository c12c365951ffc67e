/**
 * Backend selection of the front door (issue 10 part 2 "Regions and world parts"; shared/spec/
 * protocols.md §1.1 "Region pin", "World part", "Precedence", "Region list form", "BYOK";
 * upstreams.md §2.2 "Candidate order"). Pure: no I/O, no clock — health is read through the
 * {@link HealthView} passed in.
 *
 * Every STT and TTS route (WebSocket and HTTP, every dialect) runs the same three steps after the
 * catalogue entry is known: {@link checkByok}, {@link resolveOverrides}, {@link selectBackends}. The
 * result is the ordered candidate list the failover engines (src/engines/stt/failover.ts,
 * src/engines/tts/failover.ts) try in turn.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { engineRegion, modelBackends, worldPartOf, type VoxgateConfig } from '../config/config.js';
import { VoxgateError } from '../util/errors.js';

/**
 * The client's routing pins. Each is a priority list (lower-cased, trimmed, non-empty entries, in
 * the order given): one value for a plain `X-Region-Override: eu-north-1`, several for LiveKit's
 * comma-joined form `X-Region-Override: eu-north-1, us-east-1` (protocols.md §1.1 "Region list form").
 * Absent = not pinned.
 */
export interface RoutingOverrides {
  region?: readonly string[];
  worldPart?: readonly string[];
}

/** One backend a request may be served by, in the order the failover engine tries them. */
export interface BackendCandidate {
  /** Engine instance id (key of the config's `engines`, or a type id used as an instance). */
  id: string;
  /** Region of the instance (`engineRegion`). */
  region: string;
  /** World part of {@link region} (`worldPartOf`); `unknown` for a region missing from the region table. */
  worldPart: string;
}

/** What {@link selectBackends} needs to know about health: whether a backend may be tried now. */
export interface HealthView {
  /** False while backend `id` is cooling down after a failure (`BackendHealth.isAvailable`). */
  isAvailable(id: string): boolean;
}

/** Where a model is offered: the `regions`/`world_parts` of `GET /v1/models` and of routing errors. */
export interface ModelPlacement {
  /** Distinct regions of the model's backends, in backend order. */
  regions: string[];
  /** Distinct world parts of those regions, in backend order. */
  world_parts: string[];
  /** Number of backends (engine instances) serving the model. */
  backends: number;
}

/**
 * A refused routing request (unknown region/world part, one the model is not offered in, BYOK on a
 * `slng/` route): a catalogue error (`config_error` / `invalid_request`, HTTP 400) plus the body
 * fields that list the valid values. Routes pass {@link RoutingError.extra} to `renderError`
 * (see {@link errorExtra}).
 */
export class RoutingError extends VoxgateError {
  /** Extra JSON body fields, e.g. `{regions: [...], world_parts: [...]}`. */
  readonly extra: Record<string, unknown>;
  constructor(code: 'config_error' | 'invalid_request', message: string, extra: Record<string, unknown> = {}) {
    super(code, message, { retryable: false });
    this.name = 'RoutingError';
    this.extra = extra;
  }
}

/**
 * The extra body fields an error carries for its rendered response ({@link RoutingError.extra}),
 * merged over `base` (the route's own extras win only where the error has none).
 * @returns `base` unchanged for other errors.
 */
export function errorExtra(err: unknown, base?: Record<string, unknown>): Record<string, unknown> | undefined {
  if (err instanceof RoutingError) return { ...err.extra, ...(base ?? {}) };
  return base;
}

/** Header and query names (protocols.md §1.1). */
const REGION_HEADER = 'x-region-override';
const WORLD_PART_HEADER = 'x-world-part-override';
const REGION_QUERY = 'region';
const WORLD_PART_QUERY = 'world-part';
/** Longest accepted list / entry (anything longer is refused as an unknown value, never echoed whole). */
const MAX_ENTRIES = 16;
const MAX_ENTRY_CHARS = 64;

/** A header or query value as a priority list: split on commas, trimmed, lower-cased, empties dropped; `undefined` when absent or empty. */
function asList(v: string | string[] | null | undefined): string[] | undefined {
  if (v === null || v === undefined) return undefined;
  const joined = Array.isArray(v) ? v.join(',') : v;
  const list = joined
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0);
  return list.length > 0 ? list : undefined;
}

/**
 * Read the client's region and world-part pins (protocols.md §1.1): `X-Region-Override` header or
 * `?region=`, `X-World-Part-Override` header or `?world-part=`; for each, the header wins over the
 * query when both are present. Values may be comma-separated priority lists (LiveKit); they are
 * lower-cased and trimmed. Never throws; validation is {@link selectBackends}'s.
 * @param headers the request headers (node lower-cases their names).
 * @param url the request URL (its query).
 */
export function resolveOverrides(headers: IncomingHttpHeaders, url: URL): RoutingOverrides {
  const region = asList(headers[REGION_HEADER]) ?? asList(url.searchParams.getAll(REGION_QUERY));
  const worldPart = asList(headers[WORLD_PART_HEADER]) ?? asList(url.searchParams.getAll(WORLD_PART_QUERY));
  const o: RoutingOverrides = {};
  if (region) o.region = region;
  if (worldPart) o.worldPart = worldPart;
  return o;
}

/** The model's backends with their placement, in the model's order. */
export function modelCandidates(model: { engine: string; backends?: string[] }, cfg: Pick<VoxgateConfig, 'engines' | 'gateway'>): BackendCandidate[] {
  return modelBackends(model).map((id) => {
    const region = engineRegion(cfg, id);
    return { id, region, worldPart: worldPartOf(cfg, region) ?? 'unknown' };
  });
}

/** Regions, world parts and backend count of a model (for `GET /v1/models` and routing errors). */
export function modelPlacement(model: { engine: string; backends?: string[] }, cfg: Pick<VoxgateConfig, 'engines' | 'gateway'>): ModelPlacement {
  const c = modelCandidates(model, cfg);
  return { regions: [...new Set(c.map((x) => x.region))], world_parts: [...new Set(c.map((x) => x.worldPart))], backends: c.length };
}

/** Stable sort by a numeric key (ties keep their order). */
function stableSort<T>(xs: T[], key: (x: T) => number): T[] {
  return xs
    .map((x, i) => [x, i] as const)
    .sort((a, b) => key(a[0]) - key(b[0]) || a[1] - b[1])
    .map(([x]) => x);
}

/**
 * Check a pin list against the known values and the model's: every entry must be a known value
 * (else refused), and at least one entry must be offered for the model (else refused). A list may
 * name values the model is not offered in as long as one it is offered in follows (a LiveKit priority
 * list is the same for every model); a single value must be offered.
 * @throws RoutingError `config_error` naming the first bad entry and listing the valid values.
 */
function checkPins(kind: 'region' | 'world part', pins: readonly string[], known: ReadonlySet<string>, offered: readonly string[], modelCode: string, extra: Record<string, unknown>): void {
  const show = (s: string) => JSON.stringify(s.slice(0, MAX_ENTRY_CHARS));
  const validList = offered.join(', ');
  if (pins.length > MAX_ENTRIES) throw new RoutingError('config_error', `too many ${kind} overrides (${pins.length}, at most ${MAX_ENTRIES}); valid for model ${modelCode}: ${validList}`, extra);
  for (const p of pins) {
    if (p.length > MAX_ENTRY_CHARS || !known.has(p)) throw new RoutingError('config_error', `unknown ${kind} ${show(p)}; valid for model ${modelCode}: ${validList}`, extra);
  }
  if (!pins.some((p) => offered.includes(p))) {
    const which = pins.length === 1 ? `${kind} ${show(pins[0]!)}` : `any of the ${kind}s ${pins.map(show).join(', ')}`;
    throw new RoutingError('config_error', `model ${modelCode} is not offered in ${which}; valid: ${validList}`, extra);
  }
}

/**
 * The ordered candidates for one request (upstreams.md §2.2 "Candidate order"):
 * - no pin: the model's backends, those in the home region (`cfg.gateway.region`) first, then the
 *   others; within each group available backends before cooling ones, then the model's order;
 * - region pinned: only backends in the pinned region(s), in the pin list's order, then by health,
 *   then the model's order — never another region (Deepgram's EU rule, upstreams.md §1.1);
 * - world part pinned (and no region): only backends in the pinned world part(s), in the list's
 *   order, then home region first, then by health, then the model's order.
 * A region pin wins over a world-part pin (protocols.md §1.1 "Precedence"): the world part is then
 * ignored (not even validated).
 * @param model the catalogue entry (`code`, `engine`, optional `backends`).
 * @param overrides from {@link resolveOverrides}.
 * @param cfg engine instances, home region and region table.
 * @param health availability of each backend.
 * @returns at least one candidate.
 * @throws RoutingError `config_error` (HTTP 400) for an unknown region/world part or one the model is
 *   not offered in; its `extra` lists `regions` and `world_parts` valid for the model.
 */
export function selectBackends(
  model: { code: string; engine: string; backends?: string[] },
  overrides: RoutingOverrides,
  cfg: Pick<VoxgateConfig, 'engines' | 'gateway'>,
  health: HealthView,
): BackendCandidate[] {
  const all = modelCandidates(model, cfg);
  const placement = modelPlacement(model, cfg);
  const extra = { regions: placement.regions, world_parts: placement.world_parts };
  const home = cfg.gateway.region;
  const sick = (c: BackendCandidate) => (health.isAvailable(c.id) ? 0 : 1);
  if (overrides.region) {
    const pins = overrides.region;
    checkPins('region', pins, new Set([...Object.keys(cfg.gateway.regions), ...placement.regions]), placement.regions, model.code, extra);
    const picked = all.filter((c) => pins.includes(c.region));
    return stableSort(picked, (c) => pins.indexOf(c.region) * 2 + sick(c));
  }
  if (overrides.worldPart) {
    const pins = overrides.worldPart;
    const knownParts = new Set([...Object.values(cfg.gateway.regions).map((r) => r.worldPart), ...placement.world_parts]);
    checkPins('world part', pins, knownParts, placement.world_parts, model.code, extra);
    const picked = all.filter((c) => pins.includes(c.worldPart));
    return stableSort(picked, (c) => pins.indexOf(c.worldPart) * 4 + (c.region === home ? 0 : 2) + sick(c));
  }
  return stableSort(all, (c) => (c.region === home ? 0 : 2) + sick(c));
}

/** The protocols.md §1.1 BYOK header. */
const BYOK_HEADER = 'x-slng-provider-key';

/**
 * The client's BYOK provider key (`X-Slng-Provider-Key`), trimmed; undefined when absent or empty.
 * Only reaches an engine on external routes: {@link checkByok} refuses it on `slng/` routes first.
 */
export function providerKeyOf(headers: IncomingHttpHeaders): string | undefined {
  const v = headers[BYOK_HEADER];
  const s = (Array.isArray(v) ? v[0] : v)?.trim();
  return s ? s : undefined;
}

/**
 * BYOK (protocols.md §1.1 "BYOK"): `X-Slng-Provider-Key` is only accepted on external routes; on a
 * `slng/…` model route the request is refused with HTTP 400 "BYOK is only supported for external
 * STT/TTS routes" before the upgrade / before the body is read.
 * @param modelCode the catalogue code the route names.
 * @returns the refusal (`invalid_request`, HTTP 400), or null when the request may go on.
 */
export function checkByok(headers: IncomingHttpHeaders, modelCode: string): RoutingError | null {
  const v = headers[BYOK_HEADER];
  if (v === undefined) return null;
  if (!modelCode.startsWith('slng/')) return null;
  return new RoutingError('invalid_request', 'BYOK is only supported for external STT/TTS routes');
}
