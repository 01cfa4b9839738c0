/**
 * `cse`: the operators' command-line tool. Works offline on files with a local JWK Set.
 *
 * Contract: every command exits 0 on success; on failure it prints ONE line to stderr and exits 2 for a usage
 * mistake (unknown or missing flag, bad range, unknown command) or 1 for anything else. No output file is left
 * behind by a failed command, and no line ever contains key material.
 */
import { isCseError } from '../shared/errors';
import { UsageError } from './args';
import { removeLiveTempFilesSync } from './atomicOutput';
import type { CliIo, Command } from './command';
import { decryptCommand } from './commands/decrypt';
import { decryptMessageCommand } from './commands/decryptMessage';
import { encryptCommand } from './commands/encrypt';
import { encryptMessageCommand } from './commands/encryptMessage';
import { redactSecrets } from './keyFile';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

const COMMANDS: readonly Command[] = [decryptCommand, encryptCommand, encryptMessageCommand, decryptMessageCommand];

/** Runs `cse` with the words after the program name; resolves to the process exit code. */
export async function main(argv: readonly string[], rawIo: CliIo = processIo()): Promise<number> {
  const io = redacting(rawIo);
  const [name, ...rest] = argv;
  if (name === undefined) return usageFailure(io, 'missing command');
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = rest[0] === undefined ? undefined : COMMANDS.find((c) => c.name === rest[0]);
    io.out(topic?.help ?? overallHelp());
    return EXIT_OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) return usageFailure(io, `unknown command ${JSON.stringify(name)}`);

  const removeSignalHandlers = cleanUpOnSignals();
  try {
    await command.execute(rest, io);
    return EXIT_OK;
  } catch (e) {
    if (e instanceof UsageError) return usageFailure(io, e.message, command.name);
    io.err(oneLine(`cse ${command.name}: ${describeFailure(e)}`));
    return EXIT_FAILURE;
  } finally {
    removeSignalHandlers();
  }
}

function usageFailure(io: CliIo, reason: string, command?: string): number {
  const prefix = command === undefined ? 'cse' : `cse ${command}`;
  io.err(oneLine(`${prefix}: ${reason} (see \`${prefix} --help\`)`));
  return EXIT_USAGE;
}

/** `Code: message` for library errors; errno code and message for file-system errors. Never a stack. */
function describeFailure(e: unknown): string {
  if (isCseError(e)) return `${e.code}: ${e.message}`;
  if (e instanceof Error) {
    const errno = (e as NodeJS.ErrnoException).code;
    // fs messages already start with the code ("ENOENT: no such file or directory, open 'x'")
    if (typeof errno === 'string' && e.message.startsWith(errno)) return e.message;
    return typeof errno === 'string' ? `${errno}: ${e.message}` : `${e.name}: ${e.message}`;
  }
  return String(e);
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** Every line passes through redactSecrets: a second line of defence, should a message ever quote a key file. */
function redacting(io: CliIo): CliIo {
  return { out: (line) => io.out(redactSecrets(line)), err: (line) => io.err(redactSecrets(line)) };
}

function processIo(): CliIo {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  };
}

/**
 * On Ctrl-C / SIGTERM, remove this run's temporary output files, then die of the same signal (the shell reports
 * 130 / 143). Re-raising instead of process.exit(): exit waits for libuv's thread pool, and a read blocked on a
 * FIFO or terminal would hold it forever.
 */
function cleanUpOnSignals(): () => void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const handler = (signal: NodeJS.Signals): void => {
    removeLiveTempFilesSync();
    for (const s of signals) process.removeListener(s, handler);
    process.kill(process.pid, signal);
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.removeListener(s, handler);
  };
}

function overallHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'cse: Azure Storage client-side encryption (format v2.0; v1.0 read with --allow-v1), offline on files.',
    '',
    'Usage:',
    ...COMMANDS.map((c) => `  ${c.usage}`),
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'JWKS is a JWK Set file: {"keys":[{"kid","kty":"oct","alg":"A256KW","k"} | {"kid","kty":"RSA",',
    '"alg":"RSA-OAEP"|"RSA-OAEP-256","n","e","d","p","q","dp","dq","qi"}]}.',
    'Outputs are written to a temporary file beside the target and renamed into place only on success.',
    'Exit status: 0 success, 1 failure (one line on stderr), 2 usage error. `cse <command> --help` for details.',
  ].join('\n');
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
