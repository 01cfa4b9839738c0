/**
 * The local Functions host: loads the app's real `app.*` registrations through the `@azure/functions-core` shim
 * and serves them over HTTP, queues and timers with the Functions host's semantics, on Azurite or any storage
 * account named by `AzureWebJobsStorage`. `main.ts` is the command line; this module is the host itself.
 */
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { loadApp } from './appLoader';
import { displayPath } from './appFiles';
import { startAzurite, type RunningAzurite } from './azurite';
import type { RegisteredFunction } from './coreApi';
import { devKeyRingPath, ensureDevelopmentKeyRing } from './devKeys';
import { HostStartError } from './errors';
import { readHostJson } from './hostJson';
import { readFunctionKeys } from './http/functionKeys';
import { HttpFrontEnd, type HttpFunction } from './http/httpFrontEnd';
import { Invoker, type InvocationOutcome } from './invoker';
import { errorMessage, type Logger } from './log';
import { OutputBindings, StorageAccounts, type FunctionOutputs } from './outputBindings';
import type { QueueListener } from './queues/queueListener';
import { applyLocalSettings, isConfigured, readLocalSettings, type Settings } from './settings';
import { DEFAULT_CONNECTION, probeStorageAccount } from './storage';
import { ScheduleMonitor } from './timers/scheduleMonitor';
import { bindTriggers, type Triggers } from './triggers';

/** The lease of a received queue message in the Functions host; renewed at half while the function runs. */
export const DEFAULT_QUEUE_LEASE_SECONDS = 600;
const DEFAULT_SHUTDOWN_SECONDS = 10;

export interface HostOptions {
  /** The app root: host.json, package.json, local.settings.json, and `.local/` for Azurite data and dev keys. */
  readonly root: string;
  /** Overrides package.json `main` (a glob, relative to root or absolute). */
  readonly main?: string;
  /** HTTP port (0 picks a free one). */
  readonly port: number;
  /** Interface to listen on (default loopback). */
  readonly listenHost?: string;
  /** The environment the app sees; local.settings.json Values and the dev key settings are added to it. */
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
}

export interface RunningHost {
  /** e.g. `http://localhost:7071`. */
  readonly url: string;
  readonly port: number;
  readonly functionNames: readonly string[];
  /** The AzureWebJobsStorage connection string in use. */
  readonly connectionString: string;
  /** Set when the host started Azurite itself. */
  readonly azurite: RunningAzurite | undefined;
  /**
   * Stops cleanly: no new requests or messages; running invocations get `LOCALHOST_SHUTDOWN_TIMEOUT_SECONDS`
   * (default 10) to finish, after which their queue messages are released for redelivery; Azurite stops.
   */
  stop(): Promise<void>;
}

/** What to undo on stop (or after a failed start), last started first. */
class Cleanups {
  readonly #steps: (() => Promise<void>)[] = [];
  readonly #logger: Logger;
  #running: Promise<void> | undefined;
  constructor(logger: Logger) {
    this.#logger = logger;
  }
  add(step: () => Promise<void>): void {
    this.#steps.push(step);
  }
  run(): Promise<void> {
    this.#running ??= (async () => {
      for (const step of this.#steps.reverse()) await step().catch((e) => this.#logger.error(errorMessage(e)));
    })();
    return this.#running;
  }
}

export async function startHost(options: HostOptions): Promise<RunningHost> {
  const cleanups = new Cleanups(options.logger);
  try {
    return await start(options, cleanups);
  } catch (error) {
    await cleanups.run();
    throw error;
  }
}

