#!/usr/bin/env node
/**
 * `npm start`: the local Functions host.
 *
 *   node dist/localhost/main.js [--root <dir>] [--main <glob>] [--verbose]
 *
 *   --root     the app root (host.json, package.json, local.settings.json); default: the current directory
 *   --main     the app's files, overriding package.json "main" (also LOCALHOST_APP_MAIN)
 *   --verbose  debug logs (also LOCALHOST_VERBOSE=1)
 *   PORT       HTTP port (default 7071; 0 picks a free one)
 *
 * Ctrl-C or SIGTERM stops it cleanly; a second Ctrl-C exits at once.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HostStartError } from './errors';
import { startHost, type RunningHost } from './host';
import { createLogger, errorMessage } from './log';

const DEFAULT_PORT = 7071;

function parsePort(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return DEFAULT_PORT;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HostStartError(`PORT must be a port number from 0 to 65535 (got "${text}").`);
  }
  return port;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: 'string' },
      main: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node dist/localhost/main.js [--root <dir>] [--main <glob>] [--verbose]\n');
    return;
  }
  const verbose = values.verbose || process.env.LOCALHOST_VERBOSE === '1';
  const logger = createLogger({ minLevel: verbose ? 'debug' : 'information' });

  let host: RunningHost | undefined;
  let stopping = false;
  const stop = (why: string): void => {
    if (stopping) {
      logger.warn('Stopping now.');
      process.exit(130);
    }
    stopping = true;
    logger.info(`${why}: stopping (Ctrl-C again to exit at once)...`);
    if (!host) return; // still starting: stopped as soon as start-up ends
    void (async () => {
      try {
        await host!.stop();
        logger.info('Local host stopped.');
        process.exit(0);
      } catch (error) {
        logger.error(errorMessage(error));
        process.exit(1);
      }
    })();
  };
  // A promise the app forgot to handle is logged rather than ending the host: the Functions host restarts a
  // crashed worker, but nothing would restart this one (and an uncaught exception still ends it, loudly).
  process.on('unhandledRejection', (reason) => logger.error(`Unhandled promise rejection: ${errorMessage(reason)}`));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Started by a test helper with an IPC channel: its end means the parent is gone, so stop too.
  if (process.send) {
    process.once('disconnect', () => stop('parent exited'));
    process.channel?.unref();
  }

  try {
    host = await startHost({
      root: resolve(values.root ?? process.cwd()),
      main: values.main ?? (process.env.LOCALHOST_APP_MAIN || undefined),
      port: parsePort(process.env.PORT),
      env: process.env,
      logger,
    });
  } catch (error) {
    if (error instanceof HostStartError) logger.error(`Local host cannot start: ${error.message}`);
    else logger.error(`Local host cannot start: ${errorMessage(error)}`);
    process.exit(1);
  }
  if (stopping) {
    // A signal arrived during start-up: it is handled now that there is something to stop.
    await host.stop();
    process.exit(0);
  }
}

void main();
