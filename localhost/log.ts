/**
 * The host's console output, in the shape Core Tools uses: `[timestamp] message`. Function logs
 * (`context.log`) and host events go through one logger so that tests can wait for lines in order.
 */
export type LogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical';

const rank: Record<LogLevel, number> = { trace: 0, debug: 1, information: 2, warning: 3, error: 4, critical: 5 };

export interface Logger {
  log(level: LogLevel, message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface LoggerOptions {
  /** Lowest level written (default `information`; `--verbose` makes it `debug`). */
  minLevel?: LogLevel;
  /** Where lines go (default: stdout, and stderr for warnings and errors). */
  write?: (level: LogLevel, line: string) => void;
}

function defaultWrite(level: LogLevel, line: string): void {
  if (rank[level] >= rank.warning) process.stderr.write(line + '\n');
  else process.stdout.write(line + '\n');
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = rank[options.minLevel ?? 'information'];
  const write = options.write ?? defaultWrite;
  const log = (level: LogLevel, message: string): void => {
    if (rank[level] < min) return;
    write(level, `[${new Date().toISOString()}] ${message}`);
  };
  return {
    log,
    debug: (m) => log('debug', m),
    info: (m) => log('information', m),
    warn: (m) => log('warning', m),
    error: (m) => log('error', m),
  };
}

/** Maps the worker's level names (`none` included) onto ours; unknown levels are information. */
export function toLogLevel(level: string): LogLevel | undefined {
  if (level === 'none') return undefined;
  return level in rank ? (level as LogLevel) : 'information';
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}
