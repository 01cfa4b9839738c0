/**
 * Test-only queue functions for test/localhost/queues.test.ts. Queue names come from settings through binding
 * expressions (`%TEST_QUEUE_ECHO%`), so that every host in a test run uses its own queues. Handlers report what
 * they saw as one JSON log line each (`RESULT {...}`), which the tests read from the host's output.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { app, output, type InvocationContext } from '@azure/functions';

function report(context: InvocationContext, event: string, data: Record<string, unknown>): void {
  context.log(`RESULT ${JSON.stringify({ event, function: context.functionName, ...data })}`);
}

function metadata(context: InvocationContext): Record<string, unknown> {
  const m = context.triggerMetadata ?? {};
  return {
    id: m.id,
    dequeueCount: m.dequeueCount,
    popReceiptType: typeof m.popReceipt,
    insertionTime: m.insertionTime,
    expirationTime: m.expirationTime,
    nextVisibleTime: m.nextVisibleTime,
    queueTrigger: m.queueTrigger,
  };
}

/** Succeeds, reporting its input (as the library converted it) and the trigger metadata. */
app.storageQueue('queueEcho', {
  queueName: '%TEST_QUEUE_ECHO%',
  connection: 'AzureWebJobsStorage',
  handler: (message, context) => {
    report(context, 'received', { input: message, inputType: typeof message, ...metadata(context) });
  },
});

/** Always fails: retried up to maxDequeueCount, then poisoned. */
app.storageQueue('queueFail', {
  queueName: '%TEST_QUEUE_FAIL%',
  connection: 'AzureWebJobsStorage',
  handler: (message, context) => {
    report(context, 'attempt', { input: message, dequeueCount: context.triggerMetadata?.dequeueCount });
    throw new Error('deliberate failure');
  },
});

/** Never finishes on the first delivery (to stop or kill the host mid-invocation); succeeds on later ones. */
app.storageQueue('queueHang', {
  queueName: '%TEST_QUEUE_HANG%',
  connection: 'AzureWebJobsStorage',
  handler: async (message, context) => {
    const dequeueCount = context.triggerMetadata?.dequeueCount;
    report(context, 'hang-started', { input: message, dequeueCount });
    if (dequeueCount === 1) await new Promise(() => undefined);
    report(context, 'hang-finished', { input: message, dequeueCount });
  },
});

/** Runs for TEST_SLOW_MS, several lease lengths: the lease must be renewed meanwhile. */
app.storageQueue('queueSlow', {
  queueName: '%TEST_QUEUE_SLOW%',
  connection: 'AzureWebJobsStorage',
  handler: async (message, context) => {
    report(context, 'slow-started', { input: message, dequeueCount: context.triggerMetadata?.dequeueCount });
    await sleep(Number(process.env.TEST_SLOW_MS ?? '3000'));
    report(context, 'slow-finished', { input: message });
  },
});

/** Tracks how many invocations run at once. */
let running = 0;
app.storageQueue('queueConcurrency', {
  queueName: '%TEST_QUEUE_CONCURRENCY%',
  connection: 'AzureWebJobsStorage',
  handler: async (message, context) => {
    running++;
    report(context, 'concurrency', { input: message, running });
    await sleep(400);
    running--;
  },
});

/** Writes three messages (object, text, object) to another queue through one output binding. */
const fanOut = output.storageQueue({ queueName: '%TEST_QUEUE_FANOUT_TARGET%', connection: 'AzureWebJobsStorage' });
app.storageQueue('queueFanOut', {
  queueName: '%TEST_QUEUE_FANOUT%',
  connection: 'AzureWebJobsStorage',
  extraOutputs: [fanOut],
  handler: (message, context) => {
    context.extraOutputs.set(fanOut, [{ a: 1, from: message }, 'plain text', { b: [2] }]);
  },
});
