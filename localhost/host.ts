/**
 * The local Functions host: loads the app's real `app.*` registrations through the `@azure/functions-core` shim
 * and serves them over HTTP, queues and timers with the Functions host's semantics, on Azurite or any storage
 * account named by `AzureWebJobsStorage`. `main.ts` is the command line; this module is the host itself.
 */
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { displayPath, packageMain, resolveAppFiles } from './appFiles';
import { startAzurite, type RunningAzurite } from './azurite';
import { installCoreApi, type CoreRegistry, type RegisteredFunction, type RpcBindingInfo } from './coreApi';
import { devKeyRingPath, ensureDevelopmentKeyRing } from './devKeys';
import { HostStartError } from './errors';
import { readHostJson, type HostJson } from './hostJson';
import { readFunctionKeys, parseAuthLevel } from './http/functionKeys';
import { HttpFrontEnd, type HttpFunction } from './http/httpFrontEnd';
import { compileRouteTemplate } from './http/routeTemplate';
import { Invoker, type InvocationOutcome } from './invoker';
import { errorMessage, toLogLevel, type Logger } from './log';
import { OutputBindings, StorageAccounts, type FunctionOutputs } from './outputBindings';
import { normalizeQueueName } from './queues/queueNames';
import { QueueListener } from './queues/queueListener';
import { applyLocalSettings, isConfigured, readLocalSettings, resolveBindingOptions, type Settings } from './settings';
import { DEFAULT_CONNECTION, probeStorageAccount } from './storage';
import { ScheduleMonitor } from './timers/scheduleMonitor';
import { TimerListener } from './timers/timerListener';
import { parseTimerSchedule, usesMonitor } from './timers/timerSchedule';

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

interface Listeners {
  readonly queues: QueueListener[];
  readonly timers: TimerListener[];
}

