/**
 * The spawner: a small helper process that starts and runs child processes on behalf of the
 * gateway (see spawn_host.ts for why). Entry point of `child_process.spawn` with an IPC channel;
 * speaks a tiny IPC protocol with `serialization: 'advanced'` (Buffers travel as Uint8Array):
 *
 *   gateway → spawner: {t:'spawn', id, cmd, args} | {t:'in', id, data} | {t:'end', id, data?}
 *                      | {t:'ack', id, n} | {t:'kill', id, signal}
 *   spawner → gateway: {t:'pid', id, pid} | {t:'out', id, data} | {t:'err', id, text} | {t:'in-ack', id}
 *                      | {t:'exit', id, code, signal, error, stderr}
 *   either way:        {t:'batch', m: [message, …]} — the messages of one event-loop turn, in order
 *
 * stdout read within one event-loop turn travels as one `out` message: every IPC message costs a
 * write and usually a context switch on both sides, which under a burst of sessions (ffmpeg writes
 * one 20 ms frame at a time) was most of the gateway's event-loop time (issue 14 item 6).
 *
 * Flow control: stdout chunks not yet acknowledged by the gateway are counted per child; above
 * 256 KiB the child's stdout is paused (so the child blocks on its pipe) until acks bring it under
 * 64 KiB. Every `in` is acknowledged once the child's stdin took it. stderr is forwarded as it
 * comes (`err`, the first {@link STDERR_FORWARD} bytes) and its first ~2000 characters are repeated
 * in `exit`.
 *
 * Lifetime (issue 14 item 5 — no engine process outlives its owner):
 * - every child is started through `setpriv --pdeathsig KILL` (util-linux, Essential on Debian)
 *   when available, so the kernel SIGKILLs it the moment this spawner dies, however it dies
 *   (kill -9 included); the gateway starts this spawner the same way, so the chain
 *   gateway → spawner → engine process collapses from the top;
 * - the spawner is its own process-group leader and children stay in its group: the gateway kills
 *   the whole group when a spawner exits (closes the short window before `setpriv` has armed the
 *   signal, and covers systems without `setpriv`);
 * - when the gateway goes away (IPC disconnect) every child is killed and the spawner exits;
 * - SIGTERM/SIGINT are ignored: the spawner lives exactly as long as its gateway, so a gateway that
 *   drains on SIGTERM (a supervisor may signal the whole cgroup) keeps its engines until it exits.
 *
 * Only Node built-ins are imported, so this process stays small (its fork+exec costs ~1 ms, not
 * the gateway's ~20 ms).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

const HIGH_WATER = 256 * 1024;
const LOW_WATER = 64 * 1024;
/** stderr bytes per child forwarded live (`err` messages); the rest is dropped. */
const STDERR_FORWARD = 8192;

/** Messages from the gateway. */
type In =
  | { t: 'spawn'; id: number; cmd: string; args: string[] }
  | { t: 'in'; id: number; data: Uint8Array }
  | { t: 'end'; id: number; data?: Uint8Array | string }
  | { t: 'ack'; id: number; n: number }
  | { t: 'kill'; id: number; signal?: NodeJS.Signals };

interface Job {
  child: ChildProcess;
  /** stdout chunks read in this event-loop turn, sent as one `out` message (fewer IPC writes and wake-ups). */
  outQueue: Buffer[];
  outScheduled: boolean;
  unacked: number;
  paused: boolean;
  stderr: string;
  forwarded: number;
  error: string | null;
  done: boolean;
}

const jobs = new Map<number, Job>();

/**
 * The `setpriv` binary when it supports `--pdeathsig` (probed once), else null. Overridable with
 * `VOXGATE_SETPRIV` (a path, or `none` to disable — tests of the fallback).
 */
