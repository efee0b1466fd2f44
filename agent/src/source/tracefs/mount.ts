// Finding tracefs, and mounting it when it is not mounted and the agent may.
//
// Looked for, in order: the configured path, every tracefs mount in /proc/mounts,
// /sys/kernel/tracing, /sys/kernel/debug/tracing (the debugfs automount of old setups).
// A directory counts as tracefs when it holds events/header_page.
import { execFile } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { errnoCode, PERMISSION_HINT, TracefsError } from './errors';

const run = promisify(execFile);

export const DEFAULT_TRACEFS = '/sys/kernel/tracing';
export const LEGACY_TRACEFS = '/sys/kernel/debug/tracing';

export interface TracefsMount {
  /** The tracefs root, e.g. /sys/kernel/tracing. */
  readonly path: string;
  /** True when this process mounted it (and should unmount it when done). */
  readonly mountedByUs: boolean;
}

export interface FindTracefsOptions {
  /** A path to try first. */
  path?: string;
  /** Mount tracefs at /sys/kernel/tracing (or `path`) when none is found. Default true. */
  mount?: boolean;
}

/** True when `dir` is the root of a mounted tracefs. */
export function isTracefsRoot(dir: string): boolean {
  return pathExists(join(dir, 'events', 'header_page'));
}

/** Mount points of type tracefs listed in /proc/mounts text (octal escapes decoded). */
export function tracefsMountPoints(procMounts: string): string[] {
  const out: string[] = [];
  for (const line of procMounts.split('\n')) {
    const f = line.split(' ');
    if (f.length >= 3 && f[2] === 'tracefs') {
      out.push(f[1].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
    }
  }
  return out;
}

/** Candidate roots, most specific first, without duplicates. */
export function tracefsCandidates(configured: string | undefined, procMounts: string): string[] {
  const all = [
    ...(configured ? [configured] : []),
    ...tracefsMountPoints(procMounts),
    DEFAULT_TRACEFS,
    LEGACY_TRACEFS,
  ];
  return [...new Set(all)];
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/**
 * Whether a path exists, judged with the process's effective rights. access(2), behind
 * fs.existsSync/accessSync, judges with the real uid and ignores capabilities, so a non-root
 * agent holding CAP_DAC_OVERRIDE would be told it may not see files it can open.
 */
export function pathExists(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/** Finds tracefs, mounting it if needed and allowed; throws a TracefsError with a hint otherwise. */
export async function findTracefs(options: FindTracefsOptions = {}): Promise<TracefsMount> {
  const mounted = tracefsMountPoints(readOr('/proc/mounts', ''));
  const candidates = tracefsCandidates(options.path, readOr('/proc/mounts', ''));
  let denied: string | undefined;
  for (const dir of candidates) {
    try {
      closeSync(openSync(join(dir, 'events', 'header_page'), 'r'));
      return { path: dir, mountedByUs: false };
    } catch (err) {
      const code = errnoCode(err);
      if ((code === 'EACCES' || code === 'EPERM') && mounted.includes(dir)) denied ??= dir;
    }
  }
  if (denied !== undefined) {
    throw new TracefsError(
      'NOT_PERMITTED',
      `tracefs is mounted at ${denied} but this process may not read it`,
      PERMISSION_HINT,
    );
  }
  const target = options.path ?? DEFAULT_TRACEFS;
  if (!/\btracefs\b/.test(readOr('/proc/filesystems', 'tracefs'))) {
    throw new TracefsError(
      'NOT_AVAILABLE',
      'this kernel has no tracefs',
      'the kernel needs CONFIG_FTRACE with CONFIG_TRACING (any of the tracers or event tracing enabled)',
    );
  }
  if (options.mount === false) {
    throw new TracefsError(
      'NOT_MOUNTED',
      `tracefs is not mounted (looked in ${candidates.join(', ')})`,
      `mount it: mount -t tracefs nodev ${target} (or let the agent mount it; that needs CAP_SYS_ADMIN)`,
    );
  }
  await mountTracefs(target);
  return { path: target, mountedByUs: true };
}

/** Mounts tracefs at `dir` with mount(8) (Node has no mount(2)). */
export async function mountTracefs(dir: string): Promise<void> {
  try {
    await run('mount', ['-t', 'tracefs', 'nodev', dir], { timeout: 10_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '');
    const denied = /permission denied|only root|must be superuser|not permitted|EPERM|EACCES/i.test(stderr);
    throw new TracefsError(
      denied ? 'NOT_PERMITTED' : 'NOT_MOUNTED',
      `tracefs is not mounted and mounting it at ${dir} failed: ${stderr.trim() || String(err)}`,
      denied
        ? `mounting needs CAP_SYS_ADMIN: run the agent with it, or mount tracefs beforehand (mount -t tracefs nodev ${dir}; in Kubernetes a hostPath of /sys/kernel/tracing)`
        : `mount it by hand (mount -t tracefs nodev ${dir}) and check the kernel log`,
      { cause: err },
    );
  }
  if (!isTracefsRoot(dir)) {
    throw new TracefsError(
      'NOT_MOUNTED',
      `mounted tracefs at ${dir} but it has no events/header_page`,
      'the kernel may have event tracing disabled (CONFIG_EVENT_TRACING)',
    );
  }
}

/** Unmounts a tracefs this process mounted; failures (EBUSY: still in use) are returned, not thrown. */
export async function unmountTracefs(mount: TracefsMount): Promise<Error | undefined> {
  if (!mount.mountedByUs) return undefined;
  try {
    await run('umount', [mount.path], { timeout: 10_000 });
    return undefined;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}
