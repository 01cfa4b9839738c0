import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  decryptQueueMessage,
  detectEnvelopeEncoding,
  encryptQueueMessage,
  envelopeFromMessageText,
  envelopeToBase64,
  isEncryptedQueueMessage,
  MAX_QUEUE_PLAINTEXT_LENGTH,
  parseQueueEnvelope,
  QUEUE_V2_NONCE,
} from '../../../shared/crypto/queueMessage';
import { isCseError, type CseErrorCode } from '../../../shared/errors';
import type { KeyResolver } from '../../../shared/keys/kek';
import { parseJwkSet } from '../../../shared/keys/localKeys';
import { loadManifest, vectorJwkSetJson, vectorKeyRing, vectorPath } from '../../helpers/vectors';

interface QueueVector {
  id: string;
  protocol: '1.0' | '2.0';
  kid: string;
  encode_policy: 'none' | 'base64';
  plaintext: string;
  encrypted_payload_utf8: string;
  message_file: string;
  cek_hex: string;
  nonce_hex?: string;
  iv_hex?: string;
}

const vectors = (loadManifest() as unknown as { queue: QueueVector[] }).queue;
const ring = vectorKeyRing();
const octKek = ring.get('local:kek-1')!;
const rsaKek = ring.get('local:rsa-1')!;

function messageText(v: QueueVector): string {
  return readFileSync(vectorPath(v.message_file), 'utf8');
}

type Json = Record<string, unknown>;
function envelopeObject(envelope: string): { EncryptedMessageContents: string; EncryptionData: Json } {
  return JSON.parse(envelope) as { EncryptedMessageContents: string; EncryptionData: Json };
}

function withoutMembers(doc: Json, drop: { keyWrappingMetadata: boolean; encryptedKey: boolean }): Json {
  const copy = structuredClone(doc);
  if (drop.keyWrappingMetadata) delete copy['KeyWrappingMetadata'];
  if (drop.encryptedKey) delete (copy['WrappedContentKey'] as Json)['EncryptedKey'];
  return copy;
}

async function rejectsWith(promise: Promise<unknown>, code: CseErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isCseError(e), `expected a CseError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

/** Rewrites one member of an envelope (as JSON objects), keeping the rest. */
function editEnvelope(envelope: string, edit: (doc: Json) => void): string {
  const doc = JSON.parse(envelope) as Json;
  edit(doc);
  return JSON.stringify(doc);
}

function editBody(envelope: string, edit: (body: Buffer) => Buffer): string {
  return editEnvelope(envelope, (doc) => {
    const body = Buffer.from(doc['EncryptedMessageContents'] as string, 'base64');
    doc['EncryptedMessageContents'] = edit(body).toString('base64');
  });
}

function editEncryptionData(envelope: string, edit: (data: Json) => void): string {
  return editEnvelope(envelope, (doc) => edit(doc['EncryptionData'] as Json));
}

/** A resolver that fails the test if a key is ever requested. */
const untouchableResolver: KeyResolver = {
  resolve: () => Promise.reject(new Error('the key resolver must not be called')),
};

describe('queue message vectors (Python SDK output)', () => {
  it('covers v1 and v2, oct and RSA, and both encode policies', () => {
    const kinds = new Set(vectors.map((v) => `${v.protocol}/${v.kid}/${v.encode_policy}`));
    for (const kind of [
      '1.0/local:kek-1/none',
      '2.0/local:kek-1/none',
      '1.0/local:rsa-1/none',
      '2.0/local:rsa-1/none',
    ]) {
      assert.ok(kinds.has(kind), kind);
    }
    assert.ok(kinds.has('1.0/local:kek-1/base64') && kinds.has('2.0/local:kek-1/base64'));
    assert.equal(vectors.length, 11);
  });

  for (const v of vectors) {
    it(`${v.id} decrypts to its plaintext`, async () => {
      const plaintext = await decryptQueueMessage(messageText(v), ring, { allowV1: true });
      assert.equal(plaintext.toString('utf8'), v.encrypted_payload_utf8);
      const text = v.encode_policy === 'base64' ? Buffer.from(plaintext.toString('utf8'), 'base64') : plaintext;
      assert.equal(text.toString('utf8'), v.plaintext);
    });
  }

  for (const v of vectors.filter((x) => x.protocol === '1.0')) {
    it(`${v.id} is refused without allowV1, before any key is resolved`, async () => {
      await rejectsWith(
        decryptQueueMessage(messageText(v), untouchableResolver, { allowV1: false }),
        'LegacyFormatDisabled',
      );
    });
  }

  for (const v of vectors.filter((x) => x.protocol === '2.0')) {
    it(`${v.id}: with the vector's CEK and nonce our writer reproduces it`, async () => {
      const kek = v.kid === 'local:kek-1' ? octKek : rsaKek;
      const ours = await encryptQueueMessage(Buffer.from(v.encrypted_payload_utf8, 'utf8'), kek, {
        cek: Buffer.from(v.cek_hex, 'hex'),
        nonce: Buffer.from(v.nonce_hex!, 'hex'),
      });
      const theirs = envelopeObject(messageText(v));
      const mine = envelopeObject(ours);
      assert.deepEqual(Object.keys(mine), ['EncryptedMessageContents', 'EncryptionData']);
      assert.equal(mine.EncryptedMessageContents, theirs.EncryptedMessageContents);
      const isRsa = kek === rsaKek; // OAEP is randomised: only the unwrap result can match
      const drop = { keyWrappingMetadata: true, encryptedKey: isRsa };
      assert.deepEqual(withoutMembers(mine.EncryptionData, drop), withoutMembers(theirs.EncryptionData, drop));
      assert.equal(await decryptQueueMessage(ours, ring, { allowV1: false }).then(String), v.encrypted_payload_utf8);
    });
  }
});

