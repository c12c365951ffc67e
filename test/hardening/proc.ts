/**
 * /proc helpers for the process-lifetime tests (issue 14 items 5–6): the process table, the
 * descendants of a process, and whether a recorded process is still alive.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** One row of the process table. */
export interface ProcRow {
  pid: number;
  ppid: number;
  /** Process group id. */
  pgid: number;
  /** Kernel command name (≤ 15 chars), e.g. `flite`, `ffmpeg`, `node`. */
  comm: string;
  /** State letter: R, S, D, T (stopped), Z (zombie) … */
  state: string;
  /** Start time in clock ticks since boot: tells a pid from a later process reusing it. */
  start: number;
  /** Arguments joined by spaces. */
  cmdline: string;
}

/** Every process visible in /proc (processes that vanish while being read are skipped). */
export function procTable(): ProcRow[] {
  const rows: ProcRow[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
      // cutime cstime priority nice num_threads itrealvalue starttime …; comm may hold spaces and ')'.
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      } catch {
        // zombie or gone
      }
      rows.push({ pid: Number(name), ppid: Number(f[1]), pgid: Number(f[2]), comm, state: f[0]!, start: Number(f[19]), cmdline });
    } catch {
      continue;
    }
  }
  return rows;
}

/** Live (non-zombie) descendants of `root` (not `root` itself). */
export function descendants(root: number, table = procTable()): ProcRow[] {
  const mine = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of table) if (mine.has(r.ppid) && !mine.has(r.pid)) (mine.add(r.pid), (grew = true));
  }
  return table.filter((r) => r.pid !== root && mine.has(r.pid) && r.state !== 'Z');
}

/** True while the process recorded in `r` exists and is not a zombie (same pid *and* start time). */
export function alive(r: Pick<ProcRow, 'pid' | 'start'>): boolean {
  try {
    const stat = readFileSync(`/proc/${r.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[19]) === r.start && f[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Spawner helper processes among `rows`. */
export function spawners(rows: ProcRow[]): ProcRow[] {
  return rows.filter((r) => r.comm === 'node' && r.cmdline.includes('spawner_main.js'));
}

/** Send `sig` to each process, ignoring those already gone. */
export function signalAll(rows: Pick<ProcRow, 'pid'>[], sig: NodeJS.Signals): void {
  for (const r of rows) {
    try {
      process.kill(r.pid, sig);
    } catch {
      // gone
    }
  }
}

/** Poll `fn` every 50 ms until it returns true or `timeoutMs` passes; returns its last value. */
export async function waitFor(fn: () => boolean, timeoutMs: number): Promise<boolean> {
  const t0 = Date.now();
  for (;;) {
    if (fn()) return true;
    if (Date.now() - t0 > timeoutMs) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
