/**
 * The server under test as a child process (`node bin/voxgate.cjs serve`), so its memory and CPU
 * are measured alone from /proc/PID. The child is killed on every exit path of the benchmark
 * process (normal exit, uncaught error, SIGINT/SIGTERM).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** One reading of the child's resource counters. */
export interface ProcSample {
  /** `performance.now()` of the reading, ms. */
  atMs: number;
  /** Resident set size (VmRSS), bytes. */
  rssBytes: number;
  /** OS threads of the process (`Threads:` in /proc/PID/status). */
  threads: number;
  /** utime + stime of all the process's threads, seconds. */
  cpuSeconds: number;
  /** Non-idle CPU time of the whole machine (all CPUs, /proc/stat), seconds. */
  systemBusySeconds: number;
  /** utime + stime of the benchmark process itself, seconds. */
  selfCpuSeconds: number;
}

/** utime + stime of a process from /proc/PID/stat, seconds. */
function procCpuSeconds(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}

/** Non-idle (everything but idle and iowait) jiffies of all CPUs from /proc/stat, seconds. */
function systemBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const busy = v[0]! + v[1]! + v[2]! + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
  return busy / ticksPerSecond();
}

/** A parsed pino log line (level ≥ 40) or a non-JSON stderr/stdout line from the server. */
export interface ServerLogLine {
  /** `performance.now()` when read, ms. */
  atMs: number;
  level: number | null;
  text: string;
}

/** Options of {@link ServerProcess.start}. */
export interface ServerStartOptions {
  /** Repository root (holds `bin/voxgate.cjs`). */
  root: string;
  /** Config file contents (written to a temp file). */
  config: unknown;
  /** Start-up timeout, ms. Default 60000. */
  timeoutMs?: number;
}

let clkTck = 0;
/** Kernel clock ticks per second (`getconf CLK_TCK`, 100 when unknown). */
function ticksPerSecond(): number {
  if (clkTck) return clkTck;
  try {
    clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim()) || 100;
  } catch {
    clkTck = 100;
  }
  return clkTck;
}

