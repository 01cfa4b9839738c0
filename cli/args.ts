/**
 * Flag parsing for the `cse` commands, on top of node's `util.parseArgs` (strict: unknown flags, stray
 * positionals and missing values are errors). Every problem becomes a one-line UsageError (exit code 2).
 */
import { parseArgs } from 'node:util';

/** A mistake in how the command was invoked (as opposed to a failure while running it). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly required?: boolean;
  /** Placeholder shown in the usage line (string flags only). */
  readonly value?: string;
  readonly description: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/** The parsed flags: required string flags are `string`, optional ones `string | undefined`, booleans `boolean`. */
export type ParsedFlags<S extends FlagSpecs> = {
  [K in keyof S]: S[K]['type'] extends 'boolean'
    ? boolean
    : S[K]['required'] extends true
      ? string
      : string | undefined;
};

export type ParseResult<S extends FlagSpecs> =
  { readonly help: true } | { readonly help: false; readonly flags: ParsedFlags<S> };

/** Parses `args` (the words after the command name) against `specs`. `--help`/`-h` is always accepted. */
export function parseFlags<S extends FlagSpecs>(specs: S, args: readonly string[]): ParseResult<S> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, spec] of Object.entries(specs)) options[name] = { type: spec.type };

  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: joinDashValues(args, specs),
      options,
      strict: true,
      allowPositionals: false,
      tokens: true,
    });
  } catch (e) {
    throw new UsageError(describeParseError(e));
  }
  if (parsed.values.help === true) return { help: true };

  const seen = new Set<string>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} given more than once`);
    seen.add(token.name);
  }

  const flags: Record<string, string | boolean | undefined> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const value = parsed.values[name];
    if (spec.type === 'boolean') {
      flags[name] = value === true;
      continue;
    }
    if (value === undefined) {
      if (spec.required === true) throw new UsageError(`missing required flag --${name}`);
      flags[name] = undefined;
      continue;
    }
    if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} needs a non-empty value`);
    flags[name] = value;
  }
  return { help: false, flags: flags as ParsedFlags<S> };
}

/** The usage line of a command, e.g. `cse decrypt --keys JWKS ... [--range RANGE]`. */
export function usageLine(command: string, specs: FlagSpecs): string {
  const parts = Object.entries(specs).map(([name, spec]) => {
    const word = spec.type === 'boolean' ? `--${name}` : `--${name} ${spec.value ?? 'VALUE'}`;
    return spec.required === true ? word : `[${word}]`;
  });
  return `cse ${command} ${parts.join(' ')}`;
}

/** The flag table printed by `cse <command> --help`. */
export function flagHelp(specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const left = spec.type === 'boolean' ? `--${name}` : `--${name} ${spec.value ?? 'VALUE'}`;
    return `  ${left.padEnd(24)} ${spec.description}${spec.required === true ? '' : ' (optional)'}`;
  });
  return rows.join('\n');
}

/**
 * `--range -500` (the last 500 bytes) is how people write a suffix range, but parseArgs refuses a value that
 * starts with a dash as ambiguous. A string flag followed by `-<digits>` is therefore joined into `--flag=-<digits>`;
 * no flag takes a negative number, and a file name like `-x` still needs the `--in=-x` form.
 */
function joinDashValues(args: readonly string[], specs: FlagSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (name !== undefined && specs[name]?.type === 'string' && next !== undefined && /^-\d+$/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

function describeParseError(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  // The advice parseArgs appends about positionals after `--` does not apply: no command takes positionals.
  const text = (e as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? message.split('. ')[0]! : message;
  return text.replace(/\s*\n\s*/g, ' ').replace(/\.$/, '');
}
