/**
 * Parsing of ingestion messages: the four forms with their defaults, the shapes the trigger can hand over
 * (object, JSON text, base64 of JSON, bytes), Event Grid subjects, the encrypted envelope (.NET-style nonce from
 * our writer, Python's base64 plaintext), and a specific InvalidMessage for everything malformed.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCseError } from '../../../shared/errors';
import { encryptQueueMessage, envelopeToBase64 } from '../../../shared/crypto/queueMessage';
import { generateDevelopmentKeySet, loadLocalKeys, type LocalKeyRing } from '../../../shared/keys/localKeys';
import type { KeyResolver } from '../../../shared/keys/kek';
import { CseError } from '../../../shared/errors';
import { decodeIngestMessage, MAX_INLINE_CONTENT_LENGTH } from '../../../shared/ingest/ingestMessage';
import { parseBlobCreatedEvent } from '../../../shared/ingest/eventGrid';
import type { IngestRequest } from '../../../shared/ingest/ingestRequest';

const TARGET = 'encrypted';

describe('ingestion messages', () => {
  let keys: LocalKeyRing;
  let resolver: KeyResolver;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cse-msg-'));
    writeFileSync(join(dir, 'keys.json'), generateDevelopmentKeySet('local:m'));
    keys = await loadLocalKeys(join(dir, 'keys.json'));
    rmSync(dir, { recursive: true, force: true });
    // Like the key ring: only known keys resolve.
    resolver = {
      resolve: async (id) => {
        const key = keys.get(id);
        if (!key) throw new CseError('KeyNotAllowed', `key id ${id} is not allowed`);
        return key;
      },
    };
  });

  const decode = (value: unknown, allowV1 = false): Promise<IngestRequest> =>
    decodeIngestMessage(value, { defaultTargetContainer: TARGET, resolver, allowV1 });

  async function rejects(value: unknown, pattern: RegExp, code = 'InvalidMessage'): Promise<void> {
    await assert.rejects(decode(value), (e: unknown) => {
      assert.ok(isCseError(e), String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, pattern);
      return true;
    });
  }

  describe('source form', () => {
    it('defaults the target to the same name in CSE_INGEST_TARGET_CONTAINER and deleteSource to true', async () => {
      assert.deepEqual(await decode({ source: { container: 'landing', name: 'a/b.csv' } }), {
        kind: 'blob',
        form: 'source',
        envelope: false,
        source: { container: 'landing', name: 'a/b.csv' },
        target: { container: TARGET, name: 'a/b.csv' },
        deleteSource: true,
      });
    });

    it('takes an explicit target, a partial one, and deleteSource:false', async () => {
      const full = await decode({
        source: { container: 'landing', name: 'x' },
        target: { container: 'archive', name: 'y' },
        deleteSource: false,
      });
      assert.deepEqual(
        [full.target, full.kind === 'blob' && full.deleteSource],
        [{ container: 'archive', name: 'y' }, false],
      );
      const nameOnly = await decode({ source: { container: 'landing', name: 'x' }, target: { name: 'z' } });
      assert.deepEqual(nameOnly.target, { container: TARGET, name: 'z' });
      const containerOnly = await decode({ source: { container: 'landing', name: 'x' }, target: { container: 'c2' } });
      assert.deepEqual(containerOnly.target, { container: 'c2', name: 'x' });
    });

    it('accepts the message as JSON text, as base64 of JSON, and as bytes', async () => {
      const message = { source: { container: 'landing', name: 'x' } };
      const expected = await decode(message);
      assert.deepEqual(await decode(JSON.stringify(message)), expected);
      assert.deepEqual(await decode(Buffer.from(JSON.stringify(message)).toString('base64')), expected);
      assert.deepEqual(await decode(Buffer.from(JSON.stringify(message))), expected);
    });

    it('rejects what is malformed, naming the problem', async () => {
      await rejects({ source: 5 }, /source must be an object/);
      await rejects({ source: { container: 'landing' } }, /source.name must be a non-empty string/);
      await rejects({ source: { name: 'x' } }, /source.container must be a non-empty string/);
      await rejects({ source: { container: 'landing', name: '' } }, /source.name/);
      await rejects(
        { source: { container: 'landing', name: 'x', extra: 1 } },
        /source has unknown member\(s\) "extra"/,
      );
      await rejects(
        { source: { container: 'landing', name: 'x' }, deletesource: false },
        /unknown member\(s\) "deletesource"/,
      );
      await rejects(
        { source: { container: 'landing', name: 'x' }, deleteSource: 'no' },
        /deleteSource must be true or false/,
      );
      await rejects({ source: { container: 'landing', name: 'x' }, target: 'encrypted/x' }, /target must be an object/);
      await rejects({ source: { container: 'landing', name: 'x' }, target: { name: 7 } }, /target.name/);
    });
  });

  describe('inline form', () => {
    it('decodes the content, requires a target name and defaults its container', async () => {
      const request = await decode({
        content: Buffer.from('hello').toString('base64'),
        target: { name: 'in/hello.txt' },
        contentType: 'text/plain',
        metadata: { Origin: 'partner' },
      });
      assert.equal(request.kind, 'inline');
      if (request.kind !== 'inline') return;
      assert.equal(request.content.toString(), 'hello');
      assert.deepEqual(request.target, { container: TARGET, name: 'in/hello.txt' });
      assert.equal(request.contentType, 'text/plain');
      assert.deepEqual(request.metadata, { origin: 'partner' });
    });

    it('accepts empty content', async () => {
      const request = await decode({ content: '', target: { name: 'empty' } });
      assert.equal(request.kind === 'inline' && request.content.length, 0);
    });

    it('rejects bad content, a missing target name, bad metadata and oversized payloads', async () => {
      await rejects({ content: 'not base64!', target: { name: 'x' } }, /content is not valid base64/);
      await rejects({ content: 'aGk', target: { name: 'x' } }, /content is not valid base64/);
      await rejects({ content: 5, target: { name: 'x' } }, /content must be a base64 string/);
      await rejects({ content: 'aGk=' }, /needs a target with at least a name/);
      await rejects({ content: 'aGk=', target: { container: 'c' } }, /target.name/);
      await rejects(
        { content: 'aGk=', target: { name: 'x' }, metadata: { 'bad-name': 'v' } },
        /metadata: Invalid metadata name/,
      );
      await rejects(
        { content: 'aGk=', target: { name: 'x' }, metadata: { encryptiondata: 'v' } },
        /metadata: .*reserved/,
      );
      await rejects({ content: 'aGk=', target: { name: 'x' }, metadata: ['a'] }, /metadata must be an object/);
      await rejects({ content: 'aGk=', target: { name: 'x' }, contentType: '' }, /contentType/);
      await rejects(
        { content: 'aGk=', target: { name: 'x' }, deleteSource: true },
        /unknown member\(s\) "deleteSource"/,
      );
      const big = Buffer.alloc(MAX_INLINE_CONTENT_LENGTH + 1).toString('base64');
      await rejects({ content: big, target: { name: 'x' } }, /limited to/);
    });
  });

  describe('Event Grid form', () => {
    const event = (subject: string, extra: Record<string, unknown> = {}) => ({
      topic: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct',
      subject,
      eventType: 'Microsoft.Storage.BlobCreated',
      id: '1',
      eventTime: '2024-01-01T00:00:00Z',
      data: { api: 'PutBlob', eTag: '0x8D', url: 'https://acct.blob.core.windows.net/landing/x' },
      dataVersion: '',
      metadataVersion: '1',
      ...extra,
    });

    it('ingests the named blob into CSE_INGEST_TARGET_CONTAINER and deletes the source', async () => {
      assert.deepEqual(await decode(event('/blobServices/default/containers/landing/blobs/dir/a b.csv')), {
        kind: 'blob',
        form: 'eventGrid',
        envelope: false,
        source: { container: 'landing', name: 'dir/a b.csv' },
        target: { container: TARGET, name: 'dir/a b.csv' },
        deleteSource: true,
      });
    });

    it('reads CloudEvents 1.0 and a one-element array', async () => {
      const cloud = {
        specversion: '1.0',
        type: 'Microsoft.Storage.BlobCreated',
        source: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct',
        id: '1',
        subject: '/blobServices/default/containers/landing/blobs/c.txt',
        data: {},
      };
      const request = await decode(cloud);
      assert.deepEqual(request.kind === 'blob' && request.source, { container: 'landing', name: 'c.txt' });
      const array = await decode([event('/blobServices/default/containers/landing/blobs/d.txt')]);
      assert.deepEqual(array.kind === 'blob' && array.source, { container: 'landing', name: 'd.txt' });
    });

    it('takes the name from data.url when the subject mangled it (U+FFFD)', () => {
      const parsed = parseBlobCreatedEvent(
        event('/blobServices/default/containers/landing/blobs/log_\uFFFD\uFFFD.txt', {
          data: { url: 'https://acct.blob.core.windows.net/landing/log_%F0%9F%92%8E.txt', eTag: '0x1' },
        }),
      );
      assert.deepEqual(parsed, { blob: { container: 'landing', name: 'log_💎.txt' }, eTag: '0x1' });
    });

    it('rejects other event types, subjects that name no blob, and arrays of several events', async () => {
      await rejects(
        { ...event('/blobServices/default/containers/landing/blobs/x'), eventType: 'Microsoft.Storage.BlobDeleted' },
        /only Microsoft.Storage.BlobCreated/,
      );
      await rejects(event('/blobServices/default/containers/landing'), /does not name a blob/);
      await rejects(event(''), /does not name a blob/);
      await rejects({ eventType: 'Microsoft.Storage.BlobCreated' }, /has no subject/);
      const e = event('/blobServices/default/containers/landing/blobs/x');
      await rejects([e, e], /exactly one Event Grid event/);
      await rejects([], /exactly one Event Grid event/);
    });
  });

  describe('encrypted envelope', () => {
    it('decrypts any form inside an envelope, given as an object, JSON text or its base64', async () => {
      const kek = keys.get('local:m')!;
      const inner = { source: { container: 'landing', name: 'sealed.bin' }, deleteSource: false };
      const envelope = await encryptQueueMessage(JSON.stringify(inner), kek);
      const expected = { ...(await decode(inner)), envelope: true };
      assert.deepEqual(await decode(JSON.parse(envelope)), expected);
      assert.deepEqual(await decode(envelope), expected);
      assert.deepEqual(await decode(envelopeToBase64(envelope)), expected);
      const eventEnvelope = await encryptQueueMessage(
        JSON.stringify({
          eventType: 'Microsoft.Storage.BlobCreated',
          subject: '/blobServices/default/containers/l/blobs/e',
        }),
        kek,
      );
      assert.equal((await decode(eventEnvelope)).form, 'eventGrid');
    });

    it("reads Python's base64 plaintext (TextBase64EncodePolicy) inside the envelope", async () => {
      const kek = keys.get('local:m')!;
      const inner = Buffer.from(JSON.stringify({ content: 'aGk=', target: { name: 'p' } })).toString('base64');
      const request = await decode(await encryptQueueMessage(inner, kek));
      assert.equal(request.kind === 'inline' && request.content.toString(), 'hi');
    });

    it('fails with the key error for an unknown key, IntegrityCheckFailed when tampered, and refuses nesting', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cse-msg-other-'));
      writeFileSync(join(dir, 'k.json'), generateDevelopmentKeySet('local:other'));
      const other = (await loadLocalKeys(join(dir, 'k.json'))).get('local:other')!;
      rmSync(dir, { recursive: true, force: true });
      await rejects(
        await encryptQueueMessage('{"content":"","target":{"name":"x"}}', other),
        /local:other/,
        'KeyNotAllowed',
      );

      const kek = keys.get('local:m')!;
      const envelope = JSON.parse(await encryptQueueMessage('{"content":"","target":{"name":"x"}}', kek)) as Record<
        string,
        string
      >;
      const body = Buffer.from(envelope.EncryptedMessageContents!, 'base64');
      body[body.length - 1]! ^= 1;
      await rejects(
        { ...envelope, EncryptedMessageContents: body.toString('base64') },
        /did not decrypt/,
        'IntegrityCheckFailed',
      );

      const nested = await encryptQueueMessage(
        await encryptQueueMessage('{"content":"","target":{"name":"x"}}', kek),
        kek,
      );
      await rejects(nested, /another encrypted envelope/);
      await rejects({ EncryptedMessageContents: 'AAAA' }, /no EncryptionData/);
    });

    it('rejects a decrypted message that is not an ingestion message', async () => {
      await rejects(
        await encryptQueueMessage('hello', keys.get('local:m')!),
        /the decrypted message is not a JSON object/,
      );
    });
  });

  it('rejects messages of no known form, naming what it found', async () => {
    await rejects({ hello: 'world' }, /not an ingestion message.*"hello"/);
    await rejects({}, /members: none/);
    await rejects('plain text', /not a JSON object \(got text "plain text"\)/);
    await rejects(42, /not a JSON object \(got a JSON number\)/);
    await rejects(Buffer.from([0xff, 0xfe]), /not UTF-8 text/);
  });
});
