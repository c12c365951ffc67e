/**
 * Starting child processes without stalling the gateway.
 *
 * Node's `child_process.spawn` forks the calling process synchronously, and fork time grows with
 * the parent's memory: measured on the project box (Node 20, libuv 1.46) 1.25 ms at 47 MB RSS but
 * **21 ms at 362 MB** — the event loop of *every* session (STT included) stops for that long. The
 * gateway holds the PocketSphinx model (200+ MB), and TTS starts engine processes (flite,
 * espeak-ng, ffmpeg) all the time. So all of them are started by a small helper process, the
 * *spawner* (spawner_main.ts), over an IPC channel: the gateway only sends messages, the spawner's
 * forks cost ~1 ms of *its* time. stdout/stdin data travel over the channel with flow control
 * (stdout paused above 256 KiB unacknowledged; stdin writes complete when the child took them).
 *
 * One spawner per CPU (up to 4) per gateway process, started on first use and restarted on the
 * next spawn if one dies: the children it ran fail with {@link HostedExit.error} set (their
 * owners fail only their own job — a TTS segment, an STT stream), and the whole process group of
 * the dead spawner is SIGKILLed so none of its children outlives it.
 *
 * No process outlives its owner (issue 14 item 5): spawners are started through
 * `setpriv --pdeathsig KILL` and start their children the same way (see spawner_main.ts), so a
 * kill -9 of the gateway takes the spawners and all engine processes with it; a spawner also
 * exits when its IPC channel closes.
 */
