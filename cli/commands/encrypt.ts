/**
 * `cse encrypt`: encrypts a file as a v2.0 blob body and writes the matching blob metadata
 * (`{"encryptiondata": "<JSON>"}`), both or neither. Streams: memory stays around one region.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { startBlobEncryption } from '../../shared/crypto/blobEncryption';
import { ENCRYPTION_DATA_METADATA_KEY } from '../../shared/crypto/encryptionData';
import { writeAtomically } from '../atomicOutput';
import { defineCommand } from '../command';
import { loadKeyFile } from '../keyFile';

export const encryptCommand = defineCommand({
  name: 'encrypt',
  summary: 'encrypt a file as a v2.0 blob body plus its metadata',
  description: [
    'Encrypts PLAIN with a fresh content key wrapped by the key KID from JWKS (format v2.0, AES-256-GCM in',
    '4 MiB regions). CIPHER receives the blob body to store; FILE receives the blob metadata to store with it,',
    'as {"encryptiondata": "<the encryption-data JSON>"}. Both files appear only on success.',
  ].join('\n'),
  flags: {
    keys: { type: 'string', required: true, value: 'JWKS', description: 'JWK Set file with the key-encryption keys' },
    'key-id': {
      type: 'string',
      required: true,
      value: 'KID',
      description: 'kid of the key that wraps the content key',
    },
    in: { type: 'string', required: true, value: 'PLAIN', description: 'the file to encrypt' },
    out: { type: 'string', required: true, value: 'CIPHER', description: 'where to write the encrypted blob body' },
    'metadata-out': {
      type: 'string',
      required: true,
      value: 'FILE',
      description: 'where to write the metadata JSON {"encryptiondata": ...}',
    },
  },
  async run(flags, io) {
    const keys = await loadKeyFile(flags.keys);
    const kek = keys.keyForWriting(flags['key-id']);
    const session = await startBlobEncryption(kek);
    const metadata = `${JSON.stringify({ [ENCRYPTION_DATA_METADATA_KEY]: session.metadataValue })}\n`;
    const stored = await writeAtomically(
      [{ path: flags.out }, { path: flags['metadata-out'] }],
      async ([cipherOut, metadataOut]) => {
        let count = 0;
        await pipeline(
          createReadStream(flags.in),
          (plaintext: AsyncIterable<Uint8Array>) => session.encrypt(plaintext),
          async function* (cipher: AsyncIterable<Buffer>) {
            for await (const chunk of cipher) {
              count += chunk.length;
              yield chunk;
            }
          },
          createWriteStream(cipherOut!.tempPath, { flags: 'wx' }),
        );
        await writeFile(metadataOut!.tempPath, metadata, { flag: 'wx' });
        return count;
      },
    );
    io.out(
      `encrypted ${flags.in} to ${flags.out} (${stored} bytes, protocol 2.0, key ${JSON.stringify(session.keyId)}); metadata in ${flags['metadata-out']}`,
    );
  },
});
