/**
 * Azurite for integration tests: a private instance on free loopback ports, in memory unless a `location` is
 * given, with telemetry off. Always `await azurite.stop()` (an `after` hook); if the test process dies anyway,
 * Azurite exits by itself.
 *
 *   const azurite = await startAzurite();
 *   after(() => azurite.stop());
 *   const queues = QueueServiceClient.fromConnectionString(azurite.connectionString);
 *   const tables = TableClient.fromConnectionString(azurite.connectionString, 't', tableClientOptions);
 */
import { startAzurite as start, type AzuriteOptions, type RunningAzurite } from '../../localhost/azurite';

export type { AzuriteOptions, RunningAzurite };
export { AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME, azuriteConnectionString } from '../../localhost/azurite';

/** `@azure/data-tables` refuses `http://` endpoints from an explicit connection string without this. */
export const tableClientOptions = { allowInsecureConnection: true } as const;

export function startAzurite(options: AzuriteOptions = {}): Promise<RunningAzurite> {
  return start(options);
}
