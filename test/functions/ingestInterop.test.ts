/**
 * Ingestion with Microsoft's Python SDKs on both ends (test/interop/ingest_sdk.py, run with /usr/bin/python3):
 * a message encrypted by the Python queue SDK (random nonce) is ingested by the local host's queue trigger, and
 * the targets are read back by the Python blob SDK's own decryption, content type and metadata included. Also a
 * message made by this project's own tool, `cse encrypt-message --base64`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { contentSha256, sha256 } from '../helpers/blobContent';
import { projectRoot } from '../helpers/paths';
import {
  dropSource,
  exists,
  KEY_ID,
  LANDING,
  MiB,
  REGION,
  startIngestEnvironment,
  TARGET_CONTAINER,
  waitForCompletion,
  type IngestEnvironment,
} from './ingestHarness';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';

async function python(env: IngestEnvironment, ...args: string[]): Promise<Record<string, unknown>> {
  const script = join(projectRoot(), 'test', 'interop', 'ingest_sdk.py');
  const { stdout } = await run(
    PYTHON,
    [script, ...args, '--conn', env.azurite.connectionString, '--jwks', env.keysFile, '--kid', KEY_ID],
    { maxBuffer: 1024 * 1024 },
  );
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('ingestion interop with the Python SDKs', () => {
  let env: IngestEnvironment;

  before(async () => {
    env = await startIngestEnvironment('ingest-interop');
    await env.startHost();
  });
  after(async () => {
    await env?.close();
  });

  it('ingests a message encrypted by the Python queue SDK; the Python blob SDK decrypts the target', async () => {
    const name = 'py/data set.bin';
    const length = 2 * REGION + 3;
    await dropSource(env, name, 'py', length, {
      contentType: 'application/vnd.test',
      metadata: { source_system: 'sftp' },
    });
    const from = env.host.logs.length;
    const sent = await python(
      env,
      'send',
      '--queue',
      env.queueName,
      '--message',
      JSON.stringify({ source: { container: LANDING, name } }),
    );
    // The envelope really is the Python SDK's v2 format with its random nonce.
    const envelope = sent.envelope as { EncryptionData: { EncryptionAgent: { Protocol: string } } };
    assert.equal(envelope.EncryptionData.EncryptionAgent.Protocol, '2.0');
    const line = await waitForCompletion(env, `${TARGET_CONTAINER}/${name}`, { from });
    assert.match(line, /form=source\+envelope/);
    assert.equal(await exists(env, LANDING, name), false);

    const read = await python(env, 'read', '--container', TARGET_CONTAINER, '--name', name);
    assert.equal(read.length, length);
    assert.equal(read.sha256, contentSha256('py', 0, length));
    assert.equal(read.content_type, 'application/vnd.test');
    assert.equal((read.metadata as Record<string, string>).source_system, 'sftp');
  });

  it('reads every size class of target with the Python SDK: empty, one byte, exactly one region, several regions', async () => {
    const sizes = [0, 1, REGION, 9 * MiB];
    const from = env.host.logs.length;
    for (const size of sizes) {
      await dropSource(env, `py-sizes/${size}`, `pys${size}`, size);
      await env.queue.sendMessage(
        Buffer.from(JSON.stringify({ source: { container: LANDING, name: `py-sizes/${size}` } })).toString('base64'),
      );
    }
    for (const size of sizes) await waitForCompletion(env, `${TARGET_CONTAINER}/py-sizes/${size}`, { from });
    for (const size of sizes) {
      const read = await python(env, 'read', '--container', TARGET_CONTAINER, '--name', `py-sizes/${size}`);
      assert.deepEqual(
        { length: read.length, sha256: read.sha256 },
        { length: size, sha256: contentSha256(`pys${size}`, 0, size) },
      );
    }
  });

  it('ingests a message made by `cse encrypt-message --base64`, sent as it is', async () => {
    await dropSource(env, 'cli/drop.bin', 'cli', 70_000);
    const dir = mkdtempSync(join(tmpdir(), 'cse-ingest-cli-'));
    try {
      writeFileSync(
        join(dir, 'message.json'),
        JSON.stringify({ source: { container: LANDING, name: 'cli/drop.bin' } }),
      );
      const cli = join(__dirname, '..', '..', 'cli', 'cse.js');
      await run(process.execPath, [
        cli,
        'encrypt-message',
        '--keys',
        env.keysFile,
        '--key-id',
        KEY_ID,
        '--in',
        join(dir, 'message.json'),
        '--out',
        join(dir, 'message.txt'),
        '--base64',
      ]);
      const from = env.host.logs.length;
      await env.queue.sendMessage(readFileSync(join(dir, 'message.txt'), 'utf8'));
      const line = await waitForCompletion(env, `${TARGET_CONTAINER}/cli/drop.bin`, { from });
      assert.match(line, /form=source\+envelope/);
      const read = await python(env, 'read', '--container', TARGET_CONTAINER, '--name', 'cli/drop.bin');
      assert.deepEqual(
        { length: read.length, sha256: read.sha256 },
        { length: 70_000, sha256: contentSha256('cli', 0, 70_000) },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ingests an inline payload sent in a Python-encrypted envelope', async () => {
    const payload = Buffer.from('inline from python\n');
    const from = env.host.logs.length;
    await python(
      env,
      'send',
      '--queue',
      env.queueName,
      '--message',
      JSON.stringify({
        content: payload.toString('base64'),
        target: { name: 'py/inline.txt' },
        contentType: 'text/plain',
      }),
    );
    await waitForCompletion(env, `${TARGET_CONTAINER}/py/inline.txt`, { from });
    const read = await python(env, 'read', '--container', TARGET_CONTAINER, '--name', 'py/inline.txt');
    assert.deepEqual(
      { length: read.length, sha256: read.sha256, contentType: read.content_type },
      { length: payload.length, sha256: sha256(payload), contentType: 'text/plain' },
    );
  });
});