describe('encryptQueueMessage', () => {
  it('writes the .NET nonce, a compact two-member envelope, no EncryptionMode and v2.0 encryption data', async () => {
    const envelope = await encryptQueueMessage('Hello, queue!', octKek);
    assert.equal(envelope, JSON.stringify(JSON.parse(envelope)), 'compact JSON');
    const doc = envelopeObject(envelope);
    assert.deepEqual(Object.keys(doc), ['EncryptedMessageContents', 'EncryptionData']);
    const body = Buffer.from(doc.EncryptedMessageContents, 'base64');
    assert.equal(body.subarray(0, 12).toString('hex'), '000000000100000000000000');
    assert.deepEqual(body.subarray(0, 12), QUEUE_V2_NONCE);
    assert.equal(body.length, 12 + 13 + 16);
    assert.deepEqual(Object.keys(doc.EncryptionData), [
      'WrappedContentKey',
      'EncryptionAgent',
      'EncryptedRegionInfo',
      'KeyWrappingMetadata',
    ]);
    assert.deepEqual(doc.EncryptionData['EncryptionAgent'], { Protocol: '2.0', EncryptionAlgorithm: 'AES_GCM_256' });
    assert.deepEqual(doc.EncryptionData['EncryptedRegionInfo'], { DataLength: 4194304, NonceLength: 12 });
    assert.equal((doc.EncryptionData['WrappedContentKey'] as Json)['KeyId'], 'local:kek-1');
    assert.equal((doc.EncryptionData['WrappedContentKey'] as Json)['Algorithm'], 'A256KW');
  });

  it('uses a fresh content key for every message', async () => {
    const a = envelopeObject(await encryptQueueMessage('same text', octKek));
    const b = envelopeObject(await encryptQueueMessage('same text', octKek));
    assert.notEqual(a.EncryptedMessageContents, b.EncryptedMessageContents);
  });

  const cases: Array<[string, string | Buffer]> = [
    ['empty', ''],
    ['one byte', 'a'],
    ['unicode text', 'unicode üñïçødé 🚀 <xml & "quotes">'],
    ['binary bytes', randomBytes(1000)],
    ['64 KiB', randomBytes(64 * 1024)],
    ['the maximum (one 4 MiB region)', randomBytes(MAX_QUEUE_PLAINTEXT_LENGTH)],
  ];
  for (const [name, message] of cases) {
    it(`round-trips ${name}`, async () => {
      const envelope = await encryptQueueMessage(message, octKek);
      const expected = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
      assert.deepEqual(await decryptQueueMessage(envelope, ring, { allowV1: false }), expected);
    });
  }

  it('round-trips with RSA-OAEP and RSA-OAEP-256 keys', async () => {
    assert.equal(
      String(await decryptQueueMessage(await encryptQueueMessage('rsa', rsaKek), ring, { allowV1: false })),
      'rsa',
    );
    const jwk = (JSON.parse(vectorJwkSetJson()) as { keys: Json[] }).keys.find((k) => k['kty'] === 'RSA')!;
    const ring256 = parseJwkSet(JSON.stringify({ keys: [{ ...jwk, kid: 'rsa-256', alg: 'RSA-OAEP-256' }] }), 'test');
    const envelope = await encryptQueueMessage('rsa 256', ring256.get('rsa-256')!);
    assert.equal((envelopeObject(envelope).EncryptionData['WrappedContentKey'] as Json)['Algorithm'], 'RSA-OAEP-256');
    assert.equal(String(await decryptQueueMessage(envelope, ring256, { allowV1: false })), 'rsa 256');
  });

  it('refuses a message larger than one region, and bad injected values', async () => {
    await rejectsWith(
      encryptQueueMessage(Buffer.alloc(MAX_QUEUE_PLAINTEXT_LENGTH + 1), octKek),
      'InvalidMessage',
      /at most/,
    );
    await rejectsWith(encryptQueueMessage('x', octKek, { nonce: Buffer.alloc(16) }), 'InvalidMessage', /nonce/);
    await rejectsWith(encryptQueueMessage('x', octKek, { cek: Buffer.alloc(16) }), 'InvalidKey');
  });

  it('does not modify a caller-supplied content key', async () => {
    const cek = randomBytes(32);
    const copy = Buffer.from(cek);
    await encryptQueueMessage('x', octKek, { cek });
    assert.deepEqual(cek, copy);
  });
});

