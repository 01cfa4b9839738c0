/**
 * Ingestion when things go wrong, through the local Functions host's real queue listener: redelivered and
 * duplicated messages, the worker killed (SIGKILL, via the test-only INGEST_TEST_CRASH_AT hook) between staging
 * and commit, between commit and delete, and after the delete, and messages that can never succeed ending in
 * `ingest-poison` unchanged after the configured dequeue count, with their sources untouched.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateDevelopmentKeySet, loadLocalKeys } from '../../shared/keys/localKeys';
import { encryptQueueMessage, envelopeToBase64 } from '../../shared/crypto/queueMessage';
import { CRASH_AT_VARIABLE, type CrashPoint } from '../../shared/ingest/crashPoints';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contentSha256 } from '../helpers/blobContent';
import {
  container,
  dropSource,
  eventually,
  exists,
  getThroughApi,
  LANDING,
  logField,
  MiB,
  sendMessage,
  startIngestEnvironment,
  TARGET_CONTAINER,
  testHostJson,
  waitForCompletion,
  type IngestEnvironment,
} from './ingestHarness';

const MAX_DEQUEUE_COUNT = 2;

describe('ingestion recovery', () => {
  let env: IngestEnvironment;

  before(async () => {
    // The default queue name, so the poison queue is literally `ingest-poison`.
    env = await startIngestEnvironment('ingest', {
      hostJson: testHostJson({ maxDequeueCount: MAX_DEQUEUE_COUNT }),
      leaseSeconds: 3,
    });
    await env.startHost();
  });
  after(async () => {
    await env?.close();
  });

  async function assertIngested(name: string, seed: string, length: number): Promise<void> {
    assert.equal(await exists(env, LANDING, name), false, `${name}: source deleted`);
    const got = await getThroughApi(env, TARGET_CONTAINER, name);
    assert.equal(got.status, 200);
    assert.deepEqual({ length: got.length, sha256: got.sha256 }, { length, sha256: contentSha256(seed, 0, length) });
  }

  async function queueIsEmpty(queueName: string): Promise<true | undefined> {
    const props = await env.queues.getQueueClient(queueName).getProperties();
    return props.approximateMessagesCount === 0 ? true : undefined;
  }

  describe('redelivery', () => {
    it('a message delivered again after it completed changes nothing (the target records its source)', async () => {
      await dropSource(env, 'again/a.bin', 'again', 3 * MiB);
      const message = { source: { container: LANDING, name: 'again/a.bin' } };
      let from = env.host.logs.length;
      await sendMessage(env, message);
      await waitForCompletion(env, `${TARGET_CONTAINER}/again/a.bin`, { from });
      const first = await container(env, TARGET_CONTAINER).getBlobClient('again/a.bin').getProperties();

      from = env.host.logs.length;
      await sendMessage(env, message);
      const line = await waitForCompletion(env, `${TARGET_CONTAINER}/again/a.bin`, { from });
      assert.equal(logField(line, 'action'), 'alreadyIngested');
      const second = await container(env, TARGET_CONTAINER).getBlobClient('again/a.bin').getProperties();
      assert.equal(second.etag, first.etag, 'the target was not written again');
      await assertIngested('again/a.bin', 'again', 3 * MiB);
    });

    it('two copies of one message processed at the same time leave one correct target', async () => {
      await dropSource(env, 'twice/b.bin', 'twice', 6 * MiB);
      const message = { source: { container: LANDING, name: 'twice/b.bin' } };
      const from = env.host.logs.length;
      await Promise.all([sendMessage(env, message), sendMessage(env, message)]);
      await waitForCompletion(env, `${TARGET_CONTAINER}/twice/b.bin`, { from });
      const done = await eventually('both copies to complete', async () => {
        const lines = env.host.logs.slice(from).filter((l) => l.includes(`target=${TARGET_CONTAINER}/twice/b.bin `));
        return lines.length >= 2 ? lines : undefined;
      });
      // Whatever the interleaving (both commit, or one finds the other's target), one delete wins: the ETag check.
      assert.equal(done.filter((l) => logField(l, 'sourceDeleted') === 'true').length, 1);
      await eventually('the queue to drain', () => queueIsEmpty('ingest'));
      await assertIngested('twice/b.bin', 'twice', 6 * MiB);
      const listed = [];
      for await (const b of container(env, TARGET_CONTAINER).listBlobsFlat({ prefix: 'twice/' })) listed.push(b.name);
      assert.deepEqual(listed, ['twice/b.bin']);
    });
  });

  describe('worker crashes (INGEST_TEST_CRASH_AT)', () => {
    /** Runs one message in a host that kills itself at `point`; returns the state left behind. */
    async function crashAt(point: CrashPoint, name: string, seed: string, length: number) {
      const sourceEtag = await dropSource(env, name, seed, length);
      await env.host.stop();
      await env.startHost({ [CRASH_AT_VARIABLE]: point });
      await sendMessage(env, { source: { container: LANDING, name } });
      const exit = await env.host.exited;
      assert.equal(exit.signal, 'SIGKILL', `the host killed itself at ${point}`);
      const target = container(env, TARGET_CONTAINER).getBlockBlobClient(name);
      const targetExists = await target.exists();
      return { sourceEtag, target, targetExists, sourceExists: await exists(env, LANDING, name) };
    }

    /** Restarts a normal host and waits for the redelivered message to complete. */
    async function recover(name: string): Promise<string> {
      await env.startHost();
      return waitForCompletion(env, `${TARGET_CONTAINER}/${name}`, { timeoutMs: 30_000 });
    }

    it('killed between staging and commit: no target yet, the source kept; the redelivery completes it', async () => {
      const name = 'crash/stage.bin';
      const state = await crashAt('after-stage', name, 'crash-stage', 9 * MiB);
      assert.equal(state.targetExists, false, 'nothing committed');
      assert.equal(state.sourceExists, true, 'source kept');
      const blocks = await state.target.getBlockList('uncommitted');
      assert.equal(blocks.uncommittedBlocks?.length, 3, 'the crash came after staging (3 regions staged)');
      const line = await recover(name);
      assert.equal(logField(line, 'action'), 'encrypted');
      assert.equal(logField(line, 'sourceDeleted'), 'true');
      await assertIngested(name, 'crash-stage', 9 * MiB);
      const committed = await state.target.getBlockList('committed');
      assert.equal(committed.committedBlocks?.length, 3);
    });

    it('killed between commit and delete: the redelivery only deletes the source (no second encryption)', async () => {
      const name = 'crash/commit.bin';
      const state = await crashAt('after-commit', name, 'crash-commit', 5 * MiB);
      assert.equal(state.targetExists, true, 'the target was committed');
      assert.equal(state.sourceExists, true, 'the source is deleted only after');
      const before = await state.target.getProperties();
      assert.equal(before.metadata?.cse_ingest_source_etag, state.sourceEtag);
      const line = await recover(name);
      assert.equal(logField(line, 'resumed'), 'true');
      assert.equal(logField(line, 'sourceDeleted'), 'true');
      const afterProps = await state.target.getProperties();
      assert.equal(afterProps.etag, before.etag, 'the target was not written again');
      await assertIngested(name, 'crash-commit', 5 * MiB);
    });

    it('killed after the delete: the redelivery finds the target recording the source and completes', async () => {
      const name = 'crash/delete.bin';
      const state = await crashAt('after-delete', name, 'crash-delete', 1000);
      assert.equal(state.targetExists, true);
      assert.equal(state.sourceExists, false);
      const before = await state.target.getProperties();
      const line = await recover(name);
      assert.equal(logField(line, 'action'), 'alreadyIngested');
      assert.equal((await state.target.getProperties()).etag, before.etag);
      await assertIngested(name, 'crash-delete', 1000);
    });
  });

  describe('poison', () => {
    it(`moves what can never succeed to ingest-poison unchanged after ${MAX_DEQUEUE_COUNT} attempts, touching no source`, async () => {
      const keep = ['poison/keep-1.txt', 'poison/keep-2.txt', 'poison/keep-3.txt'];
      const etags = new Map<string, string>();
      for (const name of keep) etags.set(name, await dropSource(env, name, name, 2000));

      // A key this app does not have: its envelope cannot be opened.
      const dir = mkdtempSync(join(tmpdir(), 'cse-other-key-'));
      writeFileSync(join(dir, 'keys.json'), generateDevelopmentKeySet('local:someone-else'));
      const otherKey = (await loadLocalKeys(join(dir, 'keys.json'))).get('local:someone-else')!;
      rmSync(dir, { recursive: true, force: true });

      const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');
      const cases: { body: string; reason: RegExp | undefined }[] = [
        {
          body: b64({ source: { container: LANDING, name: 'never/existed.txt' } }),
          reason: /BlobNotFound: the source blob landing\/never\/existed\.txt does not exist/,
        },
        { body: b64({ source: 5 }), reason: /InvalidMessage: source must be an object/ },
        {
          body: b64({ source: { container: LANDING, name: keep[0] }, target: { name: 'bad/../name' } }),
          reason: /InvalidName: target: Invalid blob name "bad\/\.\.\/name"/,
        },
        {
          body: envelopeToBase64(
            await encryptQueueMessage(JSON.stringify({ source: { container: LANDING, name: keep[1] } }), otherKey),
          ),
          reason: /KeyNotAllowed: .*local:someone-else/,
        },
        {
          body: b64({ source: { container: LANDING, name: keep[2] }, target: { container: 'azure-webjobs-hosts' } }),
          reason: /ContainerNotAllowed: target: Container "azure-webjobs-hosts"/,
        },
        // Not base64: the host cannot decode it, so it goes to poison at once without an invocation.
        { body: '{"source": not base64 at all}', reason: undefined },
      ];
      const from = env.host.logs.length;
      for (const c of cases) await env.queue.sendMessage(c.body);

      const poison = env.queues.getQueueClient('ingest-poison');
      const bodies = await eventually(
        'all six messages in ingest-poison',
        async () => {
          if (!(await poison.exists())) return undefined;
          const peeked = await poison.peekMessages({ numberOfMessages: 32 });
          const texts = peeked.peekedMessageItems.map((m) => m.messageText);
          return cases.every((c) => texts.includes(c.body)) ? texts : undefined;
        },
        60_000,
      );
      assert.equal(bodies.length, cases.length, 'nothing else in the poison queue');
      await eventually('the ingest queue to drain', () => queueIsEmpty('ingest'));

      const logs = env.host.logs.slice(from);
      for (const c of cases) {
        if (c.reason === undefined) continue;
        const attempts = logs.filter((l) => /Ingestion failed \(attempt \d+\)/.test(l) && c.reason!.test(l));
        assert.equal(attempts.length, MAX_DEQUEUE_COUNT, `${String(c.reason)}: one logged reason per attempt`);
      }
      assert.ok(
        logs.some((l) => /not valid base64/.test(l)),
        'the undecodable message was reported by the host',
      );
      assert.ok(logs.some((l) => /Moving message to queue 'ingest-poison'/.test(l)));

      for (const name of keep) {
        const props = await container(env, LANDING).getBlobClient(name).getProperties();
        assert.equal(props.etag, etags.get(name), `${name} untouched`);
        assert.equal(await exists(env, TARGET_CONTAINER, name), false, `${name}: no target`);
      }
      // `bad/../name` would have addressed `name` had it reached the SDK's URL parser.
      assert.equal(await exists(env, TARGET_CONTAINER, 'name'), false);
    });
  });
});
