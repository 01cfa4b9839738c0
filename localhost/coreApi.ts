/**
 * The `@azure/functions-core` module, as the Node.js worker provides it (ECOSYSTEM.md §1.3). `@azure/functions`
 * `require`s it lazily; with this shim installed it registers the app's functions and programming model here
 * instead of dropping them in "test mode". The types are the subset of the library's `types-core/index.d.ts`
 * that the host uses; `@azure/functions` is pinned (4.16.5) because this contract is semi-internal.
 */
import Module from 'node:module';

export type RpcLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';
export type RpcLogCategory = 'user' | 'system' | 'customMetric';

export interface RpcTypedData {
  string?: string | null;
  json?: string | null;
  bytes?: Uint8Array | null;
  stream?: Uint8Array | null;
  http?: RpcHttpData | null;
  int?: number | null;
  double?: number | null;
  collectionBytes?: { bytes?: Uint8Array[] | null } | null;
  collectionString?: { string?: string[] | null } | null;
  collectionDouble?: { double?: number[] | null } | null;
  collectionSint64?: { sint64?: number[] | null } | null;
}

export interface RpcHttpCookie {
  name?: string | null;
  value?: string | null;
  domain?: { value?: string | null } | null;
  path?: { value?: string | null } | null;
  expires?: { value?: { seconds?: number | null } | null } | null;
  secure?: { value?: boolean | null } | null;
  httpOnly?: { value?: boolean | null } | null;
  sameSite?: 'none' | 'lax' | 'strict' | 'explicitNone' | null;
  maxAge?: { value?: number | null } | null;
}

export interface RpcHttpData {
  method?: string | null;
  url?: string | null;
  headers?: Record<string, string> | null;
  body?: RpcTypedData | null;
  params?: Record<string, string> | null;
  statusCode?: string | null;
  query?: Record<string, string> | null;
  cookies?: RpcHttpCookie[] | null;
}

/** A binding as `@azure/functions` registers it: its options plus type, direction and name-independent data. */
export interface RpcBindingInfo {
  type?: string | null;
  direction?: 'in' | 'out' | 'inout' | null;
  dataType?: 'undefined' | 'string' | 'binary' | 'stream' | null;
  [option: string]: unknown;
}

export interface FunctionMetadata {
  name: string;
  functionId?: string;
  bindings: Record<string, RpcBindingInfo>;
  retryOptions?: unknown;
}

export type FunctionCallback = (...args: unknown[]) => unknown;

export interface RpcParameterBinding {
  name: string;
  data: RpcTypedData;
}

export interface RpcInvocationRequest {
  invocationId: string;
  functionId: string;
  inputData: RpcParameterBinding[];
  triggerMetadata: Record<string, RpcTypedData>;
  retryContext?: { retryCount: number; maxRetryCount: number } | null;
  traceContext?: { traceParent?: string; traceState?: string; attributes?: Record<string, string> } | null;
}

export interface RpcInvocationResponse {
  invocationId?: string | null;
  outputData?: RpcParameterBinding[] | null;
  returnValue?: RpcTypedData | null;
}

export type InvocationState = 'preInvocationHooks' | 'postInvocationHooks' | 'invocation';

export interface CoreInvocationContext {
  invocationId: string;
  request: RpcInvocationRequest;
  metadata: FunctionMetadata;
  state?: InvocationState;
  log(level: RpcLogLevel, category: RpcLogCategory, message: string): void;
}

export interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], callback: FunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<RpcInvocationResponse>;
}

export interface ProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(coreContext: CoreInvocationContext): InvocationModel | Promise<InvocationModel>;
  getCapabilities?(capabilities: Record<string, string>): Record<string, string> | Promise<Record<string, string>>;
}

export type HookName = 'preInvocation' | 'postInvocation' | 'appStart' | 'appTerminate' | 'log';
export type HookCallback = (context: Record<string, unknown>) => unknown;

export interface RegisteredFunction {
  readonly metadata: FunctionMetadata;
  readonly callback: FunctionCallback;
}

/** What the app registered while it was loaded. */
export interface CoreRegistry {
  readonly functions: Map<string, RegisteredFunction>;
  readonly hooks: Map<HookName, HookCallback[]>;
  /** Shared by all hooks of the app (`appHookData` in hook contexts). */
  readonly appHookData: Record<string, unknown>;
  programmingModel: ProgrammingModel | undefined;
}

class Disposable {
  static from(...likes: { dispose: () => unknown }[]): Disposable {
    return new Disposable(() => likes.forEach((d) => d.dispose()));
  }
  #callOnDispose: (() => unknown) | undefined;
  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose;
  }
  dispose(): unknown {
    const call = this.#callOnDispose;
    this.#callOnDispose = undefined;
    return call?.();
  }
}

/** The version the host claims to be: ≥ 4.28 is what `app.setup({ enableHttpStream })` checks for. */
export const EMULATED_HOST_VERSION = '4.1037.0';
const WORKER_VERSION = '3.12.0';

const hookNames: readonly string[] = ['preInvocation', 'postInvocation', 'appStart', 'appTerminate', 'log'];

let installed: CoreRegistry | undefined;

/**
 * Installs `@azure/functions-core` for every later `require` in this process, and returns the registry it fills.
 * Must run before the app (or anything it imports) loads `@azure/functions`. Installing twice returns the same
 * registry. `systemLog` receives the library's own log lines (`coreApi.log`).
 */
export function installCoreApi(
  systemLog: (level: RpcLogLevel, category: RpcLogCategory, message: string) => void,
): CoreRegistry {
  if (installed) return installed;
  const registry: CoreRegistry = {
    functions: new Map(),
    hooks: new Map(),
    appHookData: {},
    programmingModel: undefined,
  };

  const coreApi = {
    version: WORKER_VERSION,
    hostVersion: EMULATED_HOST_VERSION,
    registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable {
      if (registry.functions.has(metadata.name.toLowerCase())) {
        throw new Error(`A function with name "${metadata.name}" has already been registered.`);
      }
      registry.functions.set(metadata.name.toLowerCase(), { metadata, callback });
      return new Disposable(() => registry.functions.delete(metadata.name.toLowerCase()));
    },
    registerHook(hookName: string, callback: HookCallback): Disposable {
      if (!hookNames.includes(hookName)) throw new RangeError(`"${hookName}" is not a valid hook name.`);
      const list = registry.hooks.get(hookName as HookName) ?? [];
      list.push(callback);
      registry.hooks.set(hookName as HookName, list);
      return new Disposable(() => {
        const at = list.indexOf(callback);
        if (at >= 0) list.splice(at, 1);
      });
    },
    setProgrammingModel(model: ProgrammingModel): void {
      registry.programmingModel = model;
    },
    getProgrammingModel(): ProgrammingModel | undefined {
      return registry.programmingModel;
    },
    log(level: RpcLogLevel, category: RpcLogCategory, message: string): void {
      systemLog(level, category, message);
    },
    Disposable,
  };

  // Exactly what the worker does (azure-functions-nodejs-worker src/setupCoreModule.ts).
  Module.prototype.require = new Proxy(Module.prototype.require, {
    apply(target, thisArg, argArray: unknown[]) {
      if (argArray[0] === '@azure/functions-core') return coreApi;
      return Reflect.apply(target, thisArg, argArray) as unknown;
    },
  });
  installed = registry;
  return registry;
}
