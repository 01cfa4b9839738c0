/**
 * Crypto benchmark (run by bench/run.ts; alone: `node dist/bench/crypto.bench.js`).
 *
 * 1. Throughput of the v2 writer and reader beside raw node AES-256-GCM (`crypto.createCipheriv` /
 *    `createDecipheriv`, one cipher per 4 MiB region, the least work the format allows) on the same bytes, in
 *    the same process, alternating, median of several runs. Reported as a ratio: library / raw.
 * 2. Peak memory (RSS) of streaming encrypt → decrypt of 16 MiB … 1 GiB, each size in a fresh child process.
 *    The input is generated on the fly (one 1 MiB buffer yielded repeatedly); nothing holds the whole content.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { openBlobDecryption } from '../shared/crypto/blobDecryption';
import { regionNonce, startBlobEncryption } from '../shared/crypto/blobEncryption';
import { REGION_LENGTH, TAG_LENGTH, NONCE_LENGTH, v2CipherLength } from '../shared/crypto/regionMath';
import { generateDevelopmentKeySet, parseJwkSet } from '../shared/keys/localKeys';

const MiB = 1024 * 1024;
const CHUNK = MiB; // what a network or file stream typically delivers
const ENCRYPT_BYTES = 256 * MiB;
const DECRYPT_BYTES = 128 * MiB;
const RUNS = 9;
const MEMORY_SIZES = [16 * MiB, 64 * MiB, 256 * MiB, 1024 * MiB];
/**
 * Growth of peak RSS from the smallest to the largest size (64× the input) still called flat: a constant, far
 * below the input. RSS creeps by a few tens of MiB with the amount of data streamed because glibc's malloc
 * raises its mmap threshold and keeps freed 1 MiB output buffers in a fragmented heap (with
 * MALLOC_MMAP_THRESHOLD_=131072 the creep mostly disappears); the Buffers the process holds stay level.
 */
const FLAT_TOLERANCE = 32 * MiB;

const keys = parseJwkSet(generateDevelopmentKeySet('bench:kek'), 'bench');
const kek = keys.get('bench:kek')!;
const block = randomBytes(CHUNK);

/** `total` bytes as CHUNK-sized pieces of one buffer: generated on the fly, never held. */
async function* source(total: number): AsyncGenerator<Buffer> {
  for (let sent = 0; sent < total; sent += CHUNK) yield block.subarray(0, Math.min(CHUNK, total - sent));
}

// ---------------------------------------------------------------------------------------------------------------
// Throughput

/** Consumes a stream the way a caller would (each chunk handed over, then dropped). */
async function drain(stream: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const chunk of stream) n += chunk.length;
  return n;
}

async function libraryEncrypt(cek: Buffer): Promise<number> {
  const session = await startBlobEncryption(kek, { cek });
  return drain(session.encrypt(source(ENCRYPT_BYTES)));
}

/**
 * Raw AES-256-GCM as a stream over the same chunks: one cipher per region, nonce and tag emitted, no library
 * code. (A stream, not a loop that drops each output at once: node is several times slower when update()
 * outputs are freed immediately, an allocator effect that would flatter the library.)
 */
async function* rawEncryptStream(cek: Buffer): AsyncGenerator<Buffer> {
  let region = 0;
  let filled = 0;
  let cipher = createCipheriv('aes-256-gcm', cek, regionNonce(0));
  yield regionNonce(0);
  for await (const chunk of source(ENCRYPT_BYTES)) {
    // CHUNK divides REGION_LENGTH, so a chunk never straddles a region boundary.
    yield cipher.update(chunk);
    filled += chunk.length;
    if (filled === REGION_LENGTH) {
      cipher.final();
      yield cipher.getAuthTag();
      cipher = createCipheriv('aes-256-gcm', cek, regionNonce(++region));
      filled = 0;
      yield regionNonce(region);
    }
  }
  if (filled > 0) {
    cipher.final();
    yield cipher.getAuthTag();
  }
}

async function libraryDecrypt(metadataValue: string, stored: Buffer): Promise<number> {
  const d = await openBlobDecryption(metadataValue, keys, { allowV1: false });
  return drain(d.decryptRange(chunks(stored), d.planWhole(stored.length)));
}

async function* chunks(stored: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < stored.length; i += CHUNK) yield stored.subarray(i, i + CHUNK);
}

