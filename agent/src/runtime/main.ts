// Shared process scaffolding for the daemons: --help, option errors with exit code 2,
// SIGINT/SIGTERM -> graceful stop (a second signal exits at once), fatal errors logged.

import { createLogger, type Logger } from './log';
import { helpText, OptionError, type Options, type Program, parseOptions, type Specs } from './options';

export interface Daemon {
  /** Stops gracefully; resolves to the exit code (default 0). */
  stop(): Promise<number | undefined | void>;
}

export function runMain<T extends Specs>(
  program: Program,
  specs: T,
  start: (o: Options<T>, positionals: string[], log: Logger) => Promise<Daemon | undefined>,
): void {
  let parsed: ReturnType<typeof parseOptions<T>>;
  try {
    parsed = parseOptions(program, specs);
  } catch (err) {
    if (!(err instanceof OptionError)) throw err;
    process.stderr.write(`${program.name}: ${err.message}\n`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(`${helpText(program, specs)}\n`);
    return;
  }
  const log = createLogger(program.name);
  start(parsed.options, parsed.positionals, log).then(
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
            log.error({ err: err.message }, 'error while stopping');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => onSignal('SIGINT'));
      process.on('SIGTERM', () => onSignal('SIGTERM'));
    },
    (err: Error) => {
      log.fatal({ err: err.message }, 'failed to start');
      process.stderr.write(`${program.name}: ${err.message}\n`);
      setTimeout(() => process.exit(1), 50);
    },
  );
}
