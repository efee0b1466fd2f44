// Command-line options declared once: each option has a type, a default, an environment
// variable and a help line. Values come from (highest first) flags, environment, a JSON
// config file (--config), defaults. Bad values stop the program with a message that names
// the option and says what is expected.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'number' | 'boolean' | 'list';
  default: string | number | boolean | readonly string[];
  help: string;
  /** Lowest accepted number. */
  min?: number;
  /** Highest accepted number. */
  max?: number;
  /** Only whole numbers (counts). */
  integer?: boolean;
  /** Accepted string values. */
  choices?: readonly string[];
}

export type Specs = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S['type'] extends 'number'
  ? number
  : S['type'] extends 'boolean'
    ? boolean
    : S['type'] extends 'list'
      ? string[]
      : string;
export type Options<T extends Specs> = { [K in keyof T]: ValueOf<T[K]> };

/** A usage error (bad option value, unknown option or command): the program exits with code 2. */
export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

export interface Program {
  /** Executable name, e.g. "smmu-agent". */
  name: string;
  /** Prefix of environment variables, e.g. "SMMU_AGENT_". */
  envPrefix: string;
  /** One paragraph shown by --help. */
  summary: string;
  /** Positional arguments (commands), shown by --help. */
  usage?: string;
}

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (p: Program, k: string) => p.envPrefix + kebab(k).replace(/-/g, '_').toUpperCase();

export function helpText<T extends Specs>(p: Program, specs: T): string {
  const lines = [`Usage: ${p.name} ${p.usage ?? '[options]'}`, '', p.summary, '', 'Options:'];
  for (const [k, s] of Object.entries(specs)) {
    const flag =
      s.type === 'boolean' ? `--${kebab(k)}` : `--${kebab(k)} <${s.type === 'list' ? 'a,b' : s.type}>`;
    const def = Array.isArray(s.default) ? s.default.join(',') : String(s.default);
    const extra = s.choices ? ` (one of: ${s.choices.join(', ')})` : '';
    lines.push(`  ${flag.padEnd(34)} ${s.help}${extra}`);
    lines.push(`  ${''.padEnd(34)} env ${envName(p, k)}, default ${def === '' ? '(none)' : def}`);
  }
  lines.push(
    `  ${'--config <file.json>'.padEnd(34)} JSON file with any of the options above (camelCase keys)`,
  );
  lines.push(`  ${'--help'.padEnd(34)} show this help`);
  return lines.join('\n');
}

function coerce(
  spec: OptionSpec,
  key: string,
  raw: unknown,
  from: string,
): string | number | boolean | string[] {
  const where = `option --${kebab(key)} (${from})`;
  switch (spec.type) {
    case 'number': {
      const n = typeof raw === 'number' ? raw : Number(raw);
      if (typeof raw === 'boolean' || raw === '' || !Number.isFinite(n)) {
        throw new OptionError(`${where}: expected a number, got ${JSON.stringify(raw)}`);
      }
      if (spec.integer && !Number.isInteger(n))
        throw new OptionError(`${where}: expected a whole number, got ${n}`);
      if (spec.min !== undefined && n < spec.min)
        throw new OptionError(`${where}: must be >= ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max)
        throw new OptionError(`${where}: must be <= ${spec.max}, got ${n}`);
      return n;
    }
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new OptionError(`${where}: expected true or false, got ${JSON.stringify(raw)}`);
    case 'list':
      if (Array.isArray(raw)) return raw.map(String);
      return String(raw)
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
    default: {
      const s = String(raw);
      if (spec.choices && !spec.choices.includes(s)) {
        throw new OptionError(
          `${where}: expected one of ${spec.choices.join(', ')}, got ${JSON.stringify(s)}`,
        );
      }
      return s;
    }
  }
}

export interface Parsed<T extends Specs> {
  options: Options<T>;
  /** Options set by a flag, the environment or the config file (not left at their default). */
  given: ReadonlySet<keyof T & string>;
  positionals: string[];
  help: boolean;
}

export function parseOptions<T extends Specs>(
  p: Program,
  specs: T,
  argv: string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): Parsed<T> {
  const flagDefs: Record<string, { type: 'string' | 'boolean' }> = {
    config: { type: 'string' },
    help: { type: 'boolean' },
  };
  for (const [k, s] of Object.entries(specs))
    flagDefs[kebab(k)] = { type: s.type === 'boolean' ? 'boolean' : 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options: flagDefs, allowPositionals: true, strict: true });
  } catch (err) {
    // Node's first sentence says what is wrong; the rest is advice about '--' that rarely applies.
    throw new OptionError(`${(err as Error).message.split('. ')[0]}; see ${p.name} --help`);
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>;
  let file: Record<string, unknown> = {};
  const configPath = (flags.config as string | undefined) ?? env[`${p.envPrefix}CONFIG`];
  if (configPath) {
    try {
      file = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (err) {
      throw new OptionError(`config file ${configPath}: ${(err as Error).message}`);
    }
    if (typeof file !== 'object' || file === null || Array.isArray(file)) {
      throw new OptionError(`config file ${configPath}: expected a JSON object`);
    }
    for (const k of Object.keys(file)) {
      if (!(k in specs))
        throw new OptionError(`config file ${configPath}: unknown option "${k}"; see ${p.name} --help`);
    }
  }
  const out: Record<string, unknown> = {};
  const given = new Set<keyof T & string>();
  for (const [k, s] of Object.entries(specs)) {
    const e = env[envName(p, k)];
    if (flags[kebab(k)] !== undefined) out[k] = coerce(s, k, flags[kebab(k)], 'flag');
    else if (e !== undefined) out[k] = coerce(s, k, e, `env ${envName(p, k)}`);
    else if (k in file) out[k] = coerce(s, k, file[k], `config ${configPath}`);
    else {
      out[k] = s.default;
      continue;
    }
    given.add(k);
  }
  return {
    options: out as Options<T>,
    given,
    positionals: parsed.positionals,
    help: flags.help === true,
  };
}

/**
 * A program's config: its defaults with every option of the same name taken from the options,
 * so a config field is declared once (type and default) and never copied by hand.
 */
export function overlay<C extends object>(defaults: C, options: object): C {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [k, v] of Object.entries(options)) if (k in out) out[k] = v;
  return out as C;
}
