// One agent per state directory. Two agents on one directory would share an agent id, an epoch
// and a spool, interleave records with the same sequence numbers and make the collector drop one
// host's batches as replays.
// Node has no flock(2), so the lock is a file created with link(2), which is atomic and fails
// when the name exists (O_EXCL semantics, also on NFS): `<dir>/agent.lock` holds the holder's
// pid, host, start time, boot id and process start tick. A lock is stale, and taken over, when
// its holder provably cannot be running: another boot of this host, or its pid is gone or now
// belongs to a process started at another tick (pid reuse). A holder in another pid namespace or
// on another host cannot be checked that way, so the holder also touches the file every
// HEARTBEAT_MS, and a lock not touched for STALE_MS is stale too. A take-over moves the stale
// file aside by rename and checks that what it moved is the stale lock it judged; if a racing
// agent's fresh lock was moved instead, it is put back and this agent refuses.
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'agent.lock';
const HEARTBEAT_MS = 5_000;
const STALE_MS = 30_000;

export interface LockHolder {
  pid: number;
  host: string;
  /** When the holder took the lock (ISO 8601). */
  since: string;
  bootId: string;
  /** The holder's start time in clock ticks after boot (/proc/<pid>/stat field 22), '' if unknown. */
  startTick: string;
}

export class StateDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder | undefined,
  ) {
    super(
      holder
        ? `state directory ${dir} is in use by another smmu-agent (pid ${holder.pid} on ${holder.host}, since ${holder.since}); stop it or give this one its own --state-dir`
        : `state directory ${dir} is being locked by another smmu-agent right now; try again`,
    );
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

function startTick(pid: number): string {
  const stat = readText(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces and parentheses): state is field 3.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

function me(): LockHolder {
  return {
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    bootId: readText('/proc/sys/kernel/random/boot_id'),
    startTick: startTick(process.pid),
  };
}

function readHolder(path: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
    return Number.isSafeInteger(h.pid) && typeof h.host === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

/** Why the lock at `path` (held by `h`, undefined if unreadable) is stale, or undefined if it may be live. */
function staleness(path: string, h: LockHolder | undefined): string | undefined {
  let age: number;
  try {
    age = Date.now() - statSync(path).mtimeMs;
  } catch {
    return 'gone';
  }
  if (age > STALE_MS) return `not touched for ${Math.round(age / 1000)} s`;
  if (!h) return undefined; // being written, or garbled: the age decides
  const self = me();
  if (h.host !== self.host) return undefined;
  if (h.bootId && self.bootId && h.bootId !== self.bootId) return 'held before a reboot';
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return `pid ${h.pid} is gone`;
  }
  if (h.startTick && startTick(h.pid) !== h.startTick) return `pid ${h.pid} is another process now`;
  return undefined;
}

export interface StateDirLock {
  readonly path: string;
  /** Why an earlier holder's lock was taken over, if one was. */
  readonly tookOver: string | undefined;
  release(): void;
}

/** Takes the state directory's lock or throws StateDirLockedError naming the holder. */
export function lockStateDir(dir: string): StateDirLock {
  const path = join(dir, LOCK_FILE);
  const mine = me();
  const text = `${JSON.stringify(mine)}\n`;
  const tmp = join(dir, `${LOCK_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  writeFileSync(tmp, text);
  let tookOver: string | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = readHolder(path);
      const why = staleness(path, holder);
      if (!why || attempt >= 2) throw new StateDirLockedError(dir, holder);
      const moved = `${tmp}.stale`;
      try {
        renameSync(path, moved);
      } catch {
        continue; // gone meanwhile: try again
      }
      if (JSON.stringify(readHolder(moved)) !== JSON.stringify(holder)) {
        // A racing agent's fresh lock: give it back and refuse.
        try {
          linkSync(moved, path);
        } finally {
          unlinkSync(moved);
        }
        throw new StateDirLockedError(dir, readHolder(path));
      }
      unlinkSync(moved);
      tookOver = `lock of pid ${holder?.pid ?? '?'} on ${holder?.host ?? '?'} taken over: ${why}`;
    }
  } finally {
    unlinkSync(tmp);
  }
  const heartbeat = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(path, now, now);
    } catch {
      // The next beat tries again; a lock not touched for STALE_MS only matters to another agent.
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();
  let released = false;
  return {
    path,
    tookOver,
    release() {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      // Only our own lock: never one another agent took over after a stall.
      if (readText(path) === text.trim()) unlinkSync(path);
    },
  };
}
