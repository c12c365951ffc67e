/**
 * The front door's one selection step (issue 10 part 1 "One entry pipeline": route → auth →
 * catalogue entry → **backend selection** → dialect → session). Every STT and TTS route, WebSocket
 * and HTTP, in every dialect, asks the gateway's one {@link BackendRouter} for its engine:
 *
 *   BYOK check → pins (`resolveOverrides`) → candidates (`selectBackends`, backends.ts) →
 *   a {@link FailoverSttEngine} / {@link FailoverTtsEngine} over them, plus the request's
 *   {@link RequestContext} (request id, model code, pins, an AbortSignal).
 *
 * It owns the gateway's one {@link BackendHealth} and the per-backend metrics (issue 10 part 2
 * "Metrics per backend"): `voxgate_backend_connect_seconds{backend}`,
 * `voxgate_backend_failures_total{backend,reason}`, `voxgate_backend_failovers_total{from,to}`,
 * `voxgate_backend_active_sessions{backend}`; and the `/v1/status` view of every backend.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { engineRegion, engineType, worldPartOf, type VoxgateConfig } from '../config/config.js';
import { primaryLanguage } from '../config/model_language.js';
import type { RequestContext } from '../engines/context.js';
import { BackendHealth, type BackendHealthSnapshot } from '../engines/health.js';
import { FailoverSttEngine, type SttBackend } from '../engines/stt/failover.js';
import type { SttEngine } from '../engines/stt/types.js';
import { FailoverTtsEngine, type TtsBackend } from '../engines/tts/failover.js';
import type { TtsEngine } from '../engines/tts/types.js';
import type { VoxgateError } from '../util/errors.js';
import type { WorkerDirectory } from '../state/workers.js';
import { createSlngSttEngine } from '../engines/stt/upstream/slng.js';
import { workerInstanceSettings } from '../engines/stt/upstream/workers.js';
import { checkByok, providerKeyOf, modelPlacement, resolveOverrides, selectBackends, type BackendCandidate, type ModelPlacement, type RoutingOverrides } from './backends.js';

/** A model as the router needs it: code and backends. */
type Routable = { code: string; engine: string; backends?: string[] };

/** What a route gets from {@link BackendRouter.stt} / {@link BackendRouter.tts}. */
export interface Selection<E> {
  /** The failover engine over the candidates: hand it to the session / pipeline instead of a raw engine. */
  engine: E;
  /** The candidates in the order they are tried. */
  candidates: BackendCandidate[];
  /** The request context to pass to `start()` (its `signal` aborts when {@link end} runs). */
  ctx: RequestContext;
  /**
   * Call once when the request or session is over (client gone or finished): aborts `ctx.signal`
   * and releases the backend's active-session count. Idempotent.
   */
  end(): void;
  /**
   * The backend instance id the request is served by now (the last one it connected to after any
   * failover), else the first candidate (nothing connected yet). For usage metering (issue 12).
   */
  backendId(): string;
}

/** One backend in `/v1/status` (`backends` map): its health snapshot plus where it runs. */
export interface BackendStatus extends BackendHealthSnapshot {
  type: string;
  region: string;
  world_part: string;
  /** `stt`, `tts` or both (an instance id may name one engine of each kind). */
  kinds: ('stt' | 'tts')[];
}

/** Options of {@link BackendRouter}. */
export interface BackendRouterOptions {
  config: VoxgateConfig;
  /** STT engines keyed by instance id (`createSttEngines`). */
  sttEngines: Map<string, SttEngine>;
  /** TTS engines keyed by instance id (`createTtsEngines`). */
  ttsEngines: Map<string, TtsEngine>;
  /** The gateway's prometheus registry (metrics are added to it). */
  registry: Registry;
  /** Health tracker; default a new one (one per gateway). */
  health?: BackendHealth;
  /**
   * Registered engine workers (issue 12): a candidate of engine type `workers` is replaced by the
   * workers of its region serving its `model`, as `slng` backends `worker:<id>`, least loaded first.
   */
  workers?: WorkerDirectory;
  /** Failover/connect log hook (the gateway logs them). */
  onEvent?: (e: { kind: 'failover'; from: string; to: string | null; reason: VoxgateError; requestId: string }) => void;
}

/** The gateway's backend selection, health and per-backend metrics (module docs). */
export class BackendRouter {
  readonly health: BackendHealth;
  private readonly cfg: VoxgateConfig;
  private readonly connectSeconds: Histogram<'backend'>;
  private readonly failures: Counter<'backend' | 'reason'>;
  private readonly failovers: Counter<'from' | 'to'>;
  private readonly active: Gauge<'backend'>;
  private readonly switchGap: Histogram<'backend'>;
  private readonly replayed: Counter<'backend'>;
  /** `slng` engines of registered workers, by backend id `worker:<id>`, with the URL they were made for. */
  private readonly workerEngines = new Map<string, { url: string; engine: SttEngine }>();

