/**
 * Memory of the blob HTTP path: the host's peak RSS (VmHWM of the host process) after a 256 MiB upload and
 * download must not have grown beyond what a 16 MiB round trip already needed, i.e. memory does not scale with
 * the content. Content is generated and digested on the fly; the test process never holds it either.
 * (The 1 GiB figure is measured by the benchmark, `npm run bench`.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDevelopmentKeySet } from '../../shared/keys/localKeys';
import { startAzurite, type RunningAzurite } from '../helpers/azurite';
import { contentSha256, contentStream } from '../helpers/blobContent';
import { startTestHost, type TestHost } from './support/host';
import { ApiClient } from './support/httpClient';

const MiB = 1024 * 1024;
/**
 * Allowed growth of the peak between the 16 MiB and the 256 MiB round trip. Buffers in flight are bounded by the
 * upload concurrency and one region per direction (~30 MiB); what varies beyond that is garbage-collector timing.
 * Memory proportional to size would add hundreds of MiB.
 */
const ALLOWED_GROWTH = 64 * MiB;

describe('blob HTTP memory', () => {
  let azurite: RunningAzurite;
  let host: TestHost;
  let api: ApiClient;
  const dir = mkdtempSync(join(tmpdir(), 'cse-mem-'));

  before(async () => {
    // On disk, so the 256 MiB stored by Azurite does not compete for memory with the host under test.
    azurite = await startAzurite({ location: join(dir, 'azurite') });
    const keysFile = join(dir, 'keys.json');
    writeFileSync(keysFile, generateDevelopmentKeySet('local:mem'));
    host = await startTestHost({
      AzureWebJobsStorage: azurite.connectionString,
      CSE_KEY_ID: 'local:mem',
      CSE_LOCAL_KEYS: keysFile,
    });
    api = new ApiClient(host.url);
  });
  after(async () => {
    await host?.stop();
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const roundTrip = async (length: number): Promise<void> => {
    const name = `mem-${length}`;
    const put = await api.request('PUT', ApiClient.blobPath('memory', name), {
      body: contentStream(name, length),
      headers: { 'content-length': length },
    });
    assert.equal(put.status, 201, put.body.toString());
    const got = await api.digest('GET', ApiClient.blobPath('memory', name));
    assert.equal(got.status, 200);
    assert.equal(got.length, length);
    assert.equal(got.sha256, contentSha256(name, 0, length));
  };

  it('peak RSS does not grow between a 16 MiB and a 256 MiB upload and download', async () => {
    await roundTrip(16 * MiB);
    const after16 = host.peakRssBytes();
    await roundTrip(256 * MiB);
    const after256 = host.peakRssBytes();
    const growth = after256 - after16;
    console.log(
      `host peak RSS: ${(after16 / MiB).toFixed(1)} MiB after 16 MiB, ${(after256 / MiB).toFixed(1)} MiB after 256 MiB`,
    );
    assert.ok(growth < ALLOWED_GROWTH, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  });
});
