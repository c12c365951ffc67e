/**
 * The spawner: a small helper process that starts and runs child processes on behalf of the
 * gateway (see spawn_host.ts for why). Entry point of `child_process.fork`; speaks a tiny IPC
 * protocol with `serialization: 'advanced'` (Buffers travel as Uint8Array):
 *
 *   gateway → spawner: {t:'spawn', id, cmd, args} | {t:'in', id, data} | {t:'end', id, data?}
 *                      | {t:'ack', id, n} | {t:'kill', id, signal}
 *   spawner → gateway: {t:'out', id, data} | {t:'in-ack', id} | {t:'exit', id, code, signal, error, stderr}
 *
 * Flow control: stdout chunks not yet acknowledged by the gateway are counted per child; above
 * 256 KiB the child's stdout is paused (so the child blocks on its pipe) until acks bring it under
 * 64 KiB. Every `in` is acknowledged once the child's stdin took it. When the gateway goes away
 * (IPC disconnect) every child is killed and the spawner exits. Only Node built-ins are imported,
 * so this process stays small (its fork+exec costs ~1 ms, not the gateway's ~20 ms).
 */
import { spawn, type ChildProcess } from 'node:child_process';

const HIGH_WATER = 256 * 1024;
const LOW_WATER = 64 * 1024;

/** Messages from the gateway. */
type In =
  | { t: 'spawn'; id: number; cmd: string; args: string[] }
  | { t: 'in'; id: number; data: Uint8Array }
  | { t: 'end'; id: number; data?: Uint8Array | string }
  | { t: 'ack'; id: number; n: number }
  | { t: 'kill'; id: number; signal?: NodeJS.Signals };

interface Job {
  child: ChildProcess;
  unacked: number;
  paused: boolean;
  stderr: string;
  error: string | null;
  done: boolean;
}

const jobs = new Map<number, Job>();

function send(m: unknown): void {
  if (process.connected) process.send!(m);
}

function finish(id: number, job: Job, code: number | null, signal: NodeJS.Signals | null): void {
  if (job.done) return;
  job.done = true;
  jobs.delete(id);
  send({ t: 'exit', id, code, signal, error: job.error, stderr: job.stderr });
}

process.on('message', (m: In) => {
  if (m.t === 'spawn') {
    let child: ChildProcess;
    try {
      child = spawn(m.cmd, m.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      send({ t: 'exit', id: m.id, code: null, signal: null, error: (err as Error).message, stderr: '' });
      return;
    }
    const job: Job = { child, unacked: 0, paused: false, stderr: '', error: null, done: false };
    jobs.set(m.id, job);
    child.stdin!.on('error', () => {}); // EPIPE when the child exits early: its exit status tells
    child.stdout!.on('data', (data: Buffer) => {
      job.unacked += data.length;
      send({ t: 'out', id: m.id, data });
      if (!job.paused && job.unacked > HIGH_WATER) {
        job.paused = true;
        child.stdout!.pause();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (job.stderr.length < 2000) job.stderr += d;
    });
    child.once('error', (err) => {
      job.error = err.message;
      if (child.pid === undefined) finish(m.id, job, null, null); // never started: no 'close' follows
    });
    child.once('close', (code, signal) => finish(m.id, job, code, signal));
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
});

process.on('disconnect', () => {
  for (const j of jobs.values()) j.child.kill('SIGKILL');
  process.exit(0);
});
