/**
 * A large source through the local Functions host, with the host's memory checked: ingestion streams (a few
 * regions in flight), so the host's peak resident memory must grow by far less than the source's size. The
 * benchmark (bench/ingest.bench.ts) does the same at 256 MiB and more; this test keeps to a size that runs in
 * seconds on a 2-core machine but is still several times the bound, so buffering the blob would fail it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  dropSource,
  exists,
  getThroughApi,
  LANDING,
  logField,
  MiB,
  sendMessage,
  startIngestEnvironment,
  TARGET_CONTAINER,
  waitForCompletion,
  type IngestEnvironment,
} from './ingestHarness';
import { contentSha256 } from '../helpers/blobContent';
import { peakRssBytes } from '../helpers/processMemory';

const LARGE = 128 * MiB;
/**
 * Allowed growth of the host's peak RSS: the pipeline holds about (4 staging + 1 filling) blocks of 4 MiB plus
 * stream and TLS/HTTP buffers and garbage not yet collected. Far below the 128 MiB a buffered copy would take.
 */
const MAX_GROWTH = 64 * MiB;

describe('ingestion of a large source', () => {
  let env: IngestEnvironment;

  before(async () => {
    env = await startIngestEnvironment('ingest-large');
    await env.startHost();
  });
  after(async () => {
    await env?.close();
  });

  it(`encrypts ${LARGE / MiB} MiB while the host's peak memory grows by less than ${MAX_GROWTH / MiB} MiB`, async () => {
    // Warm up (modules, JIT, connection pools) so that the baseline is the host at work, not at rest.
    await dropSource(env, 'large/warmup.bin', 'warm', 9 * MiB);
    await sendMessage(env, { source: { container: LANDING, name: 'large/warmup.bin' } });
    await waitForCompletion(env, `${TARGET_CONTAINER}/large/warmup.bin`);
    const baseline = peakRssBytes(env.host.pid);

    await dropSource(env, 'large/big.bin', 'big', LARGE);
    const from = env.host.logs.length;
    await sendMessage(env, { source: { container: LANDING, name: 'large/big.bin' } });
    const line = await waitForCompletion(env, `${TARGET_CONTAINER}/large/big.bin`, { from, timeoutMs: 120_000 });
    const growth = peakRssBytes(env.host.pid) - baseline;
    assert.equal(logField(line, 'size'), String(LARGE));
    assert.ok(growth < MAX_GROWTH, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);

    assert.equal(await exists(env, LANDING, 'large/big.bin'), false);
    const got = await getThroughApi(env, TARGET_CONTAINER, 'large/big.bin');
    assert.deepEqual(
      { length: got.length, sha256: got.sha256 },
      { length: LARGE, sha256: contentSha256('big', 0, LARGE) },
    );
  });
});