const SETPRIV = ((): string | null => {
  const want = process.env.VOXGATE_SETPRIV ?? 'setpriv';
  if (want === 'none') return null;
  const r = spawnSync(want, ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore', timeout: 5000 });
  return r.status === 0 ? want : null;
})();

/** Jobs with stdout queued for the end of this turn. */
const dirty = new Map<number, Job>();
const outbox: unknown[] = [];
let flushScheduled = false;

/** Queue a message; the messages of one event-loop turn go as one `batch` (one IPC write). */
function send(m: unknown): void {
  outbox.push(m);
  schedule();
}

function schedule(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(() => {
    flushScheduled = false;
    for (const [id, job] of dirty) flushOut(id, job);
    const box = outbox.splice(0);
    if (box.length === 0 || !process.connected) return;
    process.send!(box.length === 1 ? box[0] : { t: 'batch', m: box });
  });
}

/** Queue the stdout read so far as one `out` message. */
function flushOut(id: number, job: Job): void {
  job.outScheduled = false;
  dirty.delete(id);
  if (job.outQueue.length === 0) return;
  const data = job.outQueue.length === 1 ? job.outQueue[0] : Buffer.concat(job.outQueue);
  job.outQueue = [];
  outbox.push({ t: 'out', id, data });
}

function finish(id: number, job: Job, code: number | null, signal: NodeJS.Signals | null): void {
  if (job.done) return;
  flushOut(id, job);
  job.done = true;
  jobs.delete(id);
  send({ t: 'exit', id, code, signal, error: job.error, stderr: job.stderr });
}

process.on('message', (m: In | { t: 'batch'; m: In[] }) => {
  if (m.t === 'batch') for (const x of m.m) handle(x);
  else handle(m);
});

function handle(m: In): void {
  if (m.t === 'spawn') {
    let child: ChildProcess;
    try {
      // setpriv arms PR_SET_PDEATHSIG and execs the command: same pid, same stdio, same exit status.
      child = SETPRIV
        ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', m.cmd, ...m.args], { stdio: ['pipe', 'pipe', 'pipe'] })
        : spawn(m.cmd, m.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      send({ t: 'exit', id: m.id, code: null, signal: null, error: (err as Error).message, stderr: '' });
      return;
    }
    const job: Job = { child, outQueue: [], outScheduled: false, unacked: 0, paused: false, stderr: '', forwarded: 0, error: null, done: false };
    jobs.set(m.id, job);
    if (child.pid !== undefined) send({ t: 'pid', id: m.id, pid: child.pid });
    child.stdin!.on('error', () => {}); // EPIPE when the child exits early: its exit status tells
    child.stdout!.on('data', (data: Buffer) => {
      job.unacked += data.length;
      job.outQueue.push(data);
      if (!job.outScheduled) {
        job.outScheduled = true;
        dirty.set(m.id, job);
        schedule();
      }
      if (!job.paused && job.unacked > HIGH_WATER) {
        job.paused = true;
        child.stdout!.pause();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (job.stderr.length < 2000) job.stderr += d;
      if (job.forwarded < STDERR_FORWARD) {
        job.forwarded += d.length;
        send({ t: 'err', id: m.id, text: d });
      }
    });
    child.once('error', (err) => {
      job.error = err.message;
      if (child.pid === undefined) finish(m.id, job, null, null); // never started: no 'close' follows
    });
    child.once('close', (code, signal) => {
      // setpriv reports a missing command as exit 127 with "failed to execute": report it like
      // spawn's ENOENT, so callers see one kind of "cannot run" error.
      if (SETPRIV && code === 127 && /setpriv: failed to execute/.test(job.stderr) && !job.error) {
        job.error = `spawn ${m.cmd} ENOENT`;
      }
      finish(m.id, job, code, signal);
    });
    return;
  }
  const job = jobs.get(m.id);
  if (!job) return;
  switch (m.t) {
    case 'in':
      job.child.stdin!.write(m.data, () => send({ t: 'in-ack', id: m.id }));
      return;
    case 'end':
      job.child.stdin!.end(m.data);
      return;
    case 'ack':
      job.unacked -= m.n;
      if (job.paused && job.unacked < LOW_WATER) {
        job.paused = false;
        job.child.stdout!.resume();
      }
      return;
    case 'kill':
      job.child.kill(m.signal ?? 'SIGKILL');
      return;
  }
}

// Lives as long as the gateway (see the module docs); the gateway's exit is the only way out.
process.on('SIGTERM', () => {});
process.on('SIGINT', () => {});

process.on('disconnect', () => {
  for (const j of jobs.values()) j.child.kill('SIGKILL');
  process.exit(0);
});
// The gateway died before the channel was even set up (or it is gone already).
if (!process.connected) process.exit(0);
