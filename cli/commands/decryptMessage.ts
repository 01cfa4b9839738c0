/**
 * `cse decrypt-message`: decrypts a queue-message envelope given as JSON or as its base64.
 */
import { writeFile } from 'node:fs/promises';
import { decryptQueueMessage, detectEnvelopeEncoding, envelopeFromMessageText } from '../../shared/crypto/queueMessage';
import { writeAtomically } from '../atomicOutput';
import { defineCommand } from '../command';
import { decodeUtf8, readSmallFile } from '../inputFiles';
import { loadKeyFile } from '../keyFile';

/** A 4 MiB message is ~7.5 MiB of double-base64 text; anything much larger is not a message. */
const MAX_MESSAGE_TEXT_BYTES = 16 * 1024 * 1024;

export const decryptMessageCommand = defineCommand({
  name: 'decrypt-message',
  summary: 'decrypt a queue-message envelope (JSON or its base64)',
  description: [
    'Decrypts the queue message text in TEXT, which is either the envelope JSON',
    '{"EncryptedMessageContents": ..., "EncryptionData": ...} or its base64, and writes the plaintext bytes to',
    'PLAIN. Nothing is written unless the message decrypted (v2.0: authenticated).',
  ].join('\n'),
  flags: {
    keys: { type: 'string', required: true, value: 'JWKS', description: 'JWK Set file with the key-encryption keys' },
    in: { type: 'string', required: true, value: 'TEXT', description: 'the message text (envelope JSON or base64)' },
    out: { type: 'string', required: true, value: 'PLAIN', description: 'where to write the plaintext' },
    'allow-v1': { type: 'boolean', description: 'accept legacy protocol 1.0 (AES-CBC, unauthenticated)' },
  },
  async run(flags, io) {
    const keys = await loadKeyFile(flags.keys);
    const bytes = await readSmallFile(flags.in, MAX_MESSAGE_TEXT_BYTES, 'the message file', 'InvalidMessage');
    const text = decodeUtf8(bytes, `the message file ${flags.in}`, 'InvalidMessage');
    const envelope = envelopeFromMessageText(text);
    const plaintext = await decryptQueueMessage(envelope, keys.resolver, { allowV1: flags['allow-v1'] });
    await writeAtomically([{ path: flags.out, mode: 0o600 }], ([output]) =>
      writeFile(output!.tempPath, plaintext, { flag: 'wx', mode: output!.mode }),
    );
    io.out(`decrypted ${plaintext.length} bytes (${detectEnvelopeEncoding(text)} message text) to ${flags.out}`);
  },
});
