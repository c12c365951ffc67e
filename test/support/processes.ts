/**
 * Real `voxgate serve` child processes for multi-process tests (issue 10 "Tests": "a gateway voxgate
 * and one or two engine-worker voxgate processes on loopback, each worker on the embedded engines,
 * labelled with its own region").
 *
 * {@link startVoxgateProcess} runs the built CLI (`node bin/voxgate.cjs serve --port 0 …`, so
 * `npx tsc -p tsconfig.json` must have run) with its own temporary `--data-dir` and `--config` file,
 * waits for the `voxgate listening on http://127.0.0.1:PORT` line and for the first-start admin key
 * saved in the data dir (src/store/keys.ts `readSavedAdminKey`), and returns a handle. Every child
 * started here is SIGKILLed and its temp dir removed when the test process exits for any reason
 * (normal end, failed assertion, uncaught error, SIGINT/SIGTERM), so a failing test never leaks a
 * server; tests should still `await p.stop()` in an `after` hook (or call {@link stopAllProcesses}).
 *
 * Roles:
 * - `worker` — embedded engines only (the default catalogue unless `config` says otherwise),
 *   labelled with `region` via `gateway.region` in its config.
 * - `gateway` — whatever `config` says (typically `slng` engine instances pointing at workers); the
 *   workers' keys are passed in `env` under the names the config's `apiKeyEnv` settings give.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readSavedAdminKey } from '../../src/store/keys.js';
import { packageRoot } from '../../src/util/paths.js';

/** What a child process is for (see the module docstring). */
export type VoxgateRole = 'worker' | 'gateway';

/** Options of {@link startVoxgateProcess}. */
export interface VoxgateProcessOptions {
  role: VoxgateRole;
  /** A label for messages and logs (default: the role, plus the region for workers). */
  name?: string;
  /**
   * Config file contents (written as JSON to `<dataDir>/config.json`). Default for a worker:
   * `{engines: {pocketsphinx: {minIdleDecoders: 1, maxDecoders: 6}}}` (the default catalogue).
   */
  config?: Record<string, unknown>;
  /** Worker region, written to `gateway.region` of the config (overrides a value there). */
  region?: string;
  /** Extra environment variables (merged over this process's environment). */
  env?: Record<string, string>;
  /** pino log level of the child (default `info`, so `session ready` lines can be counted). */
  logLevel?: string;
  /** `--drain-timeout`, ms: how long SIGTERM waits for live sessions (default 1000). */
  drainTimeoutMs?: number;
  /** Start-up timeout, ms (default 60 000). */
  timeoutMs?: number;
  /**
   * `--data-dir` shared with other processes (one SQLite key store for several processes, issue 12
   * scale-out tests); not removed on stop. Default: a fresh temp dir, removed on stop.
   */
  dataDir?: string;
  /** More `voxgate serve` arguments (e.g. `--worker`). */
  args?: string[];
}

/** One line the child wrote (stdout or stderr), JSON-parsed when it is a pino line. */
export interface ProcessLogLine {
  /** `Date.now()` when read, ms. */
  at: number;
  text: string;
  /** The parsed pino object, or null for plain text. */
  json: Record<string, unknown> | null;
}

/** Children still running (or not yet reaped) and their temp dirs, for the exit hooks. */
const live = new Map<ChildProcess, string>();
/** Handles started and not yet stopped, for {@link stopAllProcesses}. */
const handles = new Set<VoxgateProcess>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const [c, dir] of live) {
      if (c.exitCode === null && c.signalCode === null) {
        try {
          c.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => process.exit(130)); // the exit hook kills the children
  }
}

/** Most log lines kept per process (oldest dropped first). */
const MAX_LOG_LINES = 20000;

/** A running `voxgate serve` child. */
export class VoxgateProcess {
  /** Every line the child printed (bounded to the last {@link MAX_LOG_LINES}). */
  readonly logs: ProcessLogLine[] = [];
  /** Set once the child has exited: code and signal. */
  exit: { code: number | null; signal: string | null } | null = null;
  private readonly exited: Promise<void>;
  private logWaiters: { pred: (l: ProcessLogLine) => boolean; resolve: (l: ProcessLogLine) => void }[] = [];
  private stopped = false;

