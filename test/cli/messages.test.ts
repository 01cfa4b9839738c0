/**
 * `cse encrypt-message` / `cse decrypt-message` through a real child process.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadManifest, vectorPath } from '../helpers/vectors';
import { assertFailure, assertSuccess, listDir, makeTempDir, runCse, writeKeyFile, writeVectorKeyFile } from './runCse';

interface QueueVector {
  id: string;
  protocol: '1.0' | '2.0';
  encrypted_payload_utf8: string;
  message_file: string;
}

const vectors = (loadManifest() as unknown as { queue: QueueVector[] }).queue;

const PYTHON = '/usr/bin/python3';

/**
 * Decrypts message files with azure-storage-queue's own decrypt_queue_message (require_encryption on). The KEKs
 * are the vector keys: A256KW with key bytes 00..1f, and the RSA key's PEM (argv[1]); RSA-OAEP is SHA-1 OAEP.
 */
const PYTHON_DECRYPT = `
import json, sys
from types import SimpleNamespace
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap
from azure.storage.queue._encryption import decrypt_queue_message

rsa = serialization.load_pem_private_key(json.load(open(sys.argv[1]))['pem'].encode(), None)
class Oct:
    def get_kid(self): return 'local:kek-1'
    def unwrap_key(self, key, alg):
        assert alg == 'A256KW', alg
        return aes_key_unwrap(bytes(range(32)), key)
class Rsa:
    def get_kid(self): return 'local:rsa-1'
    def unwrap_key(self, key, alg):
        assert alg == 'RSA-OAEP', alg
        return rsa.decrypt(key, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
keks = {'local:kek-1': Oct(), 'local:rsa-1': Rsa()}
response = SimpleNamespace(http_response=None)
out = []
for path in sys.argv[2:]:
    text = open(path, encoding='utf-8').read()
    out.append(decrypt_queue_message(text, response, True, None, keks.get))
print(json.dumps(out))
`;