/** Running children and their temp data dirs (removed on exit). */
const live = new Map<ChildProcess, string>();
let hooksInstalled = false;
function installKillHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const [c, dir] of live) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, killing the server\n`);
      process.exit(130); // the exit hook kills the children and removes their data dirs
    });
  }
}

/** A running voxgate server child process. */
export class ServerProcess {
  /** Warnings/errors the server logged (pino level ≥ 40) and any unparseable output. */
  readonly logs: ServerLogLine[] = [];
  /** Set when the child exited while the benchmark was still using it. */
  unexpectedExit: { code: number | null; signal: string | null } | null = null;
  private stopping = false;

  private constructor(
    readonly child: ChildProcess,
    readonly pid: number,
    readonly port: number,
    /** API key (the first-start admin key). */
    readonly key: string,
    readonly dataDir: string,
    readonly configFile: string,
    /** Time from spawn to "listening", ms. */
    readonly startupMs: number,
  ) {}

  /** `http://127.0.0.1:PORT`. */
  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** `ws://127.0.0.1:PORT`. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /**
   * Spawn the server on port 0 with a temp data dir and config, wait for "listening" and the admin key.
   * @throws Error when `bin/voxgate.cjs` is missing, the child exits early, or start-up exceeds the timeout.
   */
  static async start(o: ServerStartOptions): Promise<ServerProcess> {
    installKillHooks();
    const main = path.join(o.root, 'bin/voxgate.cjs');
    if (!existsSync(main)) throw new Error(`${main} not found: build first (npx tsc -p tsconfig.json)`);
    const dataDir = mkdtempSync(path.join(tmpdir(), 'voxgate-bench-'));
    const configFile = path.join(dataDir, 'bench-config.json');
    writeFileSync(configFile, JSON.stringify(o.config, null, 2));
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [main, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--config', configFile, '--log-level', 'warn'],
      { cwd: o.root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
    );
    live.set(child, dataDir);
    let sink: ServerLogLine[] = [];
    let out = '';
    let port = 0;
    let adminKey: string | null = null;
    const onLine = (line: string): void => {
      if (!line.trim()) return;
      const m = /voxgate listening on http:\/\/[^:]+:(\d+)/.exec(line);
      if (m) {
        port = Number(m[1]);
        return;
      }
      let level: number | null = null;
      let json = false;
      try {
        const j = JSON.parse(line) as { level?: number };
        json = true;
        level = typeof j.level === 'number' ? j.level : null;
      } catch {
        /* plain text */
      }
      if (!json && !port) return; // the first-start banner with the admin key
      sink.push({ atMs: performance.now(), level, text: line.length > 2000 ? line.slice(0, 2000) + '…' : line });
    };
    const splitter = () => {
      let buf = '';
      return (d: Buffer) => {
        buf += d.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          out += out.length < 20000 ? line + '\n' : '';
          onLine(line);
        }
      };
    };
    child.stdout!.on('data', splitter());
    child.stderr!.on('data', splitter());

    const timeoutMs = o.timeoutMs ?? 60000;
    const keyFile = path.join(dataDir, 'admin.key');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`server did not start within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
      const poll = setInterval(() => {
        if (port && existsSync(keyFile)) {
          adminKey = readFileSync(keyFile, 'utf8').trim() || null;
          if (adminKey) finish();
        }
      }, 20);
      const onExit = (code: number | null, signal: string | null) =>
        finish(new Error(`server exited during start-up (code ${code}, signal ${signal}); output:\n${out}`));
      child.once('exit', onExit);
      function finish(err?: Error): void {
        clearTimeout(timer);
        clearInterval(poll);
        child.off('exit', onExit);
        if (err) {
          child.kill('SIGKILL');
          reject(err);
        } else resolve();
      }
    });
    const s = new ServerProcess(child, child.pid!, port, adminKey!, dataDir, configFile, performance.now() - t0);
    s.logs.push(...sink);
    sink = s.logs;
    child.once('exit', (code, signal) => {
      live.delete(child);
      if (!s.stopping) s.unexpectedExit = { code, signal };
    });
    return s;
  }

  /** Whether the child is still running. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Read VmRSS and utime+stime from /proc/PID.
   * @throws Error when the process is gone.
   */
  sample(): ProcSample {
    const atMs = performance.now();
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    const th = /^Threads:\s+(\d+)/m.exec(status);
    return { atMs, rssBytes: m ? Number(m[1]) * 1024 : NaN, threads: th ? Number(th[1]) : NaN, cpuSeconds: procCpuSeconds(this.pid), systemBusySeconds: systemBusySeconds(), selfCpuSeconds: procCpuSeconds('self') };
  }

  /** GET /v1/status with the key (timeout 5 s); `null` on any failure. */
  async status(): Promise<{ sessions: number; engines: Record<string, { activeStreams: number; idleDecoders: number; busyDecoders: number }>; rss_bytes: number } | null> {
    try {
      const r = await fetch(`${this.httpUrl}/v1/status`, { headers: { Authorization: `Bearer ${this.key}` }, signal: AbortSignal.timeout(5000) });
      if (!r.ok) return null;
      return (await r.json()) as never;
    } catch {
      return null;
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs` (default 5000 ms); removes the temp data dir. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    if (this.alive) {
      const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs + 2000))]);
      clearTimeout(t);
    }
    live.delete(this.child);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** CPU use between two samples, percent of one core (200 = two cores busy). */
export function cpuPercent(a: ProcSample, b: ProcSample): number {
  const wall = (b.atMs - a.atMs) / 1000;
  return wall > 0 ? ((b.cpuSeconds - a.cpuSeconds) / wall) * 100 : 0;
}

/**
 * CPU use of everything else on the machine between two samples (not the server, not the benchmark
 * process), percent of one core. High values mean the measurement was disturbed by other work.
 */
export function externalCpuPercent(a: ProcSample, b: ProcSample): number {
  const wall = (b.atMs - a.atMs) / 1000;
  if (wall <= 0) return 0;
  const other = b.systemBusySeconds - a.systemBusySeconds - (b.cpuSeconds - a.cpuSeconds) - (b.selfCpuSeconds - a.selfCpuSeconds);
  return Math.max(0, (other / wall) * 100);
}

/** Periodic {@link ProcSample}s of a server while something runs. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly server: ServerProcess, private readonly periodMs = 250) {}

  /** Take a first sample and start sampling every `periodMs` ms. */
  start(): this {
    this.take();
    this.timer = setInterval(() => this.take(), this.periodMs);
    return this;
  }

  /** Take a last sample and stop. */
  stop(): ProcSample[] {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.take();
    return this.samples;
  }

  private take(): void {
    try {
      this.samples.push(this.server.sample());
    } catch {
      /* process gone: the caller sees server.unexpectedExit */
    }
  }
}
