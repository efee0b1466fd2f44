// The agent's own tracefs instance (instances/<name>), as rasdaemon does: its own ring
// buffer, size and clock, with only the agent's events enabled, so that nothing another
// tracing user does (trace-cmd, perf, a second agent under another name) changes what the
// agent sees, and the agent changes nothing for them.
//
// An instance left behind by an agent that died is recovered, not wiped: tracing stayed on
// in it, so the events recorded while no agent ran are still in its buffer and are read
// first. Settings that would clear the buffer (trace_clock, sub-buffer size) are written
// only when they differ.
import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, fsFailure, TracefsError } from './errors';
import { type EventFormat, type PageLayout, parseEventFormat, parseHeaderPage, withDataSize } from './format';
import { pathExists } from './mount';

export interface InstanceSettings {
  /** Instance name (a directory under instances/). */
  readonly name: string;
  /** Per-CPU ring buffer size in KiB (buffer_size_kb). Unset: the kernel's default. */
  readonly bufferSizeKb?: number;
  /** Sub-buffer (page) size in KiB (buffer_subbuf_size_kb, Linux 6.8+). Unset: unchanged. */
  readonly subbufSizeKb?: number;
  /** buffer_percent: how full a buffer must be before blocked readers are woken. */
  readonly bufferPercent?: number;
  /** trace_clock to use; default "mono" (CLOCK_MONOTONIC, see clock.ts). */
  readonly clock?: string;
}

export interface CpuStats {
  entries: number;
  overrun: number;
  commitOverrun: number;
  dropped: number;
  read: number;
}