describe('cse decrypt-message / encrypt-message', () => {
  const tmp = makeTempDir('messages');
  const dir = tmp.dir;
  let keys: string;
  let wrongKeys: string;
  after(() => tmp.cleanup());
  before(() => {
    keys = writeVectorKeyFile(dir);
    wrongKeys = writeKeyFile(
      join(dir, 'wrong-keys.json'),
      JSON.stringify({
        keys: [{ kid: 'local:kek-1', kty: 'oct', alg: 'A256KW', k: randomBytes(32).toString('base64url') }],
      }),
    );
  });

  vectors.forEach((v, index) => {
    // Alternate the two accepted forms of message text: the envelope JSON as stored, and its base64.
    const form = index % 2 === 0 ? 'JSON' : 'base64';
    it(`decrypts vector ${v.id} given as ${form}`, async () => {
      let input = vectorPath(v.message_file);
      if (form === 'base64') {
        input = join(dir, `${v.id}.b64`);
        writeFileSync(input, readFileSync(vectorPath(v.message_file)).toString('base64'));
      }
      const out = join(dir, `${v.id}.out`);
      const result = await runCse(['decrypt-message', '--keys', keys, '--in', input, '--out', out, '--allow-v1']);
      assertSuccess(result);
      assert.equal(readFileSync(out, 'utf8'), v.encrypted_payload_utf8);
    });
  });

  it('refuses a v1 message without --allow-v1, leaving no output', async () => {
    const v1 = vectors.find((v) => v.protocol === '1.0')!;
    const out = join(dir, 'v1.out');
    const result = await runCse(['decrypt-message', '--keys', keys, '--in', vectorPath(v1.message_file), '--out', out]);
    assertFailure(result, 1, /^cse decrypt-message: LegacyFormatDisabled: /);
    assert.equal(existsSync(out), false);
  });

  for (const base64 of [false, true]) {
    it(`round-trips text and binary content${base64 ? ' with --base64' : ''}`, async () => {
      for (const content of [Buffer.from('Hello, queue! üñï 🚀'), randomBytes(3000), Buffer.alloc(0)]) {
        const plain = join(dir, 'plain.bin');
        const text = join(dir, 'message.txt');
        const back = join(dir, 'back.bin');
        writeFileSync(plain, content);
        const args = ['encrypt-message', '--keys', keys, '--key-id', 'local:kek-1', '--in', plain, '--out', text];
        assertSuccess(await runCse(base64 ? [...args, '--base64'] : args));
        const written = readFileSync(text, 'utf8');
        const envelope = base64 ? Buffer.from(written, 'base64').toString('utf8') : written;
        const doc = JSON.parse(envelope) as { EncryptedMessageContents: string; EncryptionData: unknown };
        assert.deepEqual(Object.keys(doc), ['EncryptedMessageContents', 'EncryptionData']);
        const nonce = Buffer.from(doc.EncryptedMessageContents, 'base64').subarray(0, 12).toString('hex');
        assert.equal(nonce, '000000000100000000000000');
        assertSuccess(await runCse(['decrypt-message', '--keys', keys, '--in', text, '--out', back]));
        assert.deepEqual(readFileSync(back), content);
      }
    });
  }

  it('encrypts with the RSA key', async () => {
    const plain = join(dir, 'rsa-plain.txt');
    const text = join(dir, 'rsa-message.txt');
    const back = join(dir, 'rsa-back.txt');
    writeFileSync(plain, 'for the RSA key');
    assertSuccess(
      await runCse(['encrypt-message', '--keys', keys, '--key-id', 'local:rsa-1', '--in', plain, '--out', text]),
    );
    assertSuccess(await runCse(['decrypt-message', '--keys', keys, '--in', text, '--out', back]));
    assert.equal(readFileSync(back, 'utf8'), 'for the RSA key');
  });

  it('the official Python queue SDK decrypts what encrypt-message writes (oct and RSA keys)', async (t) => {
    if (spawnSync(PYTHON, ['-c', 'import azure.storage.queue'], { stdio: 'ignore' }).status !== 0) {
      t.skip('python3-azure is not installed in /usr/bin/python3 (.ci/run installs it)');
      return;
    }
    const content = 'from the cse CLI: üñï 🚀 <xml & "quotes">';
    const plain = join(dir, 'py-plain.txt');
    writeFileSync(plain, content);
    const messages: string[] = [];
    for (const kid of ['local:kek-1', 'local:rsa-1']) {
      const text = join(dir, `py-${kid.replace(':', '-')}.txt`);
      assertSuccess(await runCse(['encrypt-message', '--keys', keys, '--key-id', kid, '--in', plain, '--out', text]));
      messages.push(text);
    }
    const result = spawnSync(PYTHON, ['-c', PYTHON_DECRYPT, vectorPath('keks', 'kek-rsa.json'), ...messages], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), [content, content]);
  });

  describe('failures: one line, non-zero exit, no output file', () => {
    const v2 = () => vectorPath(vectors.find((v) => v.id === 'queue-v2-oct-none-1')!.message_file);

    async function expectNoOutput(args: (out: string) => string[], exitCode: 1 | 2, reason: RegExp): Promise<void> {
      const out = join(dir, 'failed.out');
      const before = listDir(dir);
      assertFailure(await runCse(args(out)), exitCode, reason);
      assert.equal(existsSync(out), false, 'no output file');
      assert.deepEqual(listDir(dir), before, 'no temporary file left behind');
    }

    it('the wrong key', () =>
      expectNoOutput(
        (out) => ['decrypt-message', '--keys', wrongKeys, '--in', v2(), '--out', out],
        1,
        /IntegrityCheckFailed/,
      ));

    it('a tampered message', async () => {
      const doc = JSON.parse(readFileSync(v2(), 'utf8')) as { EncryptedMessageContents: string };
      const body = Buffer.from(doc.EncryptedMessageContents, 'base64');
      body[20]! ^= 1;
      doc.EncryptedMessageContents = body.toString('base64');
      const tampered = join(dir, 'tampered.json');
      writeFileSync(tampered, JSON.stringify(doc));
      await expectNoOutput(
        (out) => ['decrypt-message', '--keys', keys, '--in', tampered, '--out', out],
        1,
        /^cse decrypt-message: IntegrityCheckFailed: /,
      );
    });

    it('a text that is not a message', async () => {
      const junk = join(dir, 'junk.txt');
      writeFileSync(junk, 'just some text\nover two lines\n');
      await expectNoOutput(
        (out) => ['decrypt-message', '--keys', keys, '--in', junk, '--out', out],
        1,
        /InvalidMessage: .*neither/,
      );
    });

    it('a missing input file', () =>
      expectNoOutput(
        (out) => ['decrypt-message', '--keys', keys, '--in', join(dir, 'nope.txt'), '--out', out],
        1,
        /ENOENT/,
      ));

    it('a missing key file', () =>
      expectNoOutput(
        (out) => ['decrypt-message', '--keys', join(dir, 'nokeys.json'), '--in', v2(), '--out', out],
        1,
        /ENOENT.*nokeys\.json/,
      ));

    it('an unknown --key-id', async () => {
      const plain = join(dir, 'p.txt');
      writeFileSync(plain, 'x');
      await expectNoOutput(
        (out) => ['encrypt-message', '--keys', keys, '--key-id', 'local:nope', '--in', plain, '--out', out],
        1,
        /KeyNotFound: .*local:nope/,
      );
    });

    it('a message whose key id is not in the key file', async () => {
      const doc = JSON.parse(readFileSync(v2(), 'utf8')) as {
        EncryptionData: { WrappedContentKey: { KeyId: string } };
      };
      doc.EncryptionData.WrappedContentKey.KeyId = 'local:unknown';
      const other = join(dir, 'other-kid.json');
      writeFileSync(other, JSON.stringify(doc));
      await expectNoOutput(
        (out) => ['decrypt-message', '--keys', keys, '--in', other, '--out', out],
        1,
        /KeyNotFound: .*local:unknown/,
      );
    });

    it('an unknown flag and a missing required flag (usage errors, exit 2)', async () => {
      await expectNoOutput(
        (out) => ['decrypt-message', '--keys', keys, '--in', v2(), '--out', out, '--base64'],
        2,
        /Unknown option '--base64'/,
      );
      await expectNoOutput((out) => ['decrypt-message', '--keys', keys, '--out', out], 2, /missing required flag --in/);
    });
  });
});
