/**
 * Runs one invocation the way the Node.js worker does (azure-functions-nodejs-worker InvocationHandler): the
 * app's own programming model builds the InvocationModel, which converts inputs, runs the handler between the
 * pre- and post-invocation hooks, and converts outputs. The host only supplies the RPC-shaped request and reads
 * the RPC-shaped response, so binding conversion, `$return`, extra outputs, logging and HTTP streaming are all
 * the library's own code.
 */
import { randomUUID } from 'node:crypto';
import type {
  CoreInvocationContext,
  CoreRegistry,
  FunctionCallback,
  HookCallback,
  HookName,
  RegisteredFunction,
  RpcInvocationRequest,
  RpcInvocationResponse,
  RpcLogCategory,
  RpcLogLevel,
  RpcParameterBinding,
  RpcTypedData,
} from './coreApi';
import { errorMessage, toLogLevel, type Logger } from './log';

export interface InvocationInit {
  readonly inputData: RpcParameterBinding[];
  readonly triggerMetadata: Record<string, RpcTypedData>;
  /** Why it runs, for the "Executing" log line (Core Tools prints the same reasons). */
  readonly reason: string;
  readonly invocationId?: string;
}

export interface InvocationOutcome {
  readonly invocationId: string;
  readonly response: RpcInvocationResponse;
  /** The library's InvocationContext (the handler's `context`). */
  readonly context: unknown;
  /** What the handler returned (after post-invocation hooks). */
  readonly result: unknown;
}

/** A handler (or hook) failed; `cause` is what it threw. */
export class FunctionInvocationError extends Error {
  override readonly name = 'FunctionInvocationError';
}

export class Invoker {
  readonly #registry: CoreRegistry;
  readonly #logger: Logger;

  constructor(registry: CoreRegistry, logger: Logger) {
    this.#registry = registry;
    this.#logger = logger;
  }

  /** Invokes `fn`; resolves with the RPC response, rejects with FunctionInvocationError if the handler failed. */
  async invoke(fn: RegisteredFunction, init: InvocationInit): Promise<InvocationOutcome> {
    const model = this.#registry.programmingModel;
    if (!model) throw new Error('The app registered functions without a programming model.');
    const name = fn.metadata.name;
    const invocationId = init.invocationId ?? randomUUID();
    const started = process.hrtime.bigint();
    this.#logger.info(`Executing 'Functions.${name}' (Reason='${init.reason}', Id=${invocationId})`);

    const request: RpcInvocationRequest = {
      invocationId,
      functionId: name,
      inputData: init.inputData,
      triggerMetadata: init.triggerMetadata,
      retryContext: null,
      traceContext: { traceParent: undefined, traceState: undefined, attributes: {} },
    };
    let context: unknown;
    const coreCtx: CoreInvocationContext = {
      invocationId,
      request,
      metadata: fn.metadata,
      state: undefined,
      log: (level, category, message) => this.#invocationLog(name, invocationId, context, level, category, message),
    };

    const finish = (status: 'Succeeded' | 'Failed'): void => {
      const ms = Number((process.hrtime.bigint() - started) / 1_000_000n);
      const line = `Executed 'Functions.${name}' (${status}, Id=${invocationId}, Duration=${ms}ms)`;
      if (status === 'Succeeded') this.#logger.info(line);
      else this.#logger.error(line);
    };

    try {
      const invocationModel = await model.getInvocationModel(coreCtx);
      const args = await invocationModel.getArguments();
      context = args.context;
      const hookData: Record<string, unknown> = {};
      const appHookData = this.#registry.appHookData;

      const pre = {
        hookData,
        appHookData,
        invocationContext: context,
        inputs: args.inputs,
        functionCallback: fn.callback as FunctionCallback,
      };
      coreCtx.state = 'preInvocationHooks';
      try {
        await this.#runHooks('preInvocation', pre);
      } finally {
        coreCtx.state = undefined;
      }

      const post = {
        hookData,
        appHookData,
        invocationContext: context,
        inputs: pre.inputs,
        result: null as unknown,
        error: null as unknown,
      };
      coreCtx.state = 'invocation';
      try {
        post.result = await invocationModel.invokeFunction(context, pre.inputs, pre.functionCallback);
      } catch (error) {
        post.error = error;
      } finally {
        coreCtx.state = undefined;
      }
      coreCtx.state = 'postInvocationHooks';
      try {
        await this.#runHooks('postInvocation', post);
      } finally {
        coreCtx.state = undefined;
      }
      if (post.error !== null && post.error !== undefined) throw post.error;

      const response = await invocationModel.getResponse(context, post.result);
      finish('Succeeded');
      return { invocationId, response, context, result: post.result };
    } catch (error) {
      finish('Failed');
      this.#logger.error(`Exception while executing function: Functions.${name}. ${errorMessage(error)}`);
      throw new FunctionInvocationError(`Functions.${name} failed: ${(error as Error)?.message ?? error}`, {
        cause: error,
      });
    }
  }

  /** Runs the app-level hooks (`appStart`, `appTerminate`) in registration order. */
  async runAppHooks(name: 'appStart' | 'appTerminate', functionAppDirectory: string): Promise<void> {
    const hookData: Record<string, unknown> = {};
    await this.#runHooks(name, { hookData, appHookData: this.#registry.appHookData, functionAppDirectory });
  }

  async #runHooks(name: HookName, context: Record<string, unknown>): Promise<void> {
    for (const hook of [...(this.#registry.hooks.get(name) ?? [])]) {
      await hook(context);
    }
  }

  #invocationLog(
    functionName: string,
    invocationId: string,
    invocationContext: unknown,
    level: RpcLogLevel,
    category: RpcLogCategory,
    message: string,
  ): void {
    let finalLevel = level;
    let finalMessage = message;
    const logHooks: HookCallback[] = this.#registry.hooks.get('log') ?? [];
    if (logHooks.length > 0) {
      const hookContext = {
        hookData: {},
        appHookData: this.#registry.appHookData,
        invocationContext,
        category,
        level,
        message,
      };
      for (const hook of logHooks) {
        try {
          hook(hookContext);
        } catch (error) {
          this.#logger.error(`A log hook failed: ${errorMessage(error)}`);
        }
      }
      // As in the worker, hooks may change user logs only.
      if (category === 'user') {
        finalLevel = hookContext.level;
        finalMessage = hookContext.message;
      }
    }
    const mapped = toLogLevel(finalLevel);
    if (mapped === undefined) return;
    if (category === 'user') {
      this.#logger.log(mapped, finalMessage);
    } else if (mapped === 'warning' || mapped === 'error' || mapped === 'critical') {
      this.#logger.log(mapped, `${functionName} (${invocationId}): ${finalMessage}`);
    } else {
      this.#logger.debug(`${functionName} (${invocationId}): ${finalMessage}`);
    }
  }
}
