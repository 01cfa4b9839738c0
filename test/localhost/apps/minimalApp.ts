/**
 * A small test-only app for test/localhost/startup.test.ts: it reports the settings it sees, has a slow HTTP
 * function (to be in flight during shutdown) and a queue function on a queue named by a setting.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { app } from '@azure/functions';

app.setup({ enableHttpStream: true });

// App-level and invocation hooks run as in the worker.
app.hook.appStart((context) => {
  context.hookData.started = true;
  console.log(`RESULT ${JSON.stringify({ event: 'appStart' })}`);
});
app.hook.appTerminate(() => console.log(`RESULT ${JSON.stringify({ event: 'appTerminate' })}`));
app.hook.preInvocation((context) => {
  context.invocationContext.log(
    `RESULT ${JSON.stringify({ event: 'preInvocation', fn: context.invocationContext.functionName })}`,
  );
});

app.http('settings', {
  methods: ['GET'],
  route: 'settings',
  handler: () => ({
    jsonBody: {
      CSE_KEY_ID: process.env.CSE_KEY_ID ?? null,
      CSE_LOCAL_KEYS: process.env.CSE_LOCAL_KEYS ?? null,
      TEST_FROM_SETTINGS: process.env.TEST_FROM_SETTINGS ?? null,
      TEST_OVERRIDDEN: process.env.TEST_OVERRIDDEN ?? null,
    },
  }),
});

app.http('slow', {
  methods: ['GET'],
  route: 'slow',
  handler: async () => {
    await sleep(1500);
    return { body: 'finished' };
  },
});

app.storageQueue('minimalQueue', {
  queueName: '%MINIMAL_QUEUE%',
  connection: 'AzureWebJobsStorage',
  handler: (message, context) => {
    context.log(`RESULT ${JSON.stringify({ event: 'queue', input: message })}`);
  },
});

/** Ends the host process, as a crash would (for the helper's `exited`). */
app.http('exit', {
  methods: ['POST'],
  route: 'exit',
  handler: () => {
    setTimeout(() => process.exit(3), 500);
    return { status: 202 };
  },
});
