/**
 * Loads the app the way the Node.js worker does: install `@azure/functions-core` first, then require the files
 * of package.json `main` (their `app.*` calls register functions with the shim), then pick the functions
 * host.json allows.
 */
import { pathToFileURL } from 'node:url';
import { displayPath, packageMain, resolveAppFiles } from './appFiles';
import { installCoreApi, type CoreRegistry, type RegisteredFunction } from './coreApi';
import { HostStartError } from './errors';
import type { HostJson } from './hostJson';
import { errorMessage, toLogLevel, type Logger } from './log';

/** The `@azure/functions` version whose worker contract the shim (coreApi.ts) implements. */
export const SUPPORTED_LIBRARY_VERSION = '4.16.5';

export interface LoadedApp {
  readonly registry: CoreRegistry;
  readonly functions: readonly RegisteredFunction[];
}

export async function loadApp(
  root: string,
  main: string | undefined,
  hostJson: HostJson,
  logger: Logger,
): Promise<LoadedApp> {
  const registry = installCoreApi((level, _category, message) => {
    // The library's own messages ("HTTP streaming enabled", ...) are details: debug, unless warnings.
    const mapped = toLogLevel(level);
    if (mapped !== undefined) logger.log(mapped === 'information' ? 'debug' : mapped, message);
  });
  for (const file of resolveAppFiles(root, main ?? packageMain(root))) {
    logger.debug(`Loading ${displayPath(root, file)}`);
    try {
      if (file.endsWith('.mjs')) await import(pathToFileURL(file).href);
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the app is CommonJS, loaded for its effects
      else require(file);
    } catch (cause) {
      throw new HostStartError(`The app file ${displayPath(root, file)} failed to load: ${errorMessage(cause)}`);
    }
  }

  const model = registry.programmingModel;
  if (model && (model.name !== '@azure/functions' || model.version !== SUPPORTED_LIBRARY_VERSION)) {
    logger.warn(
      `The app uses ${model.name} ${model.version}; the local host's shim was checked against @azure/functions ` +
        `${SUPPORTED_LIBRARY_VERSION} (its worker contract is semi-internal).`,
    );
  }

  let functions = [...registry.functions.values()];
  if (hostJson.functions) {
    const wanted = new Set(hostJson.functions.map((f) => f.toLowerCase()));
    functions = functions.filter((f) => wanted.has(f.metadata.name.toLowerCase()));
  }
  if (functions.length === 0) {
    logger.warn('No job functions found. The app registered no functions with app.* (check package.json "main").');
  }
  return { registry, functions };
}
