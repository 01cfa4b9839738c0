/**
 * Turns each registered function's trigger into what serves it: an HTTP route, a queue listener or a timer
 * listener. `%Setting%` expressions in trigger options are resolved here, so a missing setting, a bad route,
 * queue name or schedule, or an unsupported trigger is a start-up error naming the function.
 */
import type { RegisteredFunction, RpcBindingInfo } from './coreApi';
import { HostStartError } from './errors';
import type { HostJson } from './hostJson';
import { parseAuthLevel } from './http/functionKeys';
import type { HttpFunction } from './http/httpFrontEnd';
import { compileRouteTemplate } from './http/routeTemplate';
import type { InvocationInit, InvocationOutcome } from './invoker';
import type { Logger } from './log';
import type { StorageAccounts } from './outputBindings';
import { QueueListener } from './queues/queueListener';
import { normalizeQueueName } from './queues/queueNames';
import { resolveBindingOptions, type Settings } from './settings';
import type { ScheduleMonitor } from './timers/scheduleMonitor';
import { TimerListener } from './timers/timerListener';
import { parseTimerSchedule, usesMonitor } from './timers/timerSchedule';

export interface Triggers {
  readonly http: HttpFunction[];
  readonly queues: QueueListener[];
  readonly timers: TimerListener[];
}

export interface TriggerContext {
  readonly settings: Settings;
  readonly hostJson: HostJson;
  readonly accounts: StorageAccounts;
  readonly monitor: ScheduleMonitor;
  readonly leaseSeconds: number;
  readonly invoke: (fn: RegisteredFunction, init: InvocationInit) => Promise<InvocationOutcome>;
  readonly completeOutputs: (fn: RegisteredFunction, outcome: InvocationOutcome) => Promise<void>;
  readonly logger: Logger;
}

export function bindTriggers(functions: readonly RegisteredFunction[], ctx: TriggerContext): Triggers {
  const triggers: Triggers = { http: [], queues: [], timers: [] };
  for (const fn of functions) {
    const [bindingName, rawTrigger] = triggerOf(fn);
    const where = `Function '${fn.metadata.name}'`;
    const trigger = resolveBindingOptions(rawTrigger, ctx.settings, where);
    const completeOutputs = (outcome: InvocationOutcome): Promise<void> => ctx.completeOutputs(fn, outcome);
    switch ((trigger.type ?? '').toLowerCase()) {
      case 'httptrigger':
        triggers.http.push(httpFunction(fn, bindingName, trigger));
        break;
      case 'queuetrigger':
        triggers.queues.push(
          new QueueListener({
            fn,
            triggerBindingName: bindingName,
            binary: trigger.dataType === 'binary',
            queueName: normalizeQueueName(String(trigger.queueName ?? ''), `${where} (queueName)`),
            account: ctx.accounts.get(typeof trigger.connection === 'string' ? trigger.connection : undefined),
            options: ctx.hostJson.queues,
            leaseSeconds: ctx.leaseSeconds,
            invoke: ctx.invoke,
            completeOutputs,
            logger: ctx.logger,
          }),
        );
        break;
      case 'timertrigger': {
        const schedule = parseTimerSchedule(String(trigger.schedule ?? ''), `${where} (schedule)`);
        const useMonitor = typeof trigger.useMonitor === 'boolean' ? trigger.useMonitor : undefined;
        triggers.timers.push(
          new TimerListener({
            fn,
            triggerBindingName: bindingName,
            schedule,
            runOnStartup: trigger.runOnStartup === true,
            monitor: usesMonitor(schedule, useMonitor) ? ctx.monitor : undefined,
            invoke: ctx.invoke,
            completeOutputs,
            logger: ctx.logger,
          }),
        );
        break;
      }
      default:
        throw new HostStartError(`${where}: the local host does not support '${rawTrigger.type}' triggers.`);
    }
  }
  return triggers;
}

function httpFunction(fn: RegisteredFunction, bindingName: string, trigger: RpcBindingInfo): HttpFunction {
  const name = fn.metadata.name;
  const methods = Array.isArray(trigger.methods) ? (trigger.methods as string[]) : ['GET', 'POST'];
  return {
    fn,
    triggerBindingName: bindingName,
    // The default route is the function's name.
    route: compileRouteTemplate(typeof trigger.route === 'string' ? trigger.route : name, name),
    methods: new Set(methods.map((m) => m.toUpperCase())),
    authLevel: parseAuthLevel(trigger.authLevel, name),
  };
}

function triggerOf(fn: RegisteredFunction): [string, RpcBindingInfo] {
  const entry = Object.entries(fn.metadata.bindings).find(([, b]) => /trigger$/i.test(b.type ?? ''));
  if (!entry) throw new HostStartError(`Function '${fn.metadata.name}' has no trigger binding.`);
  return entry;
}
