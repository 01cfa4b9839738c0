/**
 * `cse encrypt-message`: encrypts a file's bytes as a v2.0 queue-message envelope.
 */
import { writeFile } from 'node:fs/promises';
import { encryptQueueMessage, envelopeToBase64, MAX_QUEUE_PLAINTEXT_LENGTH } from '../../shared/crypto/queueMessage';
import { writeAtomically } from '../atomicOutput';
import { defineCommand } from '../command';
import { readSmallFile } from '../inputFiles';
import { loadKeyFile } from '../keyFile';

export const encryptMessageCommand = defineCommand({
  name: 'encrypt-message',
  summary: 'encrypt a file as a queue-message envelope (JSON, or --base64 for the Functions host)',
  description: [
    'Encrypts the bytes of PLAIN (UTF-8 text for a text message) with a fresh content key wrapped by the key KID,',
    'and writes the envelope {"EncryptedMessageContents": ..., "EncryptionData": ...} (format v2.0) to TEXT.',
    "With --base64, TEXT is the envelope base64-encoded, which is what the Functions host's queue trigger",
    'expects with its default messageEncoding "base64". Azure queues take at most 64 KiB of message text.',
  ].join('\n'),
  flags: {
    keys: { type: 'string', required: true, value: 'JWKS', description: 'JWK Set file with the key-encryption keys' },
    'key-id': {
      type: 'string',
      required: true,
      value: 'KID',
      description: 'kid of the key that wraps the content key',
    },
    in: { type: 'string', required: true, value: 'PLAIN', description: 'the message content' },
    out: { type: 'string', required: true, value: 'TEXT', description: 'where to write the message text' },
    base64: { type: 'boolean', description: 'base64-encode the envelope (Functions host queue encoding)' },
  },
  async run(flags, io) {
    const keys = await loadKeyFile(flags.keys);
    const kek = keys.keyForWriting(flags['key-id']);
    const plaintext = await readSmallFile(flags.in, MAX_QUEUE_PLAINTEXT_LENGTH, 'the message file', 'InvalidMessage');
    const envelope = await encryptQueueMessage(plaintext, kek);
    const text = flags.base64 ? envelopeToBase64(envelope) : envelope;
    await writeAtomically([{ path: flags.out }], ([output]) => writeFile(output!.tempPath, text, { flag: 'wx' }));
    io.out(
      `encrypted ${plaintext.length} bytes to ${flags.out} (${Buffer.byteLength(text)} bytes of ${flags.base64 ? 'base64' : 'JSON'} message text, key ${JSON.stringify(kek.keyId)})`,
    );
  },
});
