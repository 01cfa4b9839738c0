/**
 * Queue-triggered ingestion: encrypts plaintext dropped by systems that cannot encrypt themselves (an SFTP drop,
 * a partner upload, an Event Grid subscription on a landing container) into a target blob, then deletes the
 * plaintext. Thin wiring over shared/ingest: message forms in ingestMessage.ts, the procedure in ingestion.ts.
 *
 * Trigger: the queue named by CSE_INGEST_QUEUE (`%CSE_INGEST_QUEUE%`) on AzureWebJobsStorage, base64 messages
 * (host.json messageEncoding). A failing invocation throws, so the host retries it and, after maxDequeueCount
 * attempts, moves the message unchanged to `<queue>-poison`; the failure's reason is logged on every attempt.
 *
 * Completion notices go to the `ingest-done` queue through an OUTPUT BINDING rather than a queue client: the host
 * writes them only when the invocation succeeded, encoded like every other message of the app (host.json
 * messageEncoding, so a queue-triggered consumer reads them as they are), and creates the queue if needed, with
 * no client or permission of our own. The host writes outputs before it deletes the trigger message, so a crash
 * in between means one more notice for the same target: delivery is at least once, and consumers dedupe by
 * target ETag (a redelivered message reports `alreadyIngested` with the same target ETag).
 */
import { app, output, type InvocationContext } from '@azure/functions';
import { getAppServices, type AppServices } from '../shared/appServices';
import { CSE_SETTING_DEFAULTS } from '../shared/config/config';
import { crashHookFromEnvironment } from '../shared/ingest/crashPoints';
import { decodeIngestMessage } from '../shared/ingest/ingestMessage';
import { Ingestion } from '../shared/ingest/ingestion';
import { completionNotice, describeFailure, describeOutcome, INGEST_DONE_QUEUE } from '../shared/ingest/ingestReport';

const ingestDone = output.storageQueue({ queueName: INGEST_DONE_QUEUE, connection: 'AzureWebJobsStorage' });

/**
 * One Ingestion per set of app services (it caches which target containers exist). Built on first use, so a bad
 * setting fails the invocation with its reason rather than the app's registration.
 */
const ingestions = new WeakMap<AppServices, Ingestion>();

function ingestionFor(services: AppServices): Ingestion {
  let ingestion = ingestions.get(services);
  if (ingestion === undefined) {
    ingestion = new Ingestion(
      {
        blobService: services.blobService,
        containers: services.containers,
        activeKey: () => services.keyRing.activeKey(),
      },
      { onStep: crashHookFromEnvironment(process.env) },
    );
    ingestions.set(services, ingestion);
  }
  return ingestion;
}

export async function ingest(queueEntry: unknown, context: InvocationContext): Promise<void> {
  const attempt = context.triggerMetadata?.dequeueCount;
  try {
    const services = await getAppServices();
    const request = await decodeIngestMessage(queueEntry, {
      defaultTargetContainer: services.config.ingestTargetContainer,
      resolver: services.keyRing.resolver,
      allowV1: services.config.allowV1,
    });
    const outcome = await ingestionFor(services).ingest(request);
    context.log(describeOutcome(outcome));
    context.extraOutputs.set(ingestDone, completionNotice(outcome));
  } catch (e) {
    context.error(`Ingestion failed (attempt ${String(attempt ?? '?')}): ${describeFailure(e)}`);
    throw e;
  }
}

// The host resolves %CSE_INGEST_QUEUE% from the app settings. In Azure the templates always set it; the local
// host runs the app in its own process and resolves it from this environment, so the documented default applies
// there when the setting is absent.
process.env.CSE_INGEST_QUEUE ||= CSE_SETTING_DEFAULTS.CSE_INGEST_QUEUE;

app.storageQueue('ingest', {
  queueName: '%CSE_INGEST_QUEUE%',
  connection: 'AzureWebJobsStorage',
  extraOutputs: [ingestDone],
  handler: ingest,
});