describe('decryptQueueMessage: tampering never yields plaintext', () => {
  const plaintext = 'attack at dawn, bring the queue';

  it('every flipped byte of nonce, ciphertext or tag (ours and the Python vector)', async () => {
    const python = messageText(vectors.find((v) => v.id === 'queue-v2-oct-none-1')!);
    for (const envelope of [await encryptQueueMessage(plaintext, octKek), python]) {
      const length = Buffer.from(envelopeObject(envelope).EncryptedMessageContents, 'base64').length;
      for (let i = 0; i < length; i++) {
        const tampered = editBody(envelope, (b) => {
          b[i]! ^= 0x01;
          return b;
        });
        await rejectsWith(decryptQueueMessage(tampered, ring, { allowV1: false }), 'IntegrityCheckFailed');
      }
    }
  });

  it('a truncated, extended or emptied body', async () => {
    const envelope = await encryptQueueMessage(plaintext, octKek);
    const edits: Array<(b: Buffer) => Buffer> = [
      (b) => b.subarray(0, b.length - 1),
      (b) => b.subarray(0, 27),
      (b) => b.subarray(0, 12),
      () => Buffer.alloc(0),
      (b) => Buffer.concat([b, Buffer.from([0])]),
    ];
    for (const edit of edits) {
      await rejectsWith(
        decryptQueueMessage(editBody(envelope, edit), ring, { allowV1: false }),
        'IntegrityCheckFailed',
      );
    }
  });

  it('edited encryption data: Protocol, KeyId, EncryptedKey, Algorithm, EncryptionAlgorithm', async () => {
    const envelope = await encryptQueueMessage(plaintext, octKek);
    const wck = (d: Json) => d['WrappedContentKey'] as Json;
    const agent = (d: Json) => d['EncryptionAgent'] as Json;
    const cases: Array<[string, (d: Json) => void, CseErrorCode]> = [
      ['Protocol 2.1 (unwrap prefix no longer matches)', (d) => (agent(d)['Protocol'] = '2.1'), 'IntegrityCheckFailed'],
      ['Protocol 1.0 (no IV)', (d) => (agent(d)['Protocol'] = '1.0'), 'UnsupportedProtocol'],
      ['Protocol 3.0', (d) => (agent(d)['Protocol'] = '3.0'), 'UnsupportedProtocol'],
      ['EncryptionAlgorithm', (d) => (agent(d)['EncryptionAlgorithm'] = 'AES_CBC_256'), 'UnsupportedProtocol'],
      ['KeyId', (d) => (wck(d)['KeyId'] = 'local:other'), 'KeyNotFound'],
      [
        'EncryptedKey',
        (d) => {
          const k = Buffer.from(wck(d)['EncryptedKey'] as string, 'base64');
          k[5]! ^= 0x80;
          wck(d)['EncryptedKey'] = k.toString('base64');
        },
        'IntegrityCheckFailed',
      ],
      ['Algorithm (unknown)', (d) => (wck(d)['Algorithm'] = 'A128KW'), 'UnsupportedAlgorithm'],
    ];
    for (const [name, edit, code] of cases) {
      const tampered = editEncryptionData(envelope, edit);
      await assert.rejects(decryptQueueMessage(tampered, ring, { allowV1: true }), (e: unknown) => {
        assert.ok(isCseError(e), name);
        // Protocol 1.0 on a v2 envelope is reported as a malformed document (no ContentEncryptionIV) or a
        // mismatched algorithm, depending on which check comes first; both are typed refusals.
        if (name.startsWith('Protocol 1.0'))
          assert.ok(['UnsupportedProtocol', 'InvalidEncryptionData'].includes(e.code), name);
        else assert.equal(e.code, code, `${name}: ${e.code} ${e.message}`);
        return true;
      });
    }
  });

  it('Algorithm RSA-OAEP on an A256KW-wrapped key is refused', async () => {
    const envelope = await encryptQueueMessage(plaintext, octKek);
    const tampered = editEncryptionData(envelope, (d) => ((d['WrappedContentKey'] as Json)['Algorithm'] = 'RSA-OAEP'));
    await assert.rejects(decryptQueueMessage(tampered, ring, { allowV1: false }), (e: unknown) => isCseError(e));
  });

  it('the wrong key with the right id', async () => {
    const wrongRing = parseJwkSet(
      JSON.stringify({
        keys: [{ kid: 'local:kek-1', kty: 'oct', alg: 'A256KW', k: randomBytes(32).toString('base64url') }],
      }),
      'wrong',
    );
    for (const v of vectors.filter((x) => x.kid === 'local:kek-1')) {
      await rejectsWith(decryptQueueMessage(messageText(v), wrongRing, { allowV1: true }), 'IntegrityCheckFailed');
    }
  });

  it('v1: a body that is not whole blocks, and bad padding, fail exactly like any other failure', async () => {
    const v1 = messageText(vectors.find((v) => v.id === 'queue-v1-oct-none-0')!);
    const messages = new Set<string>();
    const attempts = [
      editBody(v1, (b) => b.subarray(0, b.length - 1)),
      editBody(v1, () => Buffer.alloc(0)),
      // 'Hello, queue!' is one block padded with 03 03 03; XOR-ing the IV's last byte with 0x04 makes it 07: invalid.
      editEncryptionData(v1, (d) => {
        const iv = Buffer.from(d['ContentEncryptionIV'] as string, 'base64');
        iv[15]! ^= 0x04;
        d['ContentEncryptionIV'] = iv.toString('base64');
      }),
    ];
    for (const tampered of attempts) {
      await assert.rejects(decryptQueueMessage(tampered, ring, { allowV1: true }), (e: unknown) => {
        assert.ok(isCseError(e, 'IntegrityCheckFailed'));
        messages.add(e.message);
        return true;
      });
    }
    assert.equal(messages.size, 1, 'one message for every v1 failure (no padding oracle)');
  });
});