  constructor(private readonly o: BackendRouterOptions) {
    this.cfg = o.config;
    this.health = o.health ?? new BackendHealth();
    const registers = [o.registry];
    this.connectSeconds = new Histogram({
      name: 'voxgate_backend_connect_seconds',
      help: 'Time to open a stream on a backend (engine start), seconds',
      labelNames: ['backend'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.failures = new Counter({ name: 'voxgate_backend_failures_total', help: 'Backend failures (connect or stream) by backend and error code', labelNames: ['backend', 'reason'] as const, registers });
    this.failovers = new Counter({ name: 'voxgate_backend_failovers_total', help: 'Moves from a failed backend to the next one (to="none" when none was left)', labelNames: ['from', 'to'] as const, registers });
    this.active = new Gauge({ name: 'voxgate_backend_active_sessions', help: 'Sessions and requests currently served by each backend', labelNames: ['backend'] as const, registers });
    this.switchGap = new Histogram({
      name: 'voxgate_backend_failover_gap_seconds',
      help: 'Mid-stream STT failover: time from the backend failure to the next backend stream being ready, seconds (by the backend taken over to)',
      labelNames: ['backend'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.replayed = new Counter({ name: 'voxgate_backend_replayed_audio_seconds_total', help: 'Mid-stream STT failover: seconds of buffered audio replayed to the backend taking over', labelNames: ['backend'] as const, registers });
    for (const id of new Set([...o.sttEngines.keys(), ...o.ttsEngines.keys()])) this.active.set({ backend: id }, 0);
  }

  /** Regions, world parts and backend count of a model (`GET /v1/models`). */
  placement(model: Routable): ModelPlacement {
    return modelPlacement(model, this.cfg);
  }

  /**
   * Validate a request's routing before the upgrade / before its body is read: BYOK, pins, candidates.
   * @param model the catalogue entry the route resolved.
   * @returns the pins and the ordered candidates.
   * @throws RoutingError HTTP 400 (`invalid_request` for BYOK on a `slng/` route, `config_error` for an
   *   unknown or unoffered region/world part, with the valid values in `extra`).
   */
  route(model: Routable, headers: IncomingHttpHeaders, url: URL): { overrides: RoutingOverrides; candidates: BackendCandidate[] } {
    const byok = checkByok(headers, model.code);
    if (byok) throw byok;
    const overrides = resolveOverrides(headers, url);
    return { overrides, candidates: selectBackends(model, overrides, this.cfg, this.health) };
  }

  /**
   * The STT engine for one request: a {@link FailoverSttEngine} over the selected backends.
   * @param requestId the id the route reports (`dg-request-id`, `request_id`).
   * @throws RoutingError as {@link route}.
   */
  stt(model: Routable & { language?: string }, headers: IncomingHttpHeaders, url: URL, requestId: string): Selection<FailoverSttEngine> {
    const routed = this.route(model, headers, url);
    const overrides = routed.overrides;
    // A model that names its language (`…/nova:3-hi`) is served only by the candidates offering it,
    // when any does (issue 11: Sarvam is the Hindi route even when an English engine is listed first);
    // when none does, the list is kept and the first one's refusal names the gap (model_language.ts).
    const need = model.language ? primaryLanguage(model.language) : undefined;
    const speaking = need ? routed.candidates.filter((c) => this.o.sttEngines.get(c.id)?.capabilities.languages.includes(need)) : [];
    const candidates = speaking.length > 0 ? speaking : routed.candidates;
    const lease = this.lease(overrides, model.code, requestId, providerKeyOf(headers));
    const backends: SttBackend[] = this.expandWorkers(candidates).map((c) => ({ ...c, engine: this.workerEngines.get(c.id)?.engine ?? this.o.sttEngines.get(c.id)! }));
    const engine = new FailoverSttEngine(backends, {
      health: this.health,
      onFailover: (from, to, reason) => this.failed(from.id, to?.id ?? null, reason, requestId),
      onConnect: (b, ms) => {
        this.connectSeconds.observe({ backend: b.id }, ms / 1000);
        lease.take(b.id);
      },
      // A mid-stream switch: the session moves to the new backend (active gauge) and its gap is measured.
      onSwitch: (ev) => {
        lease.take(ev.to.id, ev.from.id);
        this.switchGap.observe({ backend: ev.to.id }, ev.gapMs / 1000);
        this.replayed.inc({ backend: ev.to.id }, ev.replayedSeconds);
      },
    });
    return { engine, candidates, ctx: lease.ctx, end: lease.end, backendId: () => lease.last() ?? candidates[0]!.id };
  }

  /**
   * The TTS engine for one request: a {@link FailoverTtsEngine} over the selected backends. The
   * request counts as active on its first backend from now on (TTS backends report no connect).
   * @throws RoutingError as {@link route}.
   */
  tts(model: Routable & { backendVoices?: Record<string, Record<string, string>> }, headers: IncomingHttpHeaders, url: URL, requestId: string): Selection<FailoverTtsEngine> {
    const { overrides, candidates } = this.route(model, headers, url);
    const lease = this.lease(overrides, model.code, requestId, providerKeyOf(headers));
    const voiceMap = (id: string): Record<string, string> | undefined => {
      const m = model.backendVoices?.[id];
      return m ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k.toLowerCase(), v])) : undefined;
    };
    const backends: TtsBackend[] = candidates.map((c) => ({ ...c, engine: this.o.ttsEngines.get(c.id)!, voices: voiceMap(c.id) }));
    const engine = new FailoverTtsEngine(backends, {
      health: this.health,
      onFailover: (from, to, reason) => {
        this.failed(from.id, to?.id ?? null, reason, requestId);
        if (to) lease.take(to.id, from.id);
      },
    });
    lease.take(backends[0]!.id);
    return { engine, candidates, ctx: lease.ctx, end: lease.end, backendId: () => lease.last() ?? candidates[0]!.id };
  }

  /**
   * Replace each `workers`-type candidate by the registered workers of its region that serve its model
   * and are not full: available (health) before cooling, then least loaded first (upstreams.md §2.3,
   * §4 "assigns least-loaded"). Without any, the placeholder stays (it fails over at once).
   */
  private expandWorkers(candidates: BackendCandidate[]): BackendCandidate[] {
    const dir = this.o.workers;
    if (!dir || !candidates.some((c) => engineType(this.cfg, c.id) === 'workers')) return candidates;
    const out: BackendCandidate[] = [];
    for (const c of candidates) {
      if (engineType(this.cfg, c.id) !== 'workers') {
        out.push(c);
        continue;
      }
      const model = String((this.cfg.engines[c.id] as { model?: unknown }).model ?? '');
      const ws = dir.pick('stt', model, c.region);
      if (ws.length === 0) {
        out.push(c);
        continue;
      }
      const picked = ws.map((w) => {
        const id = `worker:${w.id}`;
        const had = this.workerEngines.get(id);
        if (!had || had.url !== w.url) {
          void had?.engine.shutdown();
          const cfg = { ...this.cfg, engines: { ...this.cfg.engines, [id]: workerInstanceSettings(this.cfg, c.id, w.url, { region: w.region }) } };
          this.workerEngines.set(id, { url: w.url, engine: createSlngSttEngine(cfg, id) });
        }
        return { id, region: c.region, worldPart: c.worldPart };
      });
      // Stable: available workers first, least loaded first within each group (pick() order).
      out.push(...picked.filter((p) => this.health.isAvailable(p.id)), ...picked.filter((p) => !this.health.isAvailable(p.id)));
    }
    return out;
  }

  /** Health snapshot, type, region and world part of every engine instance (`/v1/status`). */
  status(): Record<string, BackendStatus> {
    const out: Record<string, BackendStatus> = {};
    const add = (id: string, kind: 'stt' | 'tts') => {
      if (out[id]) {
        out[id]!.kinds.push(kind);
        return;
      }
      const region = engineRegion(this.cfg, id);
      out[id] = { ...this.health.snapshot(id), type: engineType(this.cfg, id), region, world_part: worldPartOf(this.cfg, region) ?? 'unknown', kinds: [kind] };
    };
    for (const id of this.o.sttEngines.keys()) add(id, 'stt');
    for (const id of this.o.ttsEngines.keys()) add(id, 'tts');
    return out;
  }

  private failed(from: string, to: string | null, reason: VoxgateError, requestId: string): void {
    this.failures.inc({ backend: from, reason: reason.code });
    this.failovers.inc({ from, to: to ?? 'none' });
    this.o.onEvent?.({ kind: 'failover', from, to, reason, requestId });
  }

  /**
   * A request's context and its hold on the active-session gauge: `take(id)` counts the request on
   * backend `id` (once per backend, however many streams it opens there; `from` is released when a
   * failover moved it); `end()` aborts the signal and releases every backend it holds.
   */
  private lease(overrides: RoutingOverrides, modelCode: string, requestId: string, providerKey?: string): { ctx: RequestContext; take: (id: string, from?: string) => void; end: () => void; last: () => string | undefined } {
    const ctl = new AbortController();
    const held = new Set<string>();
    let ended = false;
    let last: string | undefined;
    const ctx: RequestContext = { requestId, modelCode, region: overrides.region?.[0], worldPart: overrides.region ? undefined : overrides.worldPart?.[0], signal: ctl.signal, ...(providerKey ? { providerKey } : {}) };
    return {
      ctx,
      last: () => last,
      take: (id, from) => {
        if (ended) return;
        last = id;
        if (from && held.delete(from)) this.active.dec({ backend: from });
        if (held.has(id)) return;
        held.add(id);
        this.active.inc({ backend: id });
      },
      end: () => {
        if (ended) return;
        ended = true;
        for (const id of held) this.active.dec({ backend: id });
        held.clear();
        ctl.abort();
      },
    };
  }
}