/** Parses per_cpu/cpuN/stats. */
export function parseCpuStats(text: string): CpuStats {
  const get = (key: string): number => {
    const m = new RegExp(`^${key}:\\s*(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return {
    entries: get('entries'),
    overrun: get('overrun'),
    commitOverrun: get('commit overrun'),
    dropped: get('dropped events'),
    read: get('read events'),
  };
}

/** The selected clock of a trace_clock file ("[local] global mono" -> "local"). */
export function selectedClock(text: string): string | undefined {
  return /\[([^\]]+)\]/.exec(text)?.[1];
}

/** Splits "group:event" (also accepts "group/event"). */
export function splitEvent(event: string): [string, string] {
  const m = /^([A-Za-z0-9_.-]+)[:/]([A-Za-z0-9_.-]+)$/.exec(event);
  if (!m) throw new TracefsError('EVENT_MISSING', `bad event name "${event}"`, 'name events as group:event');
  return [m[1], m[2]];
}

/** True when tracefs at `root` has the event. */
export function eventExists(root: string, event: string): boolean {
  const [g, e] = splitEvent(event);
  return pathExists(join(root, 'events', g, e, 'format'));
}

/** Reads and parses the event's format file. */
export function readEventFormat(root: string, event: string): EventFormat {
  const [g, e] = splitEvent(event);
  const path = join(root, 'events', g, e, 'format');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw fsFailure(err, 'read', path);
  }
  return parseEventFormat(text);
}

export class TracefsInstance {
  /** instances/<name> under the tracefs root. */
  readonly path: string;
  /** True when the instance existed before (left by a previous agent) and was reused. */
  readonly recovered: boolean;
  /** The trace clock in effect. */
  readonly clock: string;

  private constructor(
    readonly root: string,
    readonly name: string,
    recovered: boolean,
    clock: string,
  ) {
    this.path = join(root, 'instances', name);
    this.recovered = recovered;
    this.clock = clock;
  }

  /** Creates (or recovers) and configures the instance. Events are enabled separately. */
  static open(root: string, settings: InstanceSettings): TracefsInstance {
    if (!/^[A-Za-z0-9_.-]+$/.test(settings.name)) {
      throw new TracefsError('IO', `bad instance name "${settings.name}"`, 'use letters, digits, _ . -');
    }
    const path = join(root, 'instances', settings.name);
    let recovered = false;
    try {
      mkdirSync(path);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw fsFailure(err, 'create tracefs instance', path);
      recovered = true;
    }
    const write = (file: string, value: string | number) => writeAttr(join(path, file), String(value));
    const wanted = settings.clock ?? 'mono';
    const current = selectedClock(readAttr(join(path, 'trace_clock')));
    if (current !== wanted) write('trace_clock', wanted); // clears the buffer: only when needed
    if (settings.subbufSizeKb !== undefined) {
      const file = join(path, 'buffer_subbuf_size_kb');
      if (!pathExists(file)) {
        throw new TracefsError(
          'IO',
          'this kernel cannot change the sub-buffer size (no buffer_subbuf_size_kb)',
          'sub-buffer sizes other than the page size need Linux 6.8 or later; leave the setting unset',
        );
      }
      if (Number(readAttr(file)) !== settings.subbufSizeKb) setSubbufSize(file, settings.subbufSizeKb);
    }
    // Resizing can drop records a recovered instance still holds: only when it changes.
    const size = settings.bufferSizeKb;
    if (size !== undefined && Number.parseInt(readAttr(join(path, 'buffer_size_kb')), 10) !== size) {
      write('buffer_size_kb', size);
    }
    if (settings.bufferPercent !== undefined) write('buffer_percent', settings.bufferPercent);
    return new TracefsInstance(root, settings.name, recovered, wanted);
  }

  /** Enables exactly `events` in this instance (others are disabled) and turns tracing on. */
  enableOnly(events: readonly string[]): void {
    const want = new Set(events.map((e) => splitEvent(e).join(':')));
    for (const line of readAttr(join(this.path, 'set_event')).split('\n')) {
      const ev = line.trim();
      if (ev && !want.has(ev)) writeAttr(this.eventFile(ev, 'enable'), '0');
    }
    for (const ev of want) writeAttr(this.eventFile(ev, 'enable'), '1');
    writeAttr(join(this.path, 'tracing_on'), '1');
  }

  /** The instance's copy of an event file, e.g. events/<group>/<event>/enable. */
  eventFile(event: string, file: string): string {
    const [g, e] = splitEvent(event);
    return join(this.path, 'events', g, e, file);
  }

  /** Sub-buffer layout of this instance's ring buffer. */
  pageLayout(): PageLayout {
    const layout = parseHeaderPage(readAttr(join(this.path, 'events', 'header_page')));
    const subbuf = join(this.path, 'buffer_subbuf_size_kb');
    if (pathExists(subbuf)) {
      const kb = Number(readAttr(subbuf));
      if (kb > 0 && kb * 1024 !== layout.subbufSize) return withDataSize(layout, kb * 1024);
    }
    return layout;
  }

  /** CPU numbers that have a per_cpu directory (possible CPUs). */
  cpus(): number[] {
    const dir = join(this.path, 'per_cpu');
    try {
      return readdirSync(dir)
        .map((d) => /^cpu(\d+)$/.exec(d))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1]))
        .sort((a, b) => a - b);
    } catch (err) {
      throw fsFailure(err, 'list', dir);
    }
  }

  /** Path of a per-CPU file, e.g. cpuFile(3, 'trace_pipe_raw'). */
  cpuFile(cpu: number, file: string): string {
    return join(this.path, 'per_cpu', `cpu${cpu}`, file);
  }

  stats(cpu: number): CpuStats {
    return parseCpuStats(readAttr(this.cpuFile(cpu, 'stats')));
  }

  /**
   * Turns tracing off and removes the instance. Files of the instance must be closed first
   * (rmdir answers EBUSY while any is open); retried for up to ~1 s.
   */
  async remove(): Promise<void> {
    try {
      writeAttr(join(this.path, 'tracing_on'), '0');
      writeAttr(join(this.path, 'events', 'enable'), '0');
    } catch {
      // Removal below still frees everything; it reports the real problem if it fails.
    }
    for (let attempt = 0; ; attempt++) {
      try {
        rmdirSync(this.path);
        return;
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT') return;
        if (code !== 'EBUSY' || attempt >= 20) throw fsFailure(err, 'remove tracefs instance', this.path);
        await sleep(50);
      }
    }
  }
}

export function readAttr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw fsFailure(err, 'read', path);
  }
}

/**
 * Writes buffer_subbuf_size_kb. Some kernels refuse it with EPERM even to root whose other
 * tracefs writes succeed (seen in a VM whose processes lack CAP_SYS_RESOURCE): that refusal
 * gets its own message and hint instead of writeAttr's generic permission hint.
 */
function setSubbufSize(file: string, kb: number): void {
  try {
    writeAttr(file, String(kb));
  } catch (err) {
    if (!(err instanceof TracefsError) || err.code !== 'NOT_PERMITTED' || process.getuid?.() !== 0) throw err;
    throw new TracefsError(
      'NOT_PERMITTED',
      `the kernel refused a ${kb} KiB sub-buffer size (${file}: ${(err.cause as Error).message}), though this agent runs as root`,
      "leave the sub-buffer size unset to read with the kernel's page-sized sub-buffers; changing it can need capabilities (such as CAP_SYS_RESOURCE) this host withholds",
      { cause: err.cause },
    );
  }
}

export function writeAttr(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch (err) {
    throw fsFailure(err, `write "${value}" to`, path);
  }
}