  /** @internal use {@link startVoxgateProcess}. */
  constructor(
    readonly name: string,
    readonly role: VoxgateRole,
    readonly child: ChildProcess,
    readonly dataDir: string,
    readonly configFile: string,
    /** The temp dir this handle owns (config file; the data dir unless shared), removed on stop. */
    private readonly ownDir: string = dataDir,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
    });
  }

  /** Listening port (set once started). */
  port = 0;
  /** The first-start admin key read from the data dir (set once started). */
  key = '';

  /** OS process id. */
  get pid(): number {
    return this.child.pid!;
  }
  /** `http://127.0.0.1:PORT`. */
  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  /** `ws://127.0.0.1:PORT`. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }
  /** Whether the child is still running. */
  get alive(): boolean {
    return this.exit === null;
  }

  /** @internal */
  addLine(text: string): void {
    if (!text.trim()) return;
    let json: Record<string, unknown> | null = null;
    if (text.startsWith('{')) {
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        json = null;
      }
    }
    const line: ProcessLogLine = { at: Date.now(), text, json };
    this.logs.push(line);
    if (this.logs.length > MAX_LOG_LINES) this.logs.splice(0, this.logs.length - MAX_LOG_LINES);
    this.logWaiters = this.logWaiters.filter((w) => {
      if (!w.pred(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** Lines whose pino `msg` equals `msg`. */
  logsWithMsg(msg: string): ProcessLogLine[] {
    return this.logs.filter((l) => l.json?.msg === msg);
  }

  /**
   * Resolve with the first log line (already printed or future) matching `pred`.
   * @throws Error after `timeoutMs` (default 10 000) or when the child exits first.
   */
  waitForLog(pred: (l: ProcessLogLine) => boolean, timeoutMs = 10000): Promise<ProcessLogLine> {
    const seen = this.logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (l: ProcessLogLine) => {
          clearTimeout(t);
          resolve(l);
        },
      };
      const t = setTimeout(() => {
        this.logWaiters = this.logWaiters.filter((x) => x !== w);
        reject(new Error(`${this.name}: no matching log line within ${timeoutMs} ms; last lines:\n${this.tail(20)}`));
      }, timeoutMs);
      this.logWaiters.push(w);
    });
  }

  /** The last `n` log lines as text (for failure messages). */
  tail(n = 30): string {
    return this.logs
      .slice(-n)
      .map((l) => l.text)
      .join('\n');
  }

  /**
   * `GET /v1/status` with the admin key.
   * @returns the parsed JSON body.
   * @throws Error on a non-2xx answer or a network error (e.g. the process is down).
   */
  async status(): Promise<Record<string, unknown> & { sessions: number }> {
    const r = await fetch(`${this.httpUrl}/v1/status`, { headers: { Authorization: `Bearer ${this.key}` }, signal: AbortSignal.timeout(5000) });
    if (!r.ok) throw new Error(`${this.name}: /v1/status answered ${r.status}: ${await r.text()}`);
    return (await r.json()) as Record<string, unknown> & { sessions: number };
  }

  /** Send `signal` (default SIGKILL: a crash) without waiting. No-op when already exited. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.child.kill(signal);
  }

  /** Resolve once the child has exited. */
  waitExit(): Promise<void> {
    return this.exited;
  }

  /**
   * Stop the child: SIGTERM (graceful drain), then SIGKILL after `graceMs` (default 5000) if it is
   * still running; remove its temp dir. Idempotent; never throws.
   */
  async stop(graceMs = 5000): Promise<void> {
    if (this.stopped) return this.exited;
    this.stopped = true;
    handles.delete(this);
    if (this.alive) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    live.delete(this.child);
    rmSync(this.ownDir, { recursive: true, force: true });
  }
}

/**
 * Start `voxgate serve` as a child process on 127.0.0.1 port 0 (see the module docstring).
 * @returns once the child listens and its admin key is readable.
 * @throws Error when the CLI is not built, the child exits during start-up (its output is in the
 *   message), or start-up takes longer than `timeoutMs`; the child is killed in each case.
 */
export async function startVoxgateProcess(o: VoxgateProcessOptions): Promise<VoxgateProcess> {
  installHooks();
  const main = path.join(packageRoot(), 'bin/voxgate.cjs');
  if (!existsSync(path.join(packageRoot(), 'dist/src/cli/cli.js'))) throw new Error('dist/src/cli/cli.js not found: build first (npx tsc -p tsconfig.json)');
  const ownDir = mkdtempSync(path.join(tmpdir(), `voxgate-${o.role}-`));
  const dataDir = o.dataDir ?? ownDir;
  const configFile = path.join(ownDir, 'config.json');
  const config: Record<string, unknown> = structuredClone(o.config ?? (o.role === 'worker' ? { engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 6 } } } : {}));
  if (o.region) config.gateway = { ...((config.gateway as Record<string, unknown> | undefined) ?? {}), region: o.region };
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const name = o.name ?? (o.region ? `${o.role}-${o.region}` : o.role);
  const args = [main, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--config', configFile, '--log-level', o.logLevel ?? 'info', '--drain-timeout', String(o.drainTimeoutMs ?? 1000), ...(o.args ?? [])];
  const env: Record<string, string | undefined> = { ...process.env, ...o.env };
  for (const k of ['VOXGATE_PORT', 'VOXGATE_HOST', 'VOXGATE_DATA_DIR', 'VOXGATE_API_KEY', 'VOXGATE_URL']) if (!o.env || !(k in o.env)) delete env[k];
  const child = spawn(process.execPath, args, { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'pipe'], env });
  live.set(child, ownDir);
  const p = new VoxgateProcess(name, o.role, child, dataDir, configFile, ownDir);
  handles.add(p);
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        p.addLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  const timeoutMs = o.timeoutMs ?? 60000;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`${name} did not start within ${timeoutMs} ms; output:\n${p.tail()}`)), timeoutMs);
      const poll = setInterval(() => {
        if (!p.port) {
          const m = p.logs.map((l) => /voxgate listening on http:\/\/[^:]+:(\d+)/.exec(l.text)).find((x) => x);
          if (m) p.port = Number(m[1]);
        }
        if (p.port) {
          const key = readSavedAdminKey(dataDir);
          if (key) {
            p.key = key;
            finish();
          }
        }
      }, 20);
      const onExit = (code: number | null, signal: string | null) => finish(new Error(`${name} exited during start-up (code ${code}, signal ${signal}); output:\n${p.tail()}`));
      child.once('exit', onExit);
      function finish(err?: Error): void {
        clearTimeout(timer);
        clearInterval(poll);
        child.off('exit', onExit);
        if (err) reject(err);
        else resolve();
      }
    });
  } catch (e) {
    await p.stop(0);
    throw e;
  }
  return p;
}

/** Stop every child started by {@link startVoxgateProcess} and not yet stopped (for `after` hooks). */
export async function stopAllProcesses(graceMs = 5000): Promise<void> {
  await Promise.all([...handles].map((h) => h.stop(graceMs)));
}

/** The config file a child was started with, parsed (for failure messages). */
export function readChildConfig(p: VoxgateProcess): unknown {
  return JSON.parse(readFileSync(p.configFile, 'utf8'));
}
