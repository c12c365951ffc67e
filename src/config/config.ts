/**
 * Gateway configuration and the model catalogue.
 *
 * Which models exist, which engine serves each, and which wire dialect each `/v1/stt/...` route
 * answers in comes from this catalogue — a JSON file (`voxgate serve --config file.json`) merged
 * over the built-in default — never from code (issue #2, "Routes and protocol").
 *
 * Model codes follow the SLNG grammar `[slng/]<provider>/<model>[:<variant>]`
 * (shared/spec/protocols.md §1.1), validated with the same regular expression the LiveKit plugin uses.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { resolveTtsConfig, ttsSectionSchema, type TtsConfig } from './tts_config.js';

/** SLNG model-id grammar (protocols.md §1.1, S6 validator). */
export const MODEL_CODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)+(?::[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

/** The STT wire dialects a `/v1/stt/...` route can answer in. */
export const STT_DIALECTS = ['unified', 'deepgram-style', 'dual'] as const;
/**
 * `unified`: SLNG unified protocol (§1.3). `deepgram-style`: SLNG direct route with Deepgram-shaped
 * results (§1.4). `dual`: both server-message families at once, so clients of either work unchanged
 * (src/protocol/dual/; docs/stt.md "Seed model codes").
 */
export type SttDialectName = (typeof STT_DIALECTS)[number];

const sttModelSchema = z.object({
  /** Catalogue code, e.g. `local/pocketsphinx:en`. */
  code: z.string().regex(MODEL_CODE_RE, 'model code must match [slng/]<provider>/<model>[:<variant>]'),
  /** Engine id registered in the engine registry, e.g. `pocketsphinx`. */
  engine: z.string().min(1),
  /** Wire dialect of the `/v1/stt/<code>` route. Bridge routes always use `unified`. */
  dialect: z.enum(STT_DIALECTS).default('unified'),
  name: z.string().optional(),
  description: z.string().optional(),
  /** Engine-specific options passed to the engine factory. */
  options: z.record(z.string(), z.unknown()).default({}),
  /** Other names that select this entry in Deepgram's `?model=` (e.g. `nova-3`). */
  aliases: z.array(z.string().min(1)).default([]),
  /**
   * Engine instances (keys of `engines`, or engine type ids) that may serve this model, in preference
   * order; each instance carries its region (issue 10 part 2 "Catalogue"). Absent = `[engine]`.
   * Use {@link modelBackends} to read it.
   */
  backends: z.array(z.string().min(1)).min(1).optional(),
  /**
   * The language this model recognises when the client names none (e.g. `hi` for
   * `slng/deepgram/nova:3-hi`). A backend whose engine lacks it refuses with `config_error`, never
   * answering in another language.
   */
  language: z.string().min(2).optional(),
});
/** One STT model entry of the catalogue. */
export type SttModelEntry = z.infer<typeof sttModelSchema>;

const limitsSchema = z.object({
  /** Largest accepted WebSocket frame, bytes. Larger frames get a `payload_too_large` error frame. */
  maxFrameBytes: z.number().int().positive().default(1024 * 1024),
  /** Close a session after this many seconds without any client frame (`keepalive` counts). */
  idleTimeoutSeconds: z.number().positive().default(30),
  /** Hard cap on one session's length, seconds. */
  maxSessionSeconds: z.number().positive().default(3600),
  /** Seconds allowed between the upgrade and a valid `init`. */
  initTimeoutSeconds: z.number().positive().default(10),
  /**
   * Deepest nesting of arrays/objects accepted in a JSON text frame or JSON HTTP body (issue 14 #1).
   * Checked by a linear scan before `JSON.parse`; deeper → `invalid_request`, the frame/body is not parsed.
   */
  maxJsonDepth: z.number().int().min(2).default(32),
  /** Most JSON values/keys (strings, numbers, `[`, `{`, separators) in one frame or body; more → `invalid_request`. */
  maxJsonTokens: z.number().int().min(16).default(10000),
});
/** Session and transport limits. */
export type Limits = z.infer<typeof limitsSchema>;

const engineSchema = z.object({
  /** Decoders kept warm (created at start, replenished after each acquire). */
  minIdleDecoders: z.number().int().min(0).default(1),
  /** Hard cap of concurrent decoders (= concurrent STT streams on this engine). */
  maxDecoders: z.number().int().positive().default(12),
});

/**
 * One engine instance, `engines.<instanceId>` (engine contract v2, issue 10 part 1): two instances
 * of one type (`deepgram-us`, `deepgram-eu`) differ in settings and region. The keys below are common
 * to every type; every other key is the type's own setting, validated by that type's schema in the
 * engine registry (typed settings per type). Secrets are never written here: a type names the
 * environment variable holding its key (`apiKeyEnv`), read at start, never logged or served.
 */
export const engineInstanceSchema = z
  .object({
    /** Engine type id in the registry (`pocketsphinx`, `slng`, `deepgram`, `flite`, …). Default: the instance id. */
    type: z.string().min(1).optional(),
    /** Region this instance serves from (e.g. `us-east-1`); default `gateway.region`. */
    region: z.string().min(1).optional(),
  })
  .passthrough();
/** An engine instance entry as written in the config file (type-specific keys unvalidated here). */
export type EngineInstanceEntry = z.infer<typeof engineInstanceSchema>;

/**
 * Regions every install knows, with their world part (shared/spec/protocols.md §1.1 "Region pin",
 * §1.8 catalogue): SLNG's documented enums plus the regions its catalogue lists. `gateway.regions`
 * adds more or overrides.
 */
export const BUILTIN_REGIONS: Readonly<Record<string, { worldPart: string }>> = {
  'us-east-1': { worldPart: 'na' },
  'eu-north-1': { worldPart: 'eu' },
  'ap-southeast-2': { worldPart: 'ap' },
  'australia-southeast1': { worldPart: 'ap' },
  'asia-south1': { worldPart: 'ap' },
  'ap-south-1': { worldPart: 'ap' },
  'asia-southeast2': { worldPart: 'ap' },
};

/** Gateway placement (issue 10 part 2 "Regions and world parts"). */
const gatewaySchema = z
  .object({
    /** This instance's home region: embedded engines are labelled with it and it is tried first without an override. */
    region: z.string().min(1).default('us-east-1'),
    /** Extra regions (or overrides of {@link BUILTIN_REGIONS}): region → `{worldPart}`. */
    regions: z.record(z.string().min(1), z.object({ worldPart: z.string().min(1) }).strict()).default({}),
  })
  .strict();
/** The `gateway` section, defaults filled in. */
export type GatewayPlacement = z.infer<typeof gatewaySchema>;

const compatSchema = z
  .object({
    /**
     * Catalogue code served when a vendor-compatible route names no model of ours (Deepgram
     * `/v1/listen` without `model` or with a Deepgram model name; smallest.ai routes). Default: the first STT model.
     */
    defaultSttModel: z.string().optional(),
  })
  .strict();

/** Pre-recorded (HTTP) transcription settings (issue #3; protocols.md §1.7). */
const httpSchema = z
  .object({
    /** Largest accepted upload (request body or fetched URL), bytes; larger → HTTP 413. Default 512 MiB. */
    maxBodyBytes: z.number().int().positive().default(512 * 1024 * 1024),
    /**
     * Engine streams one mono upload is decoded on in parallel (segments cut at pauses; fewer when the
     * engine is near `maxDecoders`). Default 1. Measured on a 600 s file (bench/http.ts): 1 → 10× real
     * time, peak RSS +84 MB over idle; 2 → 14.5–18.5×, +169 MB (each stream holds a ~95 MB
     * PocketSphinx decoder), so 2 trades the 150 MB-per-upload memory budget for throughput.
     */
    parallelStreams: z.number().int().min(1).max(8).default(1),
    /**
     * Largest JSON request body, bytes (TTS bodies, `/v1/listen` `{"url"}`), refused with 413 before it is
     * parsed. JSON bodies on `/v1/stt/…` may carry base64 `audio`: they get the base64 size of the
     * audio limit instead (issue 14 #1). Default 64 KiB.
     */
    maxJsonBodyBytes: z.number().int().positive().default(64 * 1024),
    /** Largest multipart text field other than `audio` (base64) or `url`, bytes; larger → 413. Default 16 KiB. */
    maxFieldBytes: z.number().int().positive().default(16 * 1024),
    /**
     * A request body that receives no byte for this long while the server is waiting for it is answered
     * 408 `idle_timeout_exceeded` and the connection closed, freeing its decoder (issue 14 #2). Default 30 s.
     */
    bodyIdleTimeoutMs: z.number().int().positive().default(30_000),
    /** Time allowed to receive a request's headers, ms (node `server.headersTimeout`). Default 20 s. */
    headersTimeoutMs: z.number().int().positive().default(20_000),
    /**
     * Time allowed to receive a whole request, ms (node `server.requestTimeout`); 0 = no limit. Uploads
     * are read only as fast as the engine decodes them, so this is large. Default 1 h.
     */
    requestTimeoutMs: z.number().int().min(0).default(3_600_000),
    /**
     * Open TCP connections one client IP may hold (HTTP and WebSocket together), enforced when the
     * connection is accepted — before any byte is parsed or any key checked. More are closed at once.
     * 0 = no limit. Default 256.
     */
    maxConnectionsPerIp: z.number().int().min(0).default(256),
    /** `{"url": …}` bodies: off unless enabled — fetching URLs from a server is a request-forgery risk. */
    fetch: z
      .object({
        enabled: z.boolean().default(false),
        /** Host names or IP literals (`*.example.com` for subdomains); loopback/private addresses only when listed as addresses. */
        allowHosts: z.array(z.string().min(1)).default([]),
        /** Seconds to wait for response headers and between body chunks. */
        timeoutSeconds: z.number().positive().default(30),
      })
      .strict()
      .default({ enabled: false, allowHosts: [], timeoutSeconds: 30 }),
  })
  .strict();
/** The `http` section, defaults filled in. */
export type HttpConfig = z.infer<typeof httpSchema>;

/**
 * Graceful shutdown (issue #14 item 4): on SIGTERM/SIGINT the gateway stops accepting, lets live
 * sessions deliver their pending finals and closing messages, then closes them 1001.
 */
const shutdownSchema = z
  .object({
    /**
     * Milliseconds a drain may take before the remaining sessions are closed 1001 without their
     * pending results and in-flight HTTP requests are cut. Default 10 000. Also `voxgate serve
     * --drain-timeout <ms>` and env `VOXGATE_DRAIN_TIMEOUT_MS` (the CLI wins over the file).
     */
    drainTimeoutMs: z.number().int().min(0).default(10_000),
  })
  .strict();
/** The `shutdown` section, defaults filled in. */
export type ShutdownConfig = z.infer<typeof shutdownSchema>;
/** `GET /metrics` access (issue 14 #8). */
const metricsSchema = z
  .object({
    /** Serve `/metrics` without an API key. Default false: a valid key is required, like `/v1/status`. */
    public: z.boolean().default(false),
  })
  .strict();

/**
 * Shared live state (issue 12; shared/spec/upstreams.md §4): with `redisUrl` (or env
 * `VOXGATE_REDIS_URL`) per-key session caps, rpm limits, the session registry, backend health and the
 * worker directory are shared by every gateway on that Redis (src/state/). Without it: in-memory, per
 * process (the single-box default).
 */
const stateSchema = z
  .object({
    /** `redis://[:password@]host:port[/db]`; env `VOXGATE_REDIS_URL` wins. Absent = in-memory state. */
    redisUrl: z.string().min(1).optional(),
    /** Prefix of every Redis key this gateway writes (several installs may share one Redis). */
    keyPrefix: z.string().min(1).default('voxgate:'),
    /**
     * Lifetime of a session lease and registry entry without a heartbeat, ms: a gateway that dies
     * (kill -9, lost machine) frees its sessions' slots after at most this long. Heartbeat: a third of it.
     */
    leaseTtlMs: z.number().int().min(300).default(15_000),
  })
  .strict();
/** The `state` section, defaults filled in (`redisUrl` resolved with the env). */
export type StateConfig = z.infer<typeof stateSchema>;

/**
 * Engine worker registration (issue 12 "Engine workers that register"): a voxgate with `register`
 * (or `voxgate serve --worker`) announces itself in the shared Redis every `intervalMs` with its
 * region, models and load; gateways route `workers`-type backends to the least-loaded one.
 */
const workerSchema = z
  .object({
    register: z.boolean().default(false),
    /** `ws://host:port` the gateways dial (private network); env `VOXGATE_ADVERTISE_URL`; default the bound address. */
    advertiseUrl: z.string().regex(/^wss?:\/\//, 'advertiseUrl must start with ws:// or wss://').optional(),
    /** Region announced; default `gateway.region`. */
    region: z.string().min(1).optional(),
    /** Load report period, ms (LiveKit: 2.5 s). The entry expires after 3 periods without a report. */
    intervalMs: z.number().int().min(100).default(2500),
    /** Load (0–1: open sessions / decoder capacity) at and above which the worker is reported full. */
    fullAt: z.number().min(0).max(1).default(0.9),
  })
  .strict();
/** The `worker` section, defaults filled in. */
export type WorkerConfig = z.infer<typeof workerSchema>;

/**
 * Durable storage of keys, quotas and usage (issue 12; src/store/). Without `url` (and without env
 * `VOXGATE_DATABASE_URL`) keys and usage live in SQLite in the data directory (the single-box default).
 */
export const storageSchema = z
  .object({
    /** `postgres://user:pass@host:port/db`: keys, quotas and usage in PostgreSQL, shared by every gateway. Wins over env `VOXGATE_DATABASE_URL`. */
    url: z.string().regex(/^postgres(ql)?:\/\//, 'storage.url must be a postgres:// or postgresql:// URL').optional(),
    /** How long an instance trusts a verified key without asking the database, ms (a revoked key is refused everywhere within it). Postgres only. */
    keyCacheTtlMs: z.number().int().min(0).max(5000).default(2000),
    /** How often buffered usage rows are written, ms. */
    usageFlushMs: z.number().int().min(50).max(60_000).default(1000),
    /** How long an instance reuses a key's day/month usage totals read from the database for quota checks, ms. */
    quotaCacheMs: z.number().int().min(0).max(60_000).default(1000),
  })
  .strict();
/** The `storage` section, defaults filled in. */
export type StorageConfig = z.infer<typeof storageSchema>;

/** The whole configuration file shape. Unknown keys are rejected to catch typos. */
export const configSchema = z
  .object({
    stt: z.object({ models: z.array(sttModelSchema).min(1) }).strict().optional(),
    /** TTS catalogue and limits (issue #4; see tts_config.ts). */
    tts: ttsSectionSchema.optional(),
    limits: limitsSchema.partial().optional(),
    /** Engine instances by id (see {@link engineInstanceSchema}); a model's `engine`/`backends` name them. */
    engines: z.record(z.string(), engineInstanceSchema).optional(),
    /** Home region and extra regions (issue 10 part 2). */
    gateway: gatewaySchema.partial().optional(),
    compat: compatSchema.optional(),
    http: httpSchema.partial().optional(),
    /** Graceful shutdown (issue #14). */
    shutdown: shutdownSchema.partial().optional(),
    metrics: metricsSchema.partial().optional(),
    /** Shared live state (issue 12). */
    state: stateSchema.partial().optional(),
    /** Engine worker registration (issue 12). */
    worker: workerSchema.partial().optional(),
    /** Keys, quotas and usage storage (issue 12). */
    storage: storageSchema.partial().optional(),
  })
  .strict();

/** Fully resolved configuration. */
export interface VoxgateConfig {
  stt: { models: SttModelEntry[] };
  /** TTS catalogue and limits (tts_config.ts). */
  tts: TtsConfig;
  limits: Limits;
  /**
   * Engine instances by id, as written (type-specific keys validated by the registry). Ids a model
   * names without an entry here are instances of the type of that name with default settings.
   */
  engines: Record<string, EngineInstanceEntry>;
  /** Home region and the region → world-part table ({@link BUILTIN_REGIONS} merged with the file's). */
  gateway: GatewayPlacement;
  compat: z.infer<typeof compatSchema>;
  http: HttpConfig;
  /** Graceful shutdown (issue #14); absent in hand-built configs = defaults. */
  shutdown?: ShutdownConfig;
  /** `/metrics` access. */
  metrics: z.infer<typeof metricsSchema>;
  /** Shared live state (issue 12); absent in hand-built configs = in-memory. */
  state?: StateConfig;
  /** Worker registration (issue 12); absent = not a registering worker. */
  worker?: WorkerConfig;
  /** Keys, quotas and usage storage (issue 12); absent in hand-built configs = SQLite with defaults. */
  storage?: StorageConfig;
}

/**
 * The built-in catalogue: the embedded English engine in both STT dialects (first: the default of
 * vendor-compatible routes, `compat.defaultSttModel`), then the seed clients' model codes.
 */
export const DEFAULT_STT_MODELS: SttModelEntry[] = [
  {
    code: 'local/pocketsphinx:en',
    engine: 'pocketsphinx',
    dialect: 'unified',
    name: 'PocketSphinx US English (embedded)',
    description: 'CMU PocketSphinx 0.8+5prealpha, en-US acoustic model and 3-gram LM from Debian, Silero VAD endpointing.',
    options: {},
    aliases: [],
  },
  {
    code: 'local/pocketsphinx:en-deepgram',
    engine: 'pocketsphinx',
    dialect: 'deepgram-style',
    name: 'PocketSphinx US English (embedded), Deepgram-style results',
    description: 'Same engine; SLNG direct-route dialect with Deepgram-shaped Results/Metadata (protocols.md §1.4).',
    options: {},
    aliases: [],
  },
  // The seed clients' model codes (protocols.md §1.8; issue 10 part 2 "Catalogue"): served by the
  // embedded engine until an upstream backend is configured for them, in the `dual` dialect so both
  // the unified (§1.3) and the Deepgram-shaped (§1.4) seed clients work unchanged.
  {
    code: 'slng/deepgram/nova:3-en',
    engine: 'pocketsphinx',
    dialect: 'dual',
    language: 'en',
    name: 'Nova-3 English (SLNG-hosted code; embedded PocketSphinx until an upstream is configured)',
    description: 'Seed model code. Both SLNG message families (ready/partial_transcript/final_transcript and Metadata/Results/Error); init.config.dialect narrows to one.',
    options: {},
    aliases: [],
  },
  {
    code: 'slng/deepgram/nova:3-hi',
    engine: 'pocketsphinx',
    dialect: 'dual',
    language: 'hi',
    name: 'Nova-3 Hindi (SLNG-hosted code; needs an upstream backend)',
    description: 'Seed model code. The embedded engine is English-only, so it refuses this model with config_error until an upstream that recognises Hindi is configured.',
    options: {},
    aliases: [],
  },
  {
    code: 'deepgram/nova:3',
    engine: 'pocketsphinx',
    dialect: 'dual',
    name: 'Deepgram Nova-3 (external code; embedded PocketSphinx until an upstream is configured)',
    description: 'Seed model code (protocols.md §1.8). Both SLNG message families; init.config.dialect narrows to one.',
    options: {},
    aliases: [],
  },
  {
    code: 'deepgram/nova:2',
    engine: 'pocketsphinx',
    dialect: 'dual',
    name: 'Deepgram Nova-2 (external code; embedded PocketSphinx until an upstream is configured)',
    description: 'Seed model code (protocols.md §1.4 wss://api.slng.ai/v1/stt/deepgram/nova:2). Both SLNG message families; init.config.dialect narrows to one.',
    options: {},
    aliases: [],
  },
];

/**
 * Resolve the configuration: the built-in defaults, overridden by `file` when given.
 * A file's `stt.models` replaces the default catalogue entirely.
 * @throws Error with a readable message when the file cannot be read or fails validation.
 */
export function loadConfig(file?: string): VoxgateConfig {
  let raw: z.infer<typeof configSchema> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`config file ${file} is not valid JSON: ${(err as Error).message}`);
    }
    const parsed = configSchema.safeParse(json);
    if (!parsed.success) {
      throw new Error(`config file ${file} is invalid: ${z.prettifyError(parsed.error)}`);
    }
    raw = parsed.data;
  }
  const models = raw.stt?.models ?? DEFAULT_STT_MODELS;
  const codes = new Set<string>();
  for (const m of models) {
    if (codes.has(m.code)) throw new Error(`duplicate model code in catalogue: ${m.code}`);
    codes.add(m.code);
  }
  const engines: VoxgateConfig['engines'] = { ...(raw.engines ?? {}) };
  const gateway = gatewaySchema.parse(raw.gateway ?? {});
  gateway.regions = { ...BUILTIN_REGIONS, ...gateway.regions };
  const compat = raw.compat ?? {};
  if (compat.defaultSttModel && !codes.has(compat.defaultSttModel)) {
    throw new Error(`compat.defaultSttModel "${compat.defaultSttModel}" is not in the STT catalogue`);
  }
  return { stt: { models }, tts: resolveTtsConfig(raw.tts), limits: limitsSchema.parse(raw.limits ?? {}), engines, gateway, compat, http: httpSchema.parse(raw.http ?? {}), shutdown: shutdownSchema.parse(raw.shutdown ?? {}), metrics: metricsSchema.parse(raw.metrics ?? {}), storage: storageSchema.parse(raw.storage ?? {}), state: resolveState(raw.state), worker: workerSchema.parse(raw.worker ?? {}) };
}

/** The `state` section with `VOXGATE_REDIS_URL` applied over the file's `redisUrl`. */
function resolveState(raw: Partial<StateConfig> | undefined): StateConfig {
  const st = stateSchema.parse(raw ?? {});
  const env = process.env.VOXGATE_REDIS_URL?.trim();
  if (env) st.redisUrl = env;
  return st;
}

/** Default drain deadline, ms (`shutdown.drainTimeoutMs`). */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

/**
 * PocketSphinx decoder-pool settings of instance `id`, defaults filled in.
 * @throws Error naming the instance when its settings are invalid.
 */
export function engineSettings(cfg: VoxgateConfig, id: string): z.infer<typeof engineSchema> {
  const raw = cfg.engines[id] ?? {};
  const r = engineSchema.safeParse(raw);
  if (!r.success) throw new Error(`engines.${id} is invalid: ${z.prettifyError(r.error)}`);
  return r.data;
}

/** The engine type of instance `id`: its `type`, else the id itself (an instance of the type of that name). */
export function engineType(cfg: Pick<VoxgateConfig, 'engines'>, id: string): string {
  return cfg.engines[id]?.type ?? id;
}

/** The region of engine instance `id`: its `region`, else the gateway's home region. */
export function engineRegion(cfg: Pick<VoxgateConfig, 'engines' | 'gateway'>, id: string): string {
  return cfg.engines[id]?.region ?? cfg.gateway.region;
}

/** The world part of `region` from the region table, or `undefined` for an unknown region. */
export function worldPartOf(cfg: Pick<VoxgateConfig, 'gateway'>, region: string): string | undefined {
  return cfg.gateway.regions[region]?.worldPart;
}

/** The engine instances that may serve a model, in preference order: `backends`, else `[engine]`. */
export function modelBackends(m: { engine: string; backends?: string[] }): string[] {
  return m.backends ?? [m.engine];
}
