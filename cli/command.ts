/**
 * The shape shared by every `cse` command: its flags (parsed by args.ts), its help text, and what it does.
 */
import { flagHelp, parseFlags, usageLine, type FlagSpecs, type ParsedFlags } from './args';

/** Where a command writes its (non-secret) report lines. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  /** Full help for `cse <name> --help`. */
  readonly help: string;
  /** Parses the flags and runs; throws UsageError for invocation mistakes, anything else for failures. */
  execute(args: readonly string[], io: CliIo): Promise<void>;
}

export interface CommandDefinition<S extends FlagSpecs> {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Paragraphs after the usage line in `--help`. */
  readonly description: string;
  readonly flags: S;
  run(flags: ParsedFlags<S>, io: CliIo): Promise<void>;
}

export function defineCommand<S extends FlagSpecs>(def: CommandDefinition<S>): Command {
  const usage = usageLine(def.name, def.flags);
  return {
    name: def.name,
    summary: def.summary,
    usage,
    help: `Usage: ${usage}\n\n${def.description}\n\nFlags:\n${flagHelp(def.flags)}`,
    async execute(args, io) {
      const parsed = parseFlags(def.flags, args);
      if (parsed.help) {
        io.out(this.help);
        return;
      }
      await def.run(parsed.flags, io);
    },
  };
}