describe('parseQueueEnvelope: malformed envelopes say what is wrong', () => {
  const valid = JSON.parse(messageText(vectors.find((v) => v.id === 'queue-v2-oct-none-1')!)) as Json;
  const cases: Array<[string, string, CseErrorCode, RegExp]> = [
    ['not JSON', 'hello', 'InvalidMessage', /not JSON/],
    ['an array', '[1,2]', 'InvalidMessage', /not a JSON object/],
    ['JSON null', 'null', 'InvalidMessage', /not a JSON object/],
    [
      'no EncryptedMessageContents',
      JSON.stringify({ EncryptionData: valid['EncryptionData'] }),
      'InvalidMessage',
      /no EncryptedMessageContents/,
    ],
    [
      'no EncryptionData',
      JSON.stringify({ EncryptedMessageContents: valid['EncryptedMessageContents'] }),
      'InvalidMessage',
      /no EncryptionData/,
    ],
    [
      'contents not a string',
      JSON.stringify({ ...valid, EncryptedMessageContents: 42 }),
      'InvalidMessage',
      /base64 string/,
    ],
    [
      'contents not base64',
      JSON.stringify({ ...valid, EncryptedMessageContents: 'not*base64' }),
      'InvalidMessage',
      /not valid base64/,
    ],
    ['an extra member', JSON.stringify({ ...valid, Extra: 1 }), 'InvalidMessage', /unexpected member "Extra"/],
    [
      'EncryptionData not an object',
      JSON.stringify({ ...valid, EncryptionData: 'x' }),
      'InvalidEncryptionData',
      /JSON object/,
    ],
    [
      'EncryptionData without WrappedContentKey',
      JSON.stringify({
        ...valid,
        EncryptionData: { ...(valid['EncryptionData'] as Json), WrappedContentKey: undefined },
      }),
      'InvalidEncryptionData',
      /WrappedContentKey/,
    ],
  ];
  for (const [name, text, code, message] of cases) {
    it(name, async () => {
      assert.throws(
        () => parseQueueEnvelope(text),
        (e: unknown) => isCseError(e, code) && message.test(e.message),
      );
      await rejectsWith(decryptQueueMessage(text, untouchableResolver, { allowV1: true }), code, message);
    });
  }

  it('accepts .NET-style escapes and any member order', async () => {
    const v = vectors.find((x) => x.id === 'queue-v2-oct-none-6')!;
    const doc = JSON.parse(messageText(v)) as Json;
    // .NET's Utf8JsonWriter escapes '+' (which here occurs only inside base64 strings) as \u002B
    const reordered =
      `{"EncryptionData":${JSON.stringify(doc['EncryptionData'])},"EncryptedMessageContents":${JSON.stringify(doc['EncryptedMessageContents'])}}`.replace(
        /\+/g,
        '\\u002B',
      );
    assert.ok(reordered.includes('"EncryptedKey":"') && reordered.includes('\\u002B'));
    assert.equal(String(await decryptQueueMessage(reordered, ring, { allowV1: false })), v.plaintext);
  });
});