/**
 * Raw AES-256-GCM decryption of the same stored regions: handed whole regions (no stream parsing), ciphertext
 * fed in CHUNK pieces like the library gets it, plaintext yielded before its tag is checked (which the library
 * must not do): the least work decryption can be.
 */
async function* rawDecryptStream(cek: Buffer, stored: Buffer): AsyncGenerator<Buffer> {
  const regionStored = REGION_LENGTH + NONCE_LENGTH + TAG_LENGTH;
  for (let off = 0; off < stored.length; off += regionStored) {
    const region = stored.subarray(off, Math.min(off + regionStored, stored.length));
    const decipher = createDecipheriv('aes-256-gcm', cek, region.subarray(0, NONCE_LENGTH));
    const ciphertext = region.subarray(NONCE_LENGTH, region.length - TAG_LENGTH);
    for (let i = 0; i < ciphertext.length; i += CHUNK) yield decipher.update(ciphertext.subarray(i, i + CHUNK));
    decipher.setAuthTag(region.subarray(region.length - TAG_LENGTH));
    decipher.final();
  }
}

/**
 * The same pipeline shape as the memory measurement of the library (encrypt stream → decrypt stream), with raw
 * node ciphers: the floor of what streaming through node's crypto costs in memory.
 */
async function* rawRoundTrip(cek: Buffer, size: number): AsyncGenerator<Buffer> {
  let region = 0;
  let filled = 0;
  let cipher = createCipheriv('aes-256-gcm', cek, regionNonce(0));
  let decipher = createDecipheriv('aes-256-gcm', cek, regionNonce(0));
  for await (const chunk of source(size)) {
    yield decipher.update(cipher.update(chunk));
    filled += chunk.length;
    if (filled === REGION_LENGTH || region * REGION_LENGTH + filled === size) {
      cipher.final();
      decipher.setAuthTag(cipher.getAuthTag());
      decipher.final();
      region++;
      filled = 0;
      cipher = createCipheriv('aes-256-gcm', cek, regionNonce(region));
      decipher = createDecipheriv('aes-256-gcm', cek, regionNonce(region));
    }
  }
}

/**
 * CPU seconds (user + system) spent by this process running f. The benchmark machines are shared; wall time
 * there mostly measures the neighbours, CPU time measures the work.
 */
async function timed(f: () => Promise<number>): Promise<{ seconds: number; bytes: number }> {
  (globalThis as { gc?: () => void }).gc?.();
  const start = process.cpuUsage();
  const bytes = await f();
  const used = process.cpuUsage(start);
  return { seconds: (used.user + used.system) / 1e6, bytes };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs library and raw alternately (after one warm-up each); returns median throughputs in MiB/s. */
async function compare(
  plainBytes: number,
  library: () => Promise<number>,
  raw: () => Promise<number>,
): Promise<{ library: number; raw: number }> {
  await library();
  await raw();
  const lib: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    lib.push((await timed(library)).seconds);
    base.push((await timed(raw)).seconds);
  }
  return { library: plainBytes / MiB / median(lib), raw: plainBytes / MiB / median(base) };
}

// ---------------------------------------------------------------------------------------------------------------
// Memory (child process per size)

async function memoryChild(size: number, raw: boolean): Promise<void> {
  let stream: AsyncIterable<Buffer>;
  if (raw) {
    stream = rawRoundTrip(randomBytes(32), size);
  } else {
    const session = await startBlobEncryption(kek);
    const d = await openBlobDecryption(session.metadataValue, keys, { allowV1: false });
    stream = d.decryptRange(session.encrypt(source(size)), d.planWhole(v2CipherLength(size)));
  }
  // Peak of the Buffers alive in the process (what the code holds plus garbage not yet collected), sampled.
  let out = 0;
  let peakBuffers = 0;
  let n = 0;
  for await (const chunk of stream) {
    out += chunk.length;
    if (++n % 4 === 0) peakBuffers = Math.max(peakBuffers, process.memoryUsage().arrayBuffers);
  }
  if (out !== size) throw new Error(`round trip produced ${out} bytes, expected ${size}`);
  process.stdout.write(JSON.stringify({ size, maxRssBytes: peakRss(), peakBuffers }));
}

/**
 * This process's peak RSS. Linux keeps getrusage's maxrss across exec, so a child would report its parent's
 * peak; /proc/self/status VmHWM belongs to this process image only. Elsewhere fall back to maxRSS.
 */
function peakRss(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m !== null) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