import { spawn as spawnProcess, spawnSync, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** stdout bytes acknowledged to the spawner per `ack` message (well under its 256 KiB pause threshold). */
const ACK_BATCH = 32 * 1024;

/** How a hosted child ended. */
export interface HostedExit {
  /** Exit code, or null when killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the child could not be started (e.g. ENOENT) or the spawner died. */
  error: string | null;
  /** The first ~2000 characters the child wrote to stderr. */
  stderr: string;
}

/**
 * A child process run by the spawner: stdin/stdout as Node streams, `exit` as a promise. Events:
 * `pid` (number, once the spawner started it) and `stderr` (string chunks as the child writes them,
 * the first 8 KiB).
 */
export class HostedChild extends EventEmitter {
  /** The child's stdout (flow-controlled end to end). */
  readonly stdout: Readable;
  /** The child's stdin; a write completes when the child has taken the bytes. */
  readonly stdin: Writable;
  /** Resolves once, when the child has exited and all its stdout was pushed. */
  readonly exit: Promise<HostedExit>;
  /** OS pid of the child once the spawner reported it (undefined before, or if it never started). */
  pid: number | undefined;
  private resolveExit!: (e: HostedExit) => void;
  private done = false;
  private pendingAck = 0;
  /** The consumer stopped reading (push returned false): ack when it asks for more. */
  private blocked = false;
  private readonly inCallbacks: ((err?: Error | null) => void)[] = [];

  constructor(
    readonly id: number,
    private readonly post: (m: Record<string, unknown>) => void,
  ) {
    super();
    this.exit = new Promise((r) => (this.resolveExit = r));
    this.stdout = new Readable({
      highWaterMark: 64 * 1024,
      read: () => {
        if (this.blocked) {
          this.blocked = false;
          this.flushAck();
        }
      },
    });
    this.stdin = new Writable({
      highWaterMark: 64 * 1024,
      write: (chunk: Buffer, _enc, cb) => {
        if (this.done) return cb(); // the child is gone; its exit status reports why
        this.inCallbacks.push(cb);
        this.post({ t: 'in', id: this.id, data: chunk });
      },
      // Chunks queued while the previous one was in flight go as one message.
      writev: (chunks, cb) => {
        if (this.done) return cb();
        this.inCallbacks.push(cb);
        this.post({ t: 'in', id: this.id, data: Buffer.concat(chunks.map((c) => c.chunk as Buffer)) });
      },
      final: (cb) => {
        if (!this.done) this.post({ t: 'end', id: this.id });
        cb();
      },
    });
  }

  /** True once the child has exited. */
  get exited(): boolean {
    return this.done;
  }

  /** Send a signal (default SIGKILL). No-op after exit. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.done) this.post({ t: 'kill', id: this.id, signal });
  }

  /**
   * @internal stdout bytes from the spawner. Acknowledged in batches of {@link ACK_BATCH} bytes
   * (the spawner pauses the child only above 256 KiB unacknowledged), or all at once when a
   * consumer that had stopped reading asks for more.
   */
  onOut(data: Buffer): void {
    this.pendingAck += data.length;
    if (!this.stdout.push(data)) this.blocked = true;
    else if (this.pendingAck >= ACK_BATCH) this.flushAck();
  }

  private flushAck(): void {
    if (this.pendingAck > 0 && !this.done) this.post({ t: 'ack', id: this.id, n: this.pendingAck });
    this.pendingAck = 0;
  }

  /** @internal the spawner started the child. */
  onPid(pid: number): void {
    this.pid = pid;
    this.emit('pid', pid);
  }

  /** @internal stderr text, as the child writes it (the first 8 KiB; event `stderr`). */
  onErr(text: string): void {
    this.emit('stderr', text);
  }

  /** @internal a stdin write was taken by the child. */
  onInAck(): void {
    this.inCallbacks.shift()?.();
  }

  /** @internal the child ended. */
  onExit(e: HostedExit): void {
    if (this.done) return;
    this.done = true;
    for (const cb of this.inCallbacks.splice(0)) cb();
    this.stdout.push(null);
    this.resolveExit(e);
  }
}

/** One spawner helper process and the children it runs. */
interface Spawner {
  proc: ChildProcess;
  children: Map<number, HostedChild>;
  /** Messages posted in this event-loop turn, sent together (one IPC write) at its end. */
  outbox: Record<string, unknown>[];
  flushScheduled: boolean;
}

/** One received message from a spawner (see spawner_main.ts). */
type FromSpawner = { t: string; id: number; data?: Uint8Array; pid?: number; text?: string; m?: FromSpawner[] } & Partial<HostedExit>;

/**
 * Queue `m` for the spawner; everything posted in one event-loop turn goes as one `batch` message.
 * Every IPC message costs a write and usually a context switch on both sides; in a burst of
 * sessions they were most of the gateway's event-loop time (issue 14 item 6).
 */
function post(sp: Spawner, m: Record<string, unknown>): void {
  sp.outbox.push(m);
  if (sp.flushScheduled) return;
  sp.flushScheduled = true;
  setImmediate(() => {
    sp.flushScheduled = false;
    const box = sp.outbox.splice(0);
    if (box.length === 0 || !sp.proc.connected) return;
    sp.proc.send((box.length === 1 ? box[0] : { t: 'batch', m: box }) as Parameters<ChildProcess['send']>[0]);
  });
}

/**
 * Gateway-side end of the spawners. Use {@link sharedSpawnHost}. Runs one spawner per CPU (up to
 * 4): fork+exec is kernel work on the spawner's CPU, so a burst of starts (many sessions beginning
 * at once) spreads over the cores; each child goes to the spawner running the fewest.
 */
export class SpawnHost {
  private readonly spawners: (Spawner | null)[];
  private nextId = 1;

  /** @param count spawner processes (default: available CPUs, 1–4). */
  constructor(count = Math.max(1, Math.min(4, availableParallelism()))) {
    this.spawners = Array.from({ length: count }, () => null);
  }

  /** Children currently running through this host. */
  get active(): number {
    return this.spawners.reduce((n, s) => n + (s?.children.size ?? 0), 0);
  }

  /**
   * Start `cmd args` in a spawner. Never throws: a child that cannot start resolves `exit` with
   * `error` set (e.g. "spawn flite ENOENT").
   */
  spawn(cmd: string, args: string[]): HostedChild {
    let best = 0;
    for (let i = 1; i < this.spawners.length; i++) {
      if ((this.spawners[i]?.children.size ?? 0) < (this.spawners[best]?.children.size ?? 0)) best = i;
    }
    const sp = this.ensure(best);
    const child = new HostedChild(this.nextId++, (m) => post(sp, m));
    sp.children.set(child.id, child);
    void child.exit.then(() => {
      sp.children.delete(child.id);
      if (sp.children.size === 0) setRef(sp.proc, false);
    });
    setRef(sp.proc, true);
    post(sp, { t: 'spawn', id: child.id, cmd, args });
    return child;
  }

  /**
   * Run a command to completion.
   * @returns its exit, stdout (UTF-8) included.
   */
  async run(cmd: string, args: string[], timeoutMs = 10_000): Promise<HostedExit & { stdout: string }> {
    const child = this.spawn(cmd, args);
    child.stdin.end();
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const timer = setTimeout(() => child.kill(), timeoutMs);
    const ended = new Promise<void>((resolve) => child.stdout.once('end', resolve).once('error', () => resolve()));
    const [e] = await Promise.all([child.exit, ended]);
    clearTimeout(timer);
    return { ...e, stdout };
  }

  /** OS pids of the running spawner processes (tests and diagnostics). */
  get spawnerPids(): number[] {
    return this.spawners.flatMap((s) => (s?.proc.pid !== undefined && s.proc.exitCode === null && s.proc.signalCode === null ? [s.proc.pid] : []));
  }

  private ensure(i: number): Spawner {
    const existing = this.spawners[i];
    if (existing?.proc.connected) return existing;
    const main = fileURLToPath(new URL('./spawner_main.js', import.meta.url));
    const setpriv = setprivBinary();
    const [cmd, args] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', process.execPath, main]] : [process.execPath, [main]];
    // detached: the spawner leads its own process group, which its children join (killed as a
    // group when it dies, see below).
    const proc = spawnProcess(cmd, args, { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'], detached: true });
    const sp: Spawner = { proc, children: new Map(), outbox: [], flushScheduled: false };
    const handle = (m: FromSpawner): void => {
      if (m.t === 'batch') {
        for (const x of m.m ?? []) handle(x);
        return;
      }
      const c = sp.children.get(m.id);
      if (!c) return;
      if (m.t === 'out') c.onOut(Buffer.from(m.data!.buffer, m.data!.byteOffset, m.data!.byteLength));
      else if (m.t === 'in-ack') c.onInAck();
      else if (m.t === 'pid') c.onPid(m.pid!);
      else if (m.t === 'err') c.onErr(m.text ?? '');
      else if (m.t === 'exit') c.onExit({ code: m.code ?? null, signal: m.signal ?? null, error: m.error ?? null, stderr: m.stderr ?? '' });
    };
    proc.on('message', handle);
    proc.on('error', () => {});
    proc.on('exit', () => {
      if (this.spawners[i] === sp) this.spawners[i] = null;
      // Whatever is left of its group (a child that had not armed its parent-death signal yet):
      // the group id stays reserved while any member lives, so this cannot hit a stranger.
      if (proc.pid !== undefined) {
        try {
          process.kill(-proc.pid, 'SIGKILL');
        } catch {
          // ESRCH: nothing left
        }
      }
      for (const c of [...sp.children.values()]) c.onExit({ code: null, signal: null, error: 'the spawner process exited', stderr: '' });
    });
    this.spawners[i] = sp;
    setRef(proc, false);
    return sp;
  }
}

let setprivCache: string | null | undefined;

/**
 * `setpriv` (util-linux) when it supports `--pdeathsig`, else null; probed once per process.
 * `VOXGATE_SETPRIV=none` disables it.
 */
function setprivBinary(): string | null {
  if (setprivCache !== undefined) return setprivCache;
  const want = process.env.VOXGATE_SETPRIV ?? 'setpriv';
  setprivCache = want === 'none' ? null : spawnSync(want, ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0 ? want : null;
  return setprivCache;
}

/** The spawners must not keep an idle gateway (or a CLI run) alive, but must while children run. */
function setRef(proc: ChildProcess, on: boolean): void {
  const channel = proc.channel as { ref?: () => void; unref?: () => void } | undefined;
  if (on) {
    proc.ref();
    channel?.ref?.();
  } else {
    proc.unref();
    channel?.unref?.();
  }
}

let shared: SpawnHost | null = null;

/** The process-wide spawner host (engines and encoders share one helper process). */
export function sharedSpawnHost(): SpawnHost {
  return (shared ??= new SpawnHost());
}