describe('base64 message text (Functions host messageEncoding)', () => {
  it('envelopeToBase64 / envelopeFromMessageText round-trip, and JSON passes through', async () => {
    const envelope = await encryptQueueMessage('hi', octKek);
    const b64 = envelopeToBase64(envelope);
    assert.equal(Buffer.from(b64, 'base64').toString('utf8'), envelope);
    assert.equal(envelopeFromMessageText(b64), envelope);
    assert.equal(envelopeFromMessageText(envelope), envelope);
    assert.equal(detectEnvelopeEncoding(b64), 'base64');
    assert.equal(detectEnvelopeEncoding(envelope), 'json');
    // as written by `base64` (76-column lines, trailing newline)
    const wrapped = `${b64.replace(/.{76}/g, '$&\n')}\n`;
    assert.equal(envelopeFromMessageText(wrapped), envelope);
  });

  it('handles a maximum-size message in base64 form (linear-time base64 checks)', async () => {
    const message = randomBytes(MAX_QUEUE_PLAINTEXT_LENGTH);
    const text = envelopeToBase64(await encryptQueueMessage(message, octKek));
    assert.equal(isEncryptedQueueMessage(text), true);
    assert.deepEqual(await decryptQueueMessage(envelopeFromMessageText(text), ring, { allowV1: false }), message);
  });

  it('rejects text that is neither form', () => {
    for (const text of ['', 'hello world', 'aGVsbG8=' /* base64 of "hello" */, '////']) {
      assert.equal(detectEnvelopeEncoding(text), undefined, text);
      assert.throws(
        () => envelopeFromMessageText(text),
        (e: unknown) => isCseError(e, 'InvalidMessage'),
      );
    }
  });

  it('isEncryptedQueueMessage recognises both forms and nothing else', async () => {
    const envelope = await encryptQueueMessage('hi', octKek);
    assert.equal(isEncryptedQueueMessage(envelope), true);
    assert.equal(isEncryptedQueueMessage(envelopeToBase64(envelope)), true);
    assert.equal(isEncryptedQueueMessage('{"EncryptedMessageContents":"x"}'), false);
    assert.equal(isEncryptedQueueMessage('{"a":1}'), false);
    assert.equal(isEncryptedQueueMessage('plain text'), false);
    assert.equal(isEncryptedQueueMessage(envelopeToBase64('{"a":1}')), false);
  });
});
