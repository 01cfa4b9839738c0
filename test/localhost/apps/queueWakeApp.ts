/**
 * Test-only functions for the queue listener's wake-up and batch limits (test/localhost/queues.test.ts): an
 * HTTP function writes to a queue through an output binding, and a queue function on that queue reports how
 * many of its invocations run at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { app, output } from '@azure/functions';

const toSink = output.storageQueue({ queueName: '%TEST_QUEUE_SINK%', connection: 'AzureWebJobsStorage' });

app.http('enqueueToSink', {
  methods: ['POST'],
  route: 'sink',
  extraOutputs: [toSink],
  handler: async (request, context) => {
    context.extraOutputs.set(toSink, await request.json());
    return { status: 202 };
  },
});

let running = 0;
app.storageQueue('sink', {
  queueName: '%TEST_QUEUE_SINK%',
  connection: 'AzureWebJobsStorage',
  handler: async (message, context) => {
    running++;
    context.log(`RESULT ${JSON.stringify({ event: 'sink', input: message, running, at: Date.now() })}`);
    await sleep(200);
    running--;
  },
});