function measureMemory(size: number, raw: boolean): { rss: number; buffers: number } {
  const args = [__filename, '--memory-child', String(size), raw ? 'raw' : 'library'];
  const child = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`memory child for ${size} bytes failed: ${child.stderr}`);
  const result = JSON.parse(child.stdout) as { maxRssBytes: number; peakBuffers: number };
  return { rss: result.maxRssBytes, buffers: result.peakBuffers };
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const memory = MEMORY_SIZES.map((size) => {
    const library = measureMemory(size, false);
    return { size, rss: library.rss, buffers: library.buffers, raw: measureMemory(size, true).rss };
  });
  const cek = randomBytes(32);
  const enc = await compare(
    ENCRYPT_BYTES,
    () => libraryEncrypt(cek),
    () => drain(rawEncryptStream(cek)),
  );

  const session = await startBlobEncryption(kek, { cek });
  const parts: Buffer[] = [];
  for await (const p of session.encrypt(source(DECRYPT_BYTES))) parts.push(p);
  const stored = Buffer.concat(parts);
  parts.length = 0;
  const dec = await compare(
    DECRYPT_BYTES,
    () => libraryDecrypt(session.metadataValue, stored),
    () => drain(rawDecryptStream(cek, stored)),
  );

  const growth = (pick: (m: (typeof memory)[number]) => number) => pick(memory.at(-1)!) - pick(memory[0]!);
  const libGrowth = growth((m) => m.rss);
  const rawGrowth = growth((m) => m.raw);
  const bufferGrowth = growth((m) => m.buffers);
  const flat = libGrowth <= FLAT_TOLERANCE;

  const f1 = (x: number) => x.toFixed(1);
  const f2 = (x: number) => x.toFixed(2);
  const encRatio = enc.library / enc.raw;
  const decRatio = dec.library / dec.raw;
  const lines = [
    '## Crypto',
    '',
    `v2 (AES-256-GCM, 4 MiB regions), input streamed in ${CHUNK / MiB} MiB chunks. Throughput is MiB per CPU second`,
    `(user + system of the benchmark process: the machines are shared, so wall time would measure the neighbours),`,
    `median of ${RUNS} alternating runs after a warm-up. Raw = node \`createCipheriv\`/\`createDecipheriv('aes-256-gcm')\``,
    `with one cipher per region on the same bytes (decrypt: handed whole regions, no tag wait). Encrypt:`,
    `${ENCRYPT_BYTES / MiB} MiB; decrypt: ${DECRYPT_BYTES / MiB} MiB.`,
    '',
    '| operation | library MiB/s | raw MiB/s | library / raw |',
    '|---|---:|---:|---:|',
    `| encrypt | ${f1(enc.library)} | ${f1(enc.raw)} | ${f2(encRatio)} |`,
    `| decrypt | ${f1(dec.library)} | ${f1(dec.raw)} | ${f2(decRatio)} |`,
    '',
    'Peak memory of one process streaming encrypt → decrypt (input generated on the fly, never held), a fresh',
    'process per size. RSS is the VmHWM high-water mark; "Buffers" the sampled peak of live ArrayBuffer memory',
    '(held data plus garbage awaiting collection); "raw" is the same pipeline with bare node ciphers.',
    '',
    '| input | library peak RSS MiB | library peak Buffers MiB | raw peak RSS MiB |',
    '|---:|---:|---:|---:|',
    ...memory.map((m) => `| ${m.size / MiB} MiB | ${f1(m.rss / MiB)} | ${f1(m.buffers / MiB)} | ${f1(m.raw / MiB)} |`),
    '',
    `From ${MEMORY_SIZES[0]! / MiB} MiB to ${MEMORY_SIZES.at(-1)! / MiB} MiB of input, peak RSS grows ${f1(libGrowth / MiB)} MiB ` +
      `(raw ciphers: ${f1(rawGrowth / MiB)} MiB; live Buffers: ${f1(bufferGrowth / MiB)} MiB): ` +
      `${flat ? 'flat' : 'NOT flat'} (criterion: under ${FLAT_TOLERANCE / MiB} MiB for 64× the input).`,
    `Target library ≥ 0.9 × raw: encrypt ${encRatio >= 0.9 ? 'met' : 'NOT met'}, decrypt ${decRatio >= 0.9 ? 'met' : 'NOT met'}.`,
  ];
  console.log(lines.join('\n'));
}

if (process.argv[2] === '--memory-child') {
  memoryChild(Number(process.argv[3]), process.argv[4] === 'raw').catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