async function start(options: HostOptions, cleanups: Cleanups): Promise<RunningHost> {
  const { root, env, logger } = options;
  const listenHost = options.listenHost ?? '127.0.0.1';
  const applied = applyLocalSettings(env, readLocalSettings(root));
  if (applied.length > 0) logger.debug(`Settings from local.settings.json: ${applied.join(', ')}`);
  const settings: Settings = env;
  const hostJson = readHostJson(root);
  const leaseSeconds = integerSetting(
    settings,
    'LOCALHOST_QUEUE_LEASE_SECONDS',
    DEFAULT_QUEUE_LEASE_SECONDS,
    1,
    604800,
  );
  const shutdownMs =
    1000 * integerSetting(settings, 'LOCALHOST_SHUTDOWN_TIMEOUT_SECONDS', DEFAULT_SHUTDOWN_SECONDS, 0, 3600);
  // A port in use is found before anything is started (listening proper happens once the app is loaded).
  await ensurePortFree(options.port, listenHost);

  const azurite = await startStorage(root, env, logger, cleanups);
  const accounts = new StorageAccounts(settings);
  const hostStorage = accounts.get(DEFAULT_CONNECTION);
  await probeStorageAccount(hostStorage);
  useDevelopmentKeyIfNoKey(root, env, logger);

  const { registry, functions } = await loadApp(root, options.main, hostJson, logger);
  const invoker = new Invoker(registry, logger);
  const invoke = invoker.invoke.bind(invoker);
  const queueListeners: QueueListener[] = []; // filled once the triggers are bound
  const outputs = new OutputBindings(settings, accounts, hostJson.queues.messageEncoding, (account, queueName) => {
    for (const l of queueListeners) if (l.watches(account, queueName)) l.notify();
  });
  const plans = new Map<RegisteredFunction, FunctionOutputs>(functions.map((fn) => [fn, outputs.plan(fn)]));
  const completeOutputs = (fn: RegisteredFunction, outcome: InvocationOutcome): Promise<void> =>
    outputs.flush(plans.get(fn) ?? { queues: [] }, outcome.response);
  const triggers = bindTriggers(functions, {
    settings,
    hostJson,
    accounts,
    monitor: new ScheduleMonitor(
      hostStorage.blobService.getContainerClient('azure-webjobs-hosts'),
      hostId(settings, root),
      logger,
    ),
    leaseSeconds,
    invoke,
    completeOutputs,
    logger,
  });
  queueListeners.push(...triggers.queues);
  for (const account of accounts.all()) if (account !== hostStorage) await probeStorageAccount(account);

  // Streaming: the library starts its HTTP proxy when asked for its capabilities (which also locks app.setup).
  const capabilities = (await registry.programmingModel?.getCapabilities?.({})) ?? {};
  await invoker.runAppHooks('appStart', root);
  cleanups.add(() => invoker.runAppHooks('appTerminate', root)); // after everything added below has stopped

  const frontEnd = new HttpFrontEnd({
    functions: triggers.http,
    routePrefix: hostJson.routePrefix,
    keys: readFunctionKeys(settings),
    streamUri: capabilities.HttpUri,
    invoke,
    completeOutputs,
    logger,
  });
  const port = await frontEnd.listen(options.port, listenHost);
  const { queues, timers } = triggers;
  // On stop, HTTP, queues and timers wind down together, sharing one grace period.
  cleanups.add(async () => {
    await Promise.all([
      frontEnd.close(shutdownMs),
      ...queues.map((l) => l.stop(shutdownMs)),
      ...timers.map((t) => t.stop(shutdownMs)),
    ]);
  });
  for (const l of queues) l.start();
  for (const t of timers) await t.start();

  const url = `http://localhost:${port}`;
  printFunctions(logger, url, hostJson.routePrefix, triggers, leaseSeconds);
  const example = exampleUrl(url, hostJson.routePrefix, triggers.http);
  logger.info(`Local host ready at ${url} (${functions.length} functions). Try: curl ${example}`);
  return {
    url,
    port,
    functionNames: functions.map((f) => f.metadata.name),
    connectionString: hostStorage.connectionString,
    azurite,
    stop: () => cleanups.run(),
  };
}

/** Uses AzureWebJobsStorage if set; otherwise starts Azurite with its data in `.local/azurite` and sets it. */
async function startStorage(
  root: string,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  cleanups: Cleanups,
): Promise<RunningAzurite | undefined> {
  if (isConfigured(env, DEFAULT_CONNECTION)) return undefined;
  if (Object.keys(env).some((k) => k.startsWith(`${DEFAULT_CONNECTION}__`))) {
    throw new HostStartError(
      'AzureWebJobsStorage is configured in the identity-based form (AzureWebJobsStorage__...), which the local ' +
        'host does not support. Unset those settings to use an embedded Azurite, or set AzureWebJobsStorage to ' +
        'a connection string.',
    );
  }
  const location = join(root, '.local', 'azurite');
  const azurite = await startAzurite({ location });
  cleanups.add(() => azurite.stop());
  env[DEFAULT_CONNECTION] = azurite.connectionString;
  logger.info(
    `Started Azurite (pid ${azurite.pid}), data in ${displayPath(root, location)}. ` +
      `AzureWebJobsStorage=${azurite.connectionString}`,
  );
  return azurite;
}