export async function startHost(options: HostOptions): Promise<RunningHost> {
  const { root, env, logger } = options;
  const cleanups: (() => Promise<void>)[] = [];
  const cleanUp = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch((e) => logger.error(errorMessage(e)));
  };
  try {
    return await start(options, cleanups, cleanUp);
  } catch (error) {
    await cleanUp();
    throw error;
  }

  async function start(
    opts: HostOptions,
    registerCleanup: (() => Promise<void>)[],
    stopAll: () => Promise<void>,
  ): Promise<RunningHost> {
    const applied = applyLocalSettings(env, readLocalSettings(root));
    if (applied.length > 0) logger.debug(`Settings from local.settings.json: ${applied.join(', ')}`);
    const settings: Settings = env;
    const hostJson = readHostJson(root);
    const leaseSeconds = integerSetting(
      settings,
      'LOCALHOST_QUEUE_LEASE_SECONDS',
      DEFAULT_QUEUE_LEASE_SECONDS,
      1,
      7 * 24 * 3600,
    );
    // A port in use is found before anything is started (listening proper happens once the app is loaded).
    await ensurePortFree(opts.port, opts.listenHost ?? '127.0.0.1');
    const shutdownMs =
      1000 * integerSetting(settings, 'LOCALHOST_SHUTDOWN_TIMEOUT_SECONDS', DEFAULT_SHUTDOWN_SECONDS, 0, 3600);

    // Storage: the configured account, or an embedded Azurite.
    let azurite: RunningAzurite | undefined;
    if (!isConfigured(settings, DEFAULT_CONNECTION)) {
      if (Object.keys(settings).some((k) => k.startsWith(`${DEFAULT_CONNECTION}__`))) {
        throw new HostStartError(
          'AzureWebJobsStorage is configured in the identity-based form (AzureWebJobsStorage__...), which the local ' +
            'host does not support. Unset those settings to use an embedded Azurite, or set AzureWebJobsStorage to ' +
            'a connection string.',
        );
      }
      const location = join(root, '.local', 'azurite');
      azurite = await startAzurite({ location });
      registerCleanup.push(() => azurite!.stop());
      env[DEFAULT_CONNECTION] = azurite.connectionString;
      logger.info(
        `Started Azurite (pid ${azurite.pid}), data in ${displayPath(root, location)}. ` +
          `AzureWebJobsStorage=${azurite.connectionString}`,
      );
    }
    const accounts = new StorageAccounts(settings);
    const hostStorage = accounts.get(DEFAULT_CONNECTION);
    await probeStorageAccount(hostStorage);

    // Keys: a development key ring when none is configured.
    if (!isConfigured(settings, 'CSE_KEY_ID')) {
      const ring = ensureDevelopmentKeyRing(root);
      if (isConfigured(settings, 'CSE_LOCAL_KEYS') && settings.CSE_LOCAL_KEYS !== ring.file) {
        logger.warn(
          `CSE_KEY_ID is not set, so CSE_LOCAL_KEYS (${settings.CSE_LOCAL_KEYS}) is replaced by the development key ring.`,
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

    // The app: the shim first, then its files (their app.* calls register functions).
    const registry = installCoreApi((level, _category, message) => {
      const mapped = toLogLevel(level);
      if (mapped === undefined) return;
      logger.log(mapped === 'information' ? 'debug' : mapped, message);
    });
    const pattern = opts.main ?? packageMain(root);
    await loadApp(root, pattern, logger);
    const functions = selectFunctions(registry, hostJson, logger);

    const invoker = new Invoker(registry, logger);
    const listeners: Listeners = { queues: [], timers: [] };
    const outputs = new OutputBindings(settings, accounts, hostJson.queues.messageEncoding, (account, queueName) => {
      for (const l of listeners.queues) if (l.watches(account, queueName)) l.notify();
    });
    const plans = new Map<string, FunctionOutputs>();
    for (const fn of functions) plans.set(fn.metadata.name, outputs.plan(fn));
    const completeOutputs = (outcome: InvocationOutcome, fn: RegisteredFunction): Promise<void> =>
      outputs.flush(plans.get(fn.metadata.name) ?? { queues: [] }, outcome.response);
    const invoke = invoker.invoke.bind(invoker);

    // Triggers, with %Setting% expressions resolved (a missing setting is a start-up error).
    const httpFunctions: HttpFunction[] = [];
    const monitorContainer = hostStorage.blobService.getContainerClient('azure-webjobs-hosts');
    const monitor = new ScheduleMonitor(monitorContainer, hostId(settings, root), logger);
    for (const fn of functions) {
      const [bindingName, rawTrigger] = triggerOf(fn);
      const where = `Function '${fn.metadata.name}'`;
      const trigger = resolveBindingOptions(rawTrigger, settings, where);
      const type = (trigger.type ?? '').toLowerCase();
      const done = (outcome: InvocationOutcome): Promise<void> => completeOutputs(outcome, fn);
      if (type === 'httptrigger') {
        const methods = Array.isArray(trigger.methods) ? (trigger.methods as string[]) : ['GET', 'POST'];
        httpFunctions.push({
          fn,
          triggerBindingName: bindingName,
          route: compileRouteTemplate(
            typeof trigger.route === 'string' ? trigger.route : fn.metadata.name,
            fn.metadata.name,
          ),
          methods: new Set(methods.map((m) => m.toUpperCase())),
          authLevel: parseAuthLevel(trigger.authLevel, fn.metadata.name),
        });
      } else if (type === 'queuetrigger') {
        const queueName = normalizeQueueName(String(trigger.queueName ?? ''), `${where} (queueName)`);
        listeners.queues.push(
          new QueueListener({
            fn,
            triggerBindingName: bindingName,
            binary: trigger.dataType === 'binary',
            queueName,
            account: accounts.get(typeof trigger.connection === 'string' ? trigger.connection : undefined),
            options: hostJson.queues,
            leaseSeconds,
            invoke,
            completeOutputs: done,
            logger,
          }),
        );
      } else if (type === 'timertrigger') {
        const schedule = parseTimerSchedule(String(trigger.schedule ?? ''), `${where} (schedule)`);
        listeners.timers.push(
          new TimerListener({
            fn,
            triggerBindingName: bindingName,
            schedule,
            runOnStartup: trigger.runOnStartup === true,
            monitor: usesMonitor(schedule, trigger.useMonitor as boolean | undefined) ? monitor : undefined,
            invoke,
            completeOutputs: done,
            logger,
          }),
        );
      } else {
        throw new HostStartError(`${where}: the local host does not support '${rawTrigger.type}' triggers.`);
      }
    }
    for (const account of accounts.all()) if (account !== hostStorage) await probeStorageAccount(account);

    // Streaming: the library starts its HTTP proxy when asked for its capabilities (which also locks app.setup).
    let streamUri: string | undefined;
    if (registry.programmingModel?.getCapabilities) {
      const capabilities = await registry.programmingModel.getCapabilities({});
      streamUri = capabilities.HttpUri;
    }
    await invoker.runAppHooks('appStart', root);
    // Cleanups run in reverse: this one after everything registered below has stopped.
    registerCleanup.push(() => invoker.runAppHooks('appTerminate', root));

    const frontEnd = new HttpFrontEnd({
      functions: httpFunctions,
      routePrefix: hostJson.routePrefix,
      keys: readFunctionKeys(settings),
      streamUri,
      invoke,
      completeOutputs: (fn, outcome) => completeOutputs(outcome, fn),
      logger,
    });
    const port = await frontEnd.listen(opts.port, opts.listenHost ?? '127.0.0.1');
    // On stop, HTTP, queues and timers wind down together, sharing one grace period.
    registerCleanup.push(async () => {
      await Promise.all([
        frontEnd.close(shutdownMs),
        ...listeners.queues.map((l) => l.stop(shutdownMs)),
        ...listeners.timers.map((t) => t.stop(shutdownMs)),
      ]);
    });
    const url = `http://localhost:${port}`;

    for (const l of listeners.queues) l.start();
    for (const t of listeners.timers) await t.start();

    printFunctions(logger, url, hostJson.routePrefix, httpFunctions, listeners, leaseSeconds);
    logger.info(
      `Local host ready at ${url} (${functions.length} functions). Try: curl ${exampleUrl(url, hostJson.routePrefix, httpFunctions)}`,
    );

    let stopping: Promise<void> | undefined;
    return {
      url,
      port,
      functionNames: functions.map((f) => f.metadata.name),
      connectionString: hostStorage.connectionString,
      azurite,
      stop: () => (stopping ??= stopAll()),
    };
  }
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

async function loadApp(root: string, pattern: string, logger: Logger): Promise<void> {
  for (const file of resolveAppFiles(root, pattern)) {
    logger.debug(`Loading ${displayPath(root, file)}`);
    try {
      if (file.endsWith('.mjs')) await import(pathToFileURL(file).href);
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the app is CommonJS, loaded for its effects
      else require(file);
    } catch (cause) {
      throw new HostStartError(`The app file ${displayPath(root, file)} failed to load: ${errorMessage(cause)}`);
    }
  }
}

function selectFunctions(registry: CoreRegistry, hostJson: HostJson, logger: Logger): RegisteredFunction[] {
  let functions = [...registry.functions.values()];
  if (hostJson.functions) {
    const wanted = new Set(hostJson.functions.map((f) => f.toLowerCase()));
    functions = functions.filter((f) => wanted.has(f.metadata.name.toLowerCase()));
  }
  if (functions.length === 0) {
    logger.warn('No job functions found. The app registered no functions with app.* (check package.json "main").');
  }
  return functions;
}

function triggerOf(fn: RegisteredFunction): [string, RpcBindingInfo] {
  const entry = Object.entries(fn.metadata.bindings).find(([, b]) => /trigger$/i.test(b.type ?? ''));
  if (!entry) throw new HostStartError(`Function '${fn.metadata.name}' has no trigger binding.`);
  return entry;
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

function exampleUrl(url: string, prefix: string, httpFunctions: HttpFunction[]): string {
  const simple = httpFunctions.find((h) => h.methods.has('GET') && !h.route.template.includes('{'));
  return simple ? routeUrl(url, prefix, simple.route.template) : `${url}/`;
}

function printFunctions(
  logger: Logger,
  url: string,
  prefix: string,
  httpFunctions: HttpFunction[],
  listeners: Listeners,
  leaseSeconds: number,
): void {
  const lines: string[] = [];
  for (const h of httpFunctions) {
    lines.push(`  ${h.fn.metadata.name}: [${[...h.methods].join(',')}] ${routeUrl(url, prefix, h.route.template)}`);
  }
  for (const q of listeners.queues) lines.push(`  ${q.functionName}: queueTrigger (queue '${q.queueName}')`);
  for (const t of listeners.timers) lines.push(`  ${t.functionName}: timerTrigger (schedule '${t.scheduleText}')`);
  if (lines.length > 0) logger.info(`Functions:\n${lines.join('\n')}`);
  if (listeners.queues.length > 0 && leaseSeconds !== DEFAULT_QUEUE_LEASE_SECONDS) {
    logger.info(`Queue message lease: ${leaseSeconds} s (LOCALHOST_QUEUE_LEASE_SECONDS; the Functions host uses 600).`);
  }
}
