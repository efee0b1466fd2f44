// Shared process scaffolding for the programs: --help, usage errors (bad options, unknown
// commands) with exit code 2, SIGINT/SIGTERM -> graceful stop (a second signal exits at
// once), a fatal error logged once, with its stack, and exit code 1.

import { createLogger, type Logger } from './log';
import {
  helpText,
  OptionError,
  type Options,
  type Parsed,
  type Program,
  parseOptions,
  type Specs,
} from './options';

export interface Daemon {
  /** Stops gracefully; resolves to the exit code (default 0). */
  stop(): Promise<number | undefined> | Promise<void>;
}

function usageError(program: Program, err: OptionError): never {
  process.stderr.write(`${program.name}: ${err.message}\n`);
  process.exit(2);
}

/** Exits once the logger has written what it holds. */
function exitAfterLog(log: Logger, code: number): void {
  log.flush(() => process.exit(code));
  setTimeout(() => process.exit(code), 500).unref();
}

export function runMain<T extends Specs>(
  program: Program,
  specs: T,
  start: (
    o: Options<T>,
    positionals: string[],
    log: Logger,
    given: Parsed<T>['given'],
  ) => Promise<Daemon | undefined>,
): void {
  let parsed: Parsed<T>;
  try {
    parsed = parseOptions(program, specs);
  } catch (err) {
    if (!(err instanceof OptionError)) throw err;
    usageError(program, err);
  }
  if (parsed.help) {
    process.stdout.write(`${helpText(program, specs)}\n`);
    return;
  }
  const log = createLogger(program.name);
  start(parsed.options, parsed.positionals, log, parsed.given).then(
    (daemon) => {
      if (!daemon) return;
      let stopping = false;
      const onSignal = (sig: string) => {
        if (stopping) {
          log.warn({ signal: sig }, 'second signal: exiting now');
          process.exit(130);
        }
        stopping = true;
        log.info({ signal: sig }, 'stopping');
        daemon.stop().then(
          (code) => process.exit(code ?? 0),
          (err: Error) => {
            log.error({ err }, 'error while stopping');
            exitAfterLog(log, 1);
          },
        );
      };
      process.on('SIGINT', () => onSignal('SIGINT'));
      process.on('SIGTERM', () => onSignal('SIGTERM'));
    },
    (err: Error) => {
      if (err instanceof OptionError) usageError(program, err);
      log.fatal({ err }, 'failed to start');
      exitAfterLog(log, 1);
    },
  );
}
