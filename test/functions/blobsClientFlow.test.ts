/**
 * A download follows its client: the host reads from Storage only as fast as the client takes the plaintext
 * (so a slow client costs no memory), and stops reading when the client leaves (so it costs no transfer).
 * @azure/functions alone does neither (functions/http/responseFlow.ts). Storage is reached through a proxy that
 * counts the bytes each GET took from Azurite.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateDevelopmentKeySet } from '../../shared/keys/localKeys';
import { azuriteConnectionString, startAzurite, type RunningAzurite } from '../helpers/azurite';
import { contentSha256, contentStream } from '../helpers/blobContent';
import { residentBytes } from '../helpers/processMemory';
import { startStorageProxy, type SeenRequest, type StorageProxy } from '../helpers/storageProxy';
import { startTestHost, type TestHost } from './support/host';
import { ApiClient } from './support/httpClient';

const MiB = 1024 * 1024;
const LENGTH = 128 * MiB;
const NAME = 'follow/big.bin';
/**
 * What may be taken from Storage beyond what the client read: one region held until it authenticates, and the
 * socket and stream buffers between Azurite and the client (a few MiB each). Without flow control the host takes
 * all of the blob within a second or two.
 */
const SLACK = 40 * MiB;

describe('blob downloads follow the client', () => {
  let azurite: RunningAzurite;
  let proxy: StorageProxy;
  let host: TestHost;
  let api: ApiClient;
  const dir = mkdtempSync(join(tmpdir(), 'cse-flow-'));

  before(async () => {
    azurite = await startAzurite({ location: join(dir, 'azurite') });
    proxy = await startStorageProxy(azurite.blobEndpoint);
    const keysFile = join(dir, 'keys.json');
    writeFileSync(keysFile, generateDevelopmentKeySet('local:flow'));
    host = await startTestHost({
      AzureWebJobsStorage: azuriteConnectionString({
        blob: proxy.blobEndpoint,
        queue: azurite.queueEndpoint,
        table: azurite.tableEndpoint,
      }),
      CSE_KEY_ID: 'local:flow',
      CSE_LOCAL_KEYS: keysFile,
    });
    api = new ApiClient(host.url);
    const put = await api.request('PUT', ApiClient.blobPath('flow', NAME), {
      body: contentStream(NAME, LENGTH),
      headers: { 'content-length': LENGTH },
    });
    assert.equal(put.status, 201, put.body.toString());
  });
  after(async () => {
    await host?.stop();
    await proxy?.close();
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a client that stops reading holds the storage read back, and gets every byte when it resumes', async () => {
    const rssBefore = residentBytes(host.pid);
    const download = await startDownload();
    await download.readAtLeast(MiB);
    download.response.pause();
    const taken = await settledStorageBytes(download.storageGet());
    const rssPaused = residentBytes(host.pid);
    console.log(
      `paused client: ${mib(download.received)} MiB read, ${mib(taken)} MiB taken from storage, host RSS +${mib(rssPaused - rssBefore)} MiB`,
    );
    assert.ok(
      taken < download.received + SLACK,
      `the host took ${mib(taken)} MiB from storage for a client that read ${mib(download.received)} MiB`,
    );
    assert.ok(
      rssPaused - rssBefore < SLACK,
      `host RSS grew by ${mib(rssPaused - rssBefore)} MiB while the client paused`,
    );
    download.response.resume();
    assert.deepEqual(await download.finished, { length: LENGTH, sha256: contentSha256(NAME, 0, LENGTH) });
  });

  it('a client that leaves stops the storage read', async () => {
    const download = await startDownload();
    await download.readAtLeast(MiB);
    download.request.destroy();
    await download.finished.catch(() => undefined);
    const taken = await settledStorageBytes(download.storageGet());
    console.log(`client left after ${mib(download.received)} MiB: ${mib(taken)} MiB taken from storage`);
    assert.ok(taken < MiB + SLACK, `the host took ${mib(taken)} MiB from storage after the client left at 1 MiB`);
    // The host is fine afterwards: the next download is whole.
    const again = await api.digest('GET', ApiClient.blobPath('flow', NAME));
    assert.equal(again.status, 200);
    assert.deepEqual(
      { length: again.length, sha256: again.sha256 },
      { length: LENGTH, sha256: contentSha256(NAME, 0, LENGTH) },
    );
  });

  /** A GET of the blob whose body the test reads at its own pace. */
  async function startDownload() {
    const seenBefore = proxy.seen.length;
    const request = http.get(new URL(ApiClient.blobPath('flow', NAME), host.url));
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', reject);
    });
    assert.equal(response.statusCode, 200);
    const hash = createHash('sha256');
    const state = { received: 0 };
    const progress = new EventTarget();
    response.on('data', (chunk: Buffer) => {
      state.received += chunk.length;
      hash.update(chunk);
      progress.dispatchEvent(new Event('data'));
    });
    const finished = new Promise<{ length: number; sha256: string }>((resolve, reject) => {
      response.once('end', () => resolve({ length: state.received, sha256: hash.digest('hex') }));
      response.once('error', reject);
      response.once('aborted', () => reject(new Error('aborted')));
      request.once('error', reject);
    });
    finished.catch(() => undefined);
    return {
      request,
      response,
      finished,
      get received() {
        return state.received;
      },
      readAtLeast: async (bytes: number): Promise<void> => {
        while (state.received < bytes) await new Promise((r) => progress.addEventListener('data', r, { once: true }));
      },
      /** The storage GET serving this download (the one content GET since it started). */
      storageGet: (): SeenRequest => {
        const gets = proxy.seen
          .slice(seenBefore)
          .filter((s) => s.request.method === 'GET' && s.request.url.includes('big.bin'));
        assert.equal(gets.length, 1, 'one storage GET per download');
        return gets[0]!;
      },
    };
  }
});

/** The GET's byte count once it stopped growing (unchanged for 1 s; at most 20 s). */
async function settledStorageBytes(get: SeenRequest): Promise<number> {
  let last = -1;
  for (let waited = 0; waited < 20_000 && get.responseBytes !== last; waited += 1000) {
    last = get.responseBytes;
    await sleep(1000);
  }
  return get.responseBytes;
}

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}
