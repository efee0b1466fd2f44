// Kernel-side test fixtures: tracefs, the uprobe stand-in for arm_smmu_v3:smmu_evtq_event
// (test/fixtures/uprobe/emit.c) and the tracefs instances tests create. Everything created
// is registered for removal, which runs on cleanup(), and also on process exit and on
// SIGINT/SIGTERM so that a failing or interrupted test leaves nothing behind.
import { execFile, execFileSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './paths';

const run = promisify(execFile);
const DEFAULT_ROOT = '/sys/kernel/tracing';

const undo: { what: string; fn: () => void }[] = [];
let hooked = false;

function register(what: string, fn: () => void): void {
  if (!hooked) {
    hooked = true;
    process.on('exit', cleanup);
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        cleanup();
        process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
      });
    }
  }
  undo.push({ what, fn });
}

/** Removes everything registered, newest first (instances, then probes, then the mount). */
export function cleanup(): void {
  while (undo.length > 0) {
    const u = undo.pop();
    try {
      u?.fn();
    } catch (err) {
      process.stderr.write(`cleanup of ${u?.what} failed: ${String(err)}\n`);
    }
  }
}

/** A suffix unique to this process and call, for event and instance names. */
let counter = 0;
export function uniqueSuffix(): string {
  return `${process.pid}_${++counter}_${Math.floor(Math.random() * 1e6)}`;
}

/** The tracefs root, mounted (and registered for unmounting) when it was not. */
export function ensureTracefs(root = DEFAULT_ROOT): string {
  if (existsSync(join(root, 'events', 'header_page'))) return root;
  execFileSync('mount', ['-t', 'tracefs', 'nodev', root]);
  register(`tracefs mount at ${root}`, () => execFileSync('umount', [root]));
  return root;
}

/** Compiles emit.c into a temporary directory (removed on cleanup); returns the binary. */
export function buildEmitter(): string {
  const dir = mkdtempSync(join(tmpdir(), 'smmu-uprobe-'));
  register(`emitter dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'emit');
  execFileSync('gcc', ['-O2', '-o', bin, join(repoRoot(), 'test', 'fixtures', 'uprobe', 'emit.c')]);
  return bin;
}

/** File offset of `symbol` in an ELF binary: its address within the LOAD segment holding it. */
export function symbolFileOffset(binary: string, symbol: string): number {
  const nm = execFileSync('nm', [binary], { encoding: 'utf8' });
  const m = new RegExp(`^([0-9a-f]+) [Tt] ${symbol}$`, 'm').exec(nm);
  if (!m) throw new Error(`${symbol} not in ${binary}`);
  const addr = Number.parseInt(m[1], 16);
  const headers = execFileSync('readelf', ['-lW', binary], { encoding: 'utf8' });
  for (const line of headers.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] !== 'LOAD') continue;
    const [off, vaddr, , , memsz] = f.slice(1, 6).map((x) => Number.parseInt(x, 16));
    if (addr >= vaddr && addr < vaddr + memsz) return addr - vaddr + off;
  }
  throw new Error(`${symbol} at 0x${addr.toString(16)} is in no LOAD segment of ${binary}`);
}

/**
 * Defines `event` ("group:name") as a uprobe on emit's smmu_evtq_record with the fields of
 * the proposed tracepoint: evt0..evt3 and the SMMU name string `iommu`.
 */
export function addSmmuUprobe(root: string, binary: string, event: string): string {
  const [group, name] = event.split(':');
  const offset = symbolFileOffset(binary, 'smmu_evtq_record');
  const args =
    process.arch === 'arm64'
      ? 'evt0=%x0:x64 evt1=%x1:x64 evt2=%x2:x64 evt3=%x3:x64 iommu=+0(%x4):string'
      : 'evt0=%di:x64 evt1=%si:x64 evt2=%dx:x64 evt3=%cx:x64 iommu=+0(%r8):string';
  const file = join(root, 'uprobe_events');
  // Append: opening uprobe_events with O_TRUNC would delete every uprobe on the machine.
  appendFileSync(file, `p:${group}/${name} ${binary}:0x${offset.toString(16)} ${args}\n`);
  register(`uprobe ${event}`, () => {
    if (readFileSync(file, 'utf8').includes(`p:${group}/${name} `))
      appendFileSync(file, `-:${group}/${name}\n`);
  });
  return event;
}

/** subbufSizeRefusal's answers by tracefs root: a kernel answers the same every time. */
const subbufProbes = new Map<string, string | undefined>();

/**
 * Why this kernel will not let tests choose a sub-buffer size, or undefined when it will: no
 * buffer_subbuf_size_kb (before Linux 6.8), or a write to it refused (EPERM on some hosts, even
 * to root). Tried once per root on a scratch instance, removed again.
 */
export function subbufSizeRefusal(root: string): string | undefined {
  if (!subbufProbes.has(root)) subbufProbes.set(root, probeSubbufSize(root));
  return subbufProbes.get(root);
}

function probeSubbufSize(root: string): string | undefined {
  if (!existsSync(join(root, 'buffer_subbuf_size_kb')))
    return 'this kernel has no buffer_subbuf_size_kb (one sub-buffer size only)';
  const path = join(root, 'instances', trackInstance(root, `smmu-fleet-subbuf-probe-${uniqueSuffix()}`));
  mkdirSync(path);
  try {
    writeFileSync(join(path, 'buffer_subbuf_size_kb'), '8');
    return undefined;
  } catch (err) {
    return `the kernel refuses to change the sub-buffer size here (${(err as Error).message})`;
  } finally {
    rmdirSync(path);
  }
}

/** Registers an instance name for removal (if it still exists) on cleanup. */
export function trackInstance(root: string, name: string): string {
  const path = join(root, 'instances', name);
  register(`instance ${name}`, () => {
    if (!existsSync(path)) return;
    writeFileSync(join(path, 'tracing_on'), '0');
    writeFileSync(join(path, 'events', 'enable'), '0');
    rmdirSync(path);
  });
  return name;
}

export interface EmitOptions {
  count: number;
  /** Comma-separated SMMU names used round-robin. */
  names: string;
  gapUs?: number;
  seed?: bigint;
  /** Pin the emitter to this CPU. */
  cpu?: number;
}

/** Runs the emitter to completion. */
export async function emit(binary: string, o: EmitOptions): Promise<void> {
  const args = [String(o.count), o.names, String(o.gapUs ?? 0), `0x${(o.seed ?? 0n).toString(16)}`];
  if (o.cpu !== undefined) await run('taskset', ['-c', String(o.cpu), binary, ...args], { timeout: 60_000 });
  else await run(binary, args, { timeout: 60_000 });
}
