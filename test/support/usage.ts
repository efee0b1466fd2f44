// Resource use of the processes a benchmark runs: CPU seconds and peak RSS of a process (from
// /proc, or from GNU time for a whole run), and of a container (its cgroup), and the bytes a
// Kafka topic takes in the broker container's log directory.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux

export interface Usage {
  /** User + system CPU seconds. */
  cpuS: number;
  /** Peak resident set size, bytes. */
  peakRssBytes: number;
}

/** CPU seconds (user + system) a live process has used so far. */
export function processCpuS(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime: fields 14 and 15
}

/**
 * A /proc/<pid>/status size in bytes (VmHWM: peak RSS, VmRSS: current RSS, RssAnon: its
 * private memory, RssFile: its file pages, for Node mostly the node binary's, shared with
 * every other node process).
 */
export function processMemBytes(pid: number, key: 'VmHWM' | 'VmRSS' | 'RssAnon' | 'RssFile'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** GNU time's output format for timedCommand: one marker line, parsed by parseTimed. */
export const TIME_FORMAT = 'USAGE %U %S %M';

/** argv that runs `cmd` under GNU time (/usr/bin/time), which prints TIME_FORMAT on stderr at exit. */
export function timedCommand(cmd: string[]): string[] {
  return ['/usr/bin/time', '-f', TIME_FORMAT, ...cmd];
}

/** The usage GNU time printed (last USAGE line of stderr). */
export function parseTimed(stderr: string): Usage {
  const lines = stderr.split('\n').filter((l) => l.startsWith('USAGE '));
  const last = lines[lines.length - 1];
  if (!last) throw new Error(`no usage line from /usr/bin/time in:\n${stderr.slice(-2000)}`);
  const [, user, sys, maxKb] = last.split(' ');
  return { cpuS: Number(user) + Number(sys), peakRssBytes: Number(maxKb) * 1024 };
}

/** Where a container's CPU and memory accounting is: cgroup v2, or v1's cpuacct and memory. */
export interface Cgroup {
  cpuFile: string;
  peakFile: string;
}

/** The cgroup of a container's main process (cgroup v2 where mounted so, else v1 controllers). */
export function containerCgroup(containerId: string): Cgroup {
  const pid = execFileSync('podman', ['inspect', '--format', '{{.State.Pid}}', containerId], {
    encoding: 'utf8',
  }).trim();
  const paths = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    for (const c of controllers?.split(',') ?? []) paths.set(c, path);
  }
  const v2 = `/sys/fs/cgroup${paths.get('') ?? ''}`;
  if (existsSync(`${v2}/cpu.stat`)) return { cpuFile: `${v2}/cpu.stat`, peakFile: `${v2}/memory.peak` };
  return {
    cpuFile: `/sys/fs/cgroup/cpuacct${paths.get('cpuacct')}/cpuacct.usage`,
    peakFile: `/sys/fs/cgroup/memory${paths.get('memory')}/memory.max_usage_in_bytes`,
  };
}

/** CPU seconds the cgroup's processes have used so far. */
export function cgroupCpuS(g: Cgroup): number {
  const text = readFileSync(g.cpuFile, 'utf8');
  if (g.cpuFile.endsWith('cpuacct.usage')) return Number(text.trim()) / 1e9;
  const m = /^usage_usec (\d+)/m.exec(text);
  return m ? Number(m[1]) / 1e6 : Number.NaN;
}

/** The cgroup's peak memory (bytes) since it was created; NaN where the kernel does not say. */
export function cgroupPeakBytes(g: Cgroup): number {
  try {
    return Number(readFileSync(g.peakFile, 'utf8').trim());
  } catch {
    return Number.NaN;
  }
}

/** Bytes of the topic's log segments (all partitions) in a broker container's log directory. */
export function topicLogBytes(containerId: string, logDir: string, topic: string): number {
  const out = execFileSync(
    'podman',
    ['exec', containerId, 'sh', '-c', `stat -c %s ${logDir}/${topic}-*/*.log`],
    { encoding: 'utf8' },
  );
  return out
    .split('\n')
    .filter(Boolean)
    .reduce((s, x) => s + Number(x), 0);
}
