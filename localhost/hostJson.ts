/**
 * The parts of host.json the local host honours: the HTTP route prefix, the queue extension's options
 * (ECOSYSTEM.md §2.1, defaults from QueuesOptions.cs) and the optional `functions` allow-list.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { HostStartError } from './errors';
import { parseTimeSpan } from './timeSpan';

export type MessageEncoding = 'base64' | 'none';

export interface QueuesOptions {
  /** Messages fetched per poll (1-32). */
  readonly batchSize: number;
  /** A new batch is fetched only when at most this many messages are still being processed. */
  readonly newBatchThreshold: number;
  /** Upper bound of the polling back-off, in ms (at least 100). */
  readonly maxPollingIntervalMs: number;
  /** Delay before a failed message is visible again (the retry delay, not the lease), in ms. */
  readonly visibilityTimeoutMs: number;
  /** Attempts before a message moves to `<queue>-poison`. */
  readonly maxDequeueCount: number;
  /** How message bodies are encoded, for the trigger and for output bindings alike. */
  readonly messageEncoding: MessageEncoding;
}

export interface HostJson {
  /** `api` unless extensions.http.routePrefix says otherwise ('' means no prefix). */
  readonly routePrefix: string;
  readonly queues: QueuesOptions;
  /** host.json `functions`: when set, only these functions are loaded. */
  readonly functions: readonly string[] | undefined;
}

export function readHostJson(root: string): HostJson {
  const file = join(root, 'host.json');
  if (!existsSync(file)) {
    throw new HostStartError(`No host.json in ${root}: the Functions host needs one (at least {"version": "2.0"}).`);
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new HostStartError(`${file} is not valid JSON: ${(cause as Error).message}`);
  }
  return parseHostJson(json, file);
}

export function parseHostJson(json: unknown, file = 'host.json'): HostJson {
  const root = asObject(json, file, '');
  if (root.version !== '2.0') throw new HostStartError(`${file}: "version" must be "2.0".`);
  const extensions = asObject(root.extensions ?? {}, file, 'extensions');
  const http = asObject(extensions.http ?? {}, file, 'extensions.http');
  const queues = asObject(extensions.queues ?? {}, file, 'extensions.queues');

  let routePrefix = 'api';
  if (http.routePrefix !== undefined) {
    if (typeof http.routePrefix !== 'string')
      throw new HostStartError(`${file}: extensions.http.routePrefix must be a string.`);
    routePrefix = http.routePrefix.replace(/^\/+|\/+$/g, '');
  }

  const batchSize = integer(queues, 'batchSize', 16, 1, 32, file);
  const queueOptions: QueuesOptions = {
    batchSize,
    // QueuesOptions.cs: batchSize / 2 * processor count, unless set.
    newBatchThreshold: integer(
      queues,
      'newBatchThreshold',
      Math.floor(batchSize / 2) * availableParallelism(),
      0,
      Number.MAX_SAFE_INTEGER,
      file,
    ),
    maxPollingIntervalMs: duration(queues, 'maxPollingInterval', 60_000, 100, file),
    visibilityTimeoutMs: duration(queues, 'visibilityTimeout', 0, 0, file),
    maxDequeueCount: integer(queues, 'maxDequeueCount', 5, 1, Number.MAX_SAFE_INTEGER, file),
    messageEncoding: encoding(queues.messageEncoding, file),
  };

  let functions: string[] | undefined;
  if (root.functions !== undefined) {
    if (!Array.isArray(root.functions) || !root.functions.every((f) => typeof f === 'string')) {
      throw new HostStartError(`${file}: "functions" must be an array of function names.`);
    }
    functions = root.functions as string[];
  }
  return { routePrefix, queues: queueOptions, functions };
}

function asObject(value: unknown, file: string, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HostStartError(`${file}: ${path || 'the file'} must be a JSON object.`);
  }
  return value as Record<string, unknown>;
}

function integer(
  obj: Record<string, unknown>,
  name: string,
  fallback: number,
  min: number,
  max: number,
  file: string,
): number {
  const value = obj[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new HostStartError(`${file}: extensions.queues.${name} must be an integer from ${min} to ${max}.`);
  }
  return value;
}

function duration(obj: Record<string, unknown>, name: string, fallback: number, minMs: number, file: string): number {
  const value = obj[name];
  if (value === undefined) return fallback;
  const ms = typeof value === 'string' ? parseTimeSpan(value) : undefined;
  if (ms === undefined || ms < minMs) {
    throw new HostStartError(
      `${file}: extensions.queues.${name} must be a duration "hh:mm:ss" of at least ${minMs} ms (got ${JSON.stringify(value)}).`,
    );
  }
  return ms;
}

function encoding(value: unknown, file: string): MessageEncoding {
  if (value === undefined) return 'base64';
  if (typeof value === 'string' && /^(base64|none)$/i.test(value)) return value.toLowerCase() as MessageEncoding;
  throw new HostStartError(`${file}: extensions.queues.messageEncoding must be "base64" or "none".`);
}
