/**
 * `cse decrypt`: decrypts a stored blob (v2.0/v2.1, or v1.0 with --allow-v1), whole or a plaintext byte range.
 * The ciphertext is read by position and streamed through the decryptor, so memory stays around one region
 * whatever the file size, and only the regions that cover the range are read.
 */
import { createWriteStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { openBlobDecryption, type BlobDecryptor, type CipherRangePlan } from '../../shared/crypto/blobDecryption';
import { parseRangeSpec, resolveRange, type RangeRequest } from '../../shared/crypto/httpRange';
import { CseError, isCseError } from '../../shared/errors';
import { UsageError } from '../args';
import { writeAtomically } from '../atomicOutput';
import { defineCommand } from '../command';
import { readExactly } from '../inputFiles';
import { loadKeyFile } from '../keyFile';
import { readEncryptionDataFile } from '../metadataFile';

export const decryptCommand = defineCommand({
  name: 'decrypt',
  summary: 'decrypt a stored blob (whole or a byte range) with its encryption metadata',
  description: [
    'Decrypts CIPHER, the whole blob as stored, using the encryption data in FILE: either the blob metadata as a',
    'JSON object with an "encryptiondata" string member (what `cse encrypt` writes), or the encryption-data JSON',
    'itself. RANGE is a plaintext byte range in HTTP form: a-b (inclusive), a- (to the end) or -n (the last n).',
    'Nothing is written unless every byte authenticated: the output appears only on success.',
  ].join('\n'),
  flags: {
    keys: { type: 'string', required: true, value: 'JWKS', description: 'JWK Set file with the key-encryption keys' },
    metadata: { type: 'string', required: true, value: 'FILE', description: 'blob metadata or encryption-data JSON' },
    in: { type: 'string', required: true, value: 'CIPHER', description: 'the stored (encrypted) blob' },
    out: { type: 'string', required: true, value: 'PLAIN', description: 'where to write the plaintext' },
    range: { type: 'string', value: 'RANGE', description: 'plaintext byte range: a-b, a- or -n' },
    'allow-v1': { type: 'boolean', description: 'accept legacy protocol 1.0 (AES-CBC, unauthenticated)' },
  },
  async run(flags, io) {
    const range = flags.range === undefined ? undefined : parseRangeFlag(flags.range);
    const keys = await loadKeyFile(flags.keys);
    const metadataValue = await readEncryptionDataFile(flags.metadata);
    const decryptor = await openBlobDecryption(metadataValue, keys.resolver, { allowV1: flags['allow-v1'] });

    const input = await open(flags.in, 'r');
    try {
      const { size: cipherLength } = await input.stat();
      const plan =
        range === undefined
          ? decryptor.planWhole(cipherLength)
          : decryptor.planRange(
              await resolvePlaintextRange(decryptor, input, cipherLength, range, flags.range!),
              cipherLength,
            );
      const written = await writeAtomically([{ path: flags.out, mode: 0o600 }], async ([output]) => {
        let count = 0;
        await pipeline(
          decryptPlan(decryptor, input, plan),
          async function* (plaintext: AsyncIterable<Buffer>) {
            for await (const chunk of plaintext) {
              count += chunk.length;
              yield chunk;
            }
          },
          createWriteStream(output!.tempPath, { flags: 'wx', mode: output!.mode }),
        );
        return count;
      });
      io.out(
        `decrypted ${written} bytes (protocol ${decryptor.protocol}, key ${JSON.stringify(decryptor.keyId)}) to ${flags.out}`,
      );
    } finally {
      await input.close();
    }
  },
});

function parseRangeFlag(spec: string): RangeRequest {
  try {
    return parseRangeSpec(spec);
  } catch (e) {
    if (isCseError(e, 'InvalidRange')) throw new UsageError(`--range ${JSON.stringify(spec)}: ${e.message}`);
    throw e;
  }
}

/** The inclusive plaintext span of `range`; RangeNotSatisfiable when it lies outside the plaintext. */
async function resolvePlaintextRange(
  decryptor: BlobDecryptor,
  input: FileHandle,
  cipherLength: number,
  range: RangeRequest,
  spec: string,
): Promise<{ start: number; end: number }> {
  // v2: arithmetic on the stored length; v1: decrypts the last block to learn the padding.
  const plainLength = await decryptor.plaintextLength(cipherLength, (offset, count) =>
    readExactly(input, offset, count),
  );
  const resolved = resolveRange(range, plainLength);
  if (resolved === 'unsatisfiable') {
    throw new CseError(
      'RangeNotSatisfiable',
      `range ${JSON.stringify(spec)} lies outside the plaintext, which is ${plainLength} bytes`,
    );
  }
  return resolved;
}

async function* decryptPlan(
  decryptor: BlobDecryptor,
  input: FileHandle,
  plan: CipherRangePlan,
): AsyncGenerator<Buffer> {
  // Only the one contiguous stored range the plan names is read, through a stream (memory ~ one region).
  const source =
    plan.cipherCount === 0
      ? undefined
      : input.createReadStream({
          start: plan.cipherOffset,
          end: plan.cipherOffset + plan.cipherCount - 1,
          autoClose: false,
          highWaterMark: 1024 * 1024,
        });
  try {
    yield* decryptor.decryptRange(source ?? emptyChunks(), plan);
  } finally {
    source?.destroy();
  }
}

async function* emptyChunks(): AsyncGenerator<Uint8Array> {
  // no stored bytes to read
}
