// Real agent and collector processes for fault-injection tests: started from the compiled
// CLIs, their JSON logs kept for failure messages, killed however a test needs.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from './paths';

export class Proc {
  readonly child: ChildProcess;
  readonly log: string[] = [];
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    script: string,
    args: string[],
    env: Record<string, string> = {},
    /** Flags for node itself, e.g. --cpu-prof. */
    nodeArgs: string[] = [],
  ) {
    this.child = spawn(process.execPath, [...nodeArgs, join(repoRoot(), 'dist', script), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info', ...env },
    });
    for (const s of [this.child.stdout, this.child.stderr])
      s?.on('data', (d: Buffer) => this.log.push(...d.toString().split('\n').filter(Boolean)));
    this.exited = new Promise((r) => this.child.once('exit', (code) => r(code)));
  }

  /** Resolves once a log line matches; rejects after timeoutMs or if the process exits. */
  async waitForLog(re: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.log.find((l) => re.test(l));
      if (line) return line;
      if (this.child.exitCode !== null)
        throw new Error(`${this.name} exited (${this.child.exitCode}) before logging ${re}:\n${this.tail()}`);
      if (Date.now() > deadline)
        throw new Error(`${this.name}: no log line ${re} within ${timeoutMs} ms:\n${this.tail()}`);
      await sleep(50);
    }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill(signal);
    return this.exited;
  }

  tail(n = 30): string {
    return this.log.slice(-n).join('\n');
  }
}

export function collectorProc(
  name: string,
  o: { port: number; brokers: string[]; topic: string; extra?: string[] },
): Proc {
  return new Proc(name, 'collector/ingest/cli.js', [
    '--listen',
    `127.0.0.1:${o.port}`,
    '--http-listen',
    '',
    '--kafka-brokers',
    o.brokers.join(','),
    '--raw-topic',
    o.topic,
    '--topic-partitions',
    '1',
    ...(o.extra ?? []),
  ]);
}

export function agentProc(name: string, o: { collector: string; host: string; args: string[] }): Proc {
  return new Proc(name, 'agent/src/cli.js', [
    '--collector',
    o.collector,
    '--host',
    o.host,
    '--agent-id',
    `${o.host}-agent`,
    '--http-listen',
    '',
    ...o.args,
  ]);
}