/** Without CSE_KEY_ID, the app gets the development key ring (created on first start). Never logs the key. */
function useDevelopmentKeyIfNoKey(root: string, env: NodeJS.ProcessEnv, logger: Logger): void {
  if (isConfigured(env, 'CSE_KEY_ID')) return;
  const ring = ensureDevelopmentKeyRing(root);
  if (isConfigured(env, 'CSE_LOCAL_KEYS') && env.CSE_LOCAL_KEYS !== ring.file) {
    logger.warn(
      `CSE_KEY_ID is not set, so CSE_LOCAL_KEYS (${env.CSE_LOCAL_KEYS}) is replaced by the development key ring.`,
    );
  }
  env.CSE_LOCAL_KEYS = ring.file;
  env.CSE_KEY_ID = ring.keyId;
  logger.info(
    `CSE_KEY_ID is not set: using the development key '${ring.keyId}' from ${displayPath(root, devKeyRingPath(root))}` +
      `${ring.created ? ' (created now)' : ''}. Data written with it cannot be read without that file; keep it, ` +
      'and never use it outside local development.',
  );
}

function ensurePortFree(port: number, host: string): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(new HostStartError(`Port ${port} is already in use on ${host}; set PORT to use another port.`));
      } else if (error.code === 'EACCES') {
        reject(new HostStartError(`Not allowed to listen on port ${port} (${host}); set PORT to another port.`));
      } else reject(error);
    });
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

function integerSetting(settings: Settings, name: string, fallback: number, min: number, max: number): number {
  const text = settings[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new HostStartError(`${name} must be a whole number from ${min} to ${max} (got "${text}").`);
  }
  return value;
}

/**
 * The host id, used in the schedule status path. Azure derives it from the app name; locally it is
 * `AzureFunctionsWebHost__hostid` if set, else the app folder's name (lower-case letters, digits, dashes).
 */
function hostId(settings: Settings, root: string): string {
  const configured = settings.AzureFunctionsWebHost__hostid?.trim();
  if (configured) return configured.toLowerCase();
  const derived = basename(root)
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '')
    .slice(0, 32)
    .replace(/^-+|-+$/g, '');
  return derived || 'localhost';
}

function routeUrl(url: string, prefix: string, template: string): string {
  const path = [prefix, template.replace(/^\/+/, '')].filter((p) => p !== '').join('/');
  return `${url}/${path}`;
}

function exampleUrl(url: string, prefix: string, httpFunctions: readonly HttpFunction[]): string {
  const simple = httpFunctions.find((h) => h.methods.has('GET') && !h.route.template.includes('{'));
  return simple ? routeUrl(url, prefix, simple.route.template) : `${url}/`;
}

function printFunctions(logger: Logger, url: string, prefix: string, triggers: Triggers, leaseSeconds: number): void {
  const lines: string[] = [];
  for (const h of triggers.http) {
    lines.push(`  ${h.fn.metadata.name}: [${[...h.methods].join(',')}] ${routeUrl(url, prefix, h.route.template)}`);
  }
  for (const q of triggers.queues) lines.push(`  ${q.functionName}: queueTrigger (queue '${q.queueName}')`);
  for (const t of triggers.timers) lines.push(`  ${t.functionName}: timerTrigger (schedule '${t.scheduleText}')`);
  if (lines.length > 0) logger.info(`Functions:\n${lines.join('\n')}`);
  if (triggers.queues.length > 0 && leaseSeconds !== DEFAULT_QUEUE_LEASE_SECONDS) {
    logger.info(`Queue message lease: ${leaseSeconds} s (LOCALHOST_QUEUE_LEASE_SECONDS; the Functions host uses 600).`);
  }
}
