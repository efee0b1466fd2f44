// Logs on stderr (stdout stays free for tables and dumps): JSON lines, or one human-readable
// line per record when stderr is a terminal (LOG_FORMAT=json|text overrides). Errors go under
// the key `err`, so pino's serializer keeps their type and stack.
import pino from 'pino';

export type Logger = pino.Logger;

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** One pino JSON record as a line for people: time, level, program, message, fields, stack. */
export function formatLogLine(json: string): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(json);
  } catch {
    return json;
  }
  const { level, time, pid: _pid, hostname: _host, name, msg, err, ...fields } = r;
  const at = new Date(Number(time)).toISOString().slice(11, 23);
  const rest = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  let line = `${at} ${LEVEL_NAMES[Number(level)] ?? level} ${name ?? ''}: ${msg ?? ''}${rest ? ` ${rest}` : ''}`;
  if (err && typeof err === 'object') {
    const e = err as { message?: string; stack?: string };
    line += `\n    ${(e.stack ?? e.message ?? JSON.stringify(err)).replace(/\n/g, '\n    ')}`;
  }
  return `${line}\n`;
}

function humanFormat(): boolean {
  const f = process.env.LOG_FORMAT;
  return f === 'text' || (f !== 'json' && process.stderr.isTTY === true);
}

export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  const options = { name, level, base: { pid: process.pid } };
  if (humanFormat()) return pino(options, { write: (s: string) => process.stderr.write(formatLogLine(s)) });
  return pino(options, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * A warning logged at most once per `everyMs`, with the batches and events summed since the
 * last line (for drops that may come thousands of times a second).
 */
export function rateLimitedWarn(
  log: Logger,
  message: string,
  everyMs = 10_000,
): (batches: number, events: number, fields: object) => void {
  let batches = 0;
  let events = 0;
  let at = 0;
  return (b, e, fields) => {
    batches += b;
    events += e;
    const now = Date.now();
    if (now - at < everyMs) return;
    log.warn({ batches, events, ...fields }, message);
    batches = 0;
    events = 0;
    at = now;
  };
}
