/**
 * `cse encrypt` / `cse decrypt` through a real child process: round trips at the region-boundary sizes,
 * ranges across regions, the Python SDK blob vectors, and failures that must leave no output behind.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadManifest, patternPlaintext, vectorPath } from '../helpers/vectors';
import {
  assertFailure,
  assertSuccess,
  CLI_MODULE,
  listDir,
  makeTempDir,
  registerSecret,
  runCse,
  secretValuesOf,
  writeKeyFile,
  writeVectorKeyFile,
} from './runCse';

const MiB = 1024 * 1024;

/** Writes argv[2] bytes into the FIFO argv[1], then holds it open (no EOF) until killed. */
const FIFO_WRITER = `
const fs = require('node:fs');
const fd = fs.openSync(process.argv[1], 'w');
fs.writeSync(fd, Buffer.alloc(Number(process.argv[2]), 7));
setInterval(() => {}, 1000);
`;
const REGION = 4 * MiB;

/** Stored size of a v2.0 blob: each 4 MiB region gains a 12-byte nonce and a 16-byte tag. */
function v2StoredLength(plainLength: number): number {
  return plainLength + 28 * Math.ceil(plainLength / REGION);
}

describe('cse encrypt / decrypt', () => {
  const tmp = makeTempDir('blobs');
  const dir = tmp.dir;
  let keys: string;
  after(() => tmp.cleanup());
  before(() => {
    keys = writeVectorKeyFile(dir);
  });

  async function encrypt(plain: string, name: string, kid = 'local:kek-1'): Promise<{ cipher: string; meta: string }> {
    const cipher = join(dir, `${name}.cipher`);
    const meta = join(dir, `${name}.meta.json`);
    assertSuccess(
      await runCse([
        'encrypt',
        '--keys',
        keys,
        '--key-id',
        kid,
        '--in',
        plain,
        '--out',
        cipher,
        '--metadata-out',
        meta,
      ]),
    );
    return { cipher, meta };
  }

  function decryptArgs(cipher: string, meta: string, out: string, ...extra: string[]): string[] {
    return ['decrypt', '--keys', keys, '--metadata', meta, '--in', cipher, '--out', out, ...extra];
  }

  describe('round trips', () => {
    for (const size of [0, 1, 15, 16, 17, REGION - 1, REGION, REGION + 1, 9 * MiB]) {
      it(`${size} bytes`, async () => {
        const content = randomBytes(size);
        const plain = join(dir, `rt-${size}.plain`);
        writeFileSync(plain, content);
        const { cipher, meta } = await encrypt(plain, `rt-${size}`);

        assert.equal(statSync(cipher).size, v2StoredLength(size));
        const metadata = JSON.parse(readFileSync(meta, 'utf8')) as Record<string, unknown>;
        assert.deepEqual(Object.keys(metadata), ['encryptiondata']);
        const data = JSON.parse(metadata['encryptiondata'] as string) as Record<string, Record<string, unknown>>;
        assert.equal(data['EncryptionAgent']!['Protocol'], '2.0');
        assert.equal(data['WrappedContentKey']!['KeyId'], 'local:kek-1');

        const out = join(dir, `rt-${size}.out`);
        const result = await runCse(decryptArgs(cipher, meta, out));
        assertSuccess(result);
        assert.match(result.stdout, new RegExp(`^decrypted ${size} bytes`));
        assert.ok(readFileSync(out).equals(content), 'plaintext restored');
        assert.equal(statSync(out).mode & 0o777, 0o600, 'decrypted output is owner-only');
      });
    }

    it('with the RSA key', async () => {
      const plain = join(dir, 'rsa.plain');
      writeFileSync(plain, 'RSA wrapped');
      const { cipher, meta } = await encrypt(plain, 'rsa', 'local:rsa-1');
      const out = join(dir, 'rsa.out');
      assertSuccess(await runCse(decryptArgs(cipher, meta, out)));
      assert.equal(readFileSync(out, 'utf8'), 'RSA wrapped');
    });
  });

  describe('ranges of a 9 MiB blob (three regions)', () => {
    const content = randomBytes(9 * MiB);
    let cipher: string;
    let meta: string;
    before(async () => {
      const plain = join(dir, 'ranged.plain');
      writeFileSync(plain, content);
      ({ cipher, meta } = await encrypt(plain, 'ranged'));
    });

    const total = 9 * MiB;
    const cases: Array<[string, number, number]> = [
      [`${REGION - 1}-${REGION}`, REGION - 1, REGION], // the last byte of region 0 and the first of region 1
      [`${REGION - 10}-${2 * REGION + 10}`, REGION - 10, 2 * REGION + 10], // all three regions
      [`${2 * REGION}-${2 * REGION}`, 2 * REGION, 2 * REGION], // the first byte of the last region
      [`${REGION}-`, REGION, total - 1],
      ['-1', total - 1, total - 1],
      [`-${total - REGION + 1}`, REGION - 1, total - 1], // a suffix starting one byte before a boundary
      [`${total - 1}-${total + 100}`, total - 1, total - 1], // end clamped to the content
      [`-${total * 2}`, 0, total - 1], // suffix longer than the content: all of it
    ];
    for (const [spec, start, end] of cases) {
      it(`--range ${spec}`, async () => {
        const out = join(dir, 'range.out');
        // `--range -n` works as two words too (parseArgs alone would call it ambiguous)
        assertSuccess(await runCse(decryptArgs(cipher, meta, out, '--range', spec)));
        assert.ok(readFileSync(out).equals(content.subarray(start, end + 1)), `bytes ${start}-${end}`);
      });
    }

    it('a range past the end is RangeNotSatisfiable (exit 1, no output)', async () => {
      const out = join(dir, 'past-end.out');
      assertFailure(await runCse(decryptArgs(cipher, meta, out, '--range', `${total}-`)), 1, /RangeNotSatisfiable/);
      assert.equal(existsSync(out), false);
    });

    for (const spec of ['5-3', 'bytes=0-1', '-']) {
      it(`a malformed --range ${JSON.stringify(spec)} is a usage error (exit 2)`, async () => {
        const out = join(dir, 'bad-range.out');
        assertFailure(
          await runCse(decryptArgs(cipher, meta, out, `--range=${spec}`)),
          2,
          /^cse decrypt: --range .*\(see `cse decrypt --help`\)$/,
        );
        assert.equal(existsSync(out), false);
      });
    }

    it('only the regions a range covers are read: a damaged first region does not stop a range in the third', async () => {
      const damaged = join(dir, 'damaged-first.cipher');
      const bytes = readFileSync(cipher);
      bytes[100]! ^= 0x01;
      writeFileSync(damaged, bytes);
      const out = join(dir, 'third.out');
      assertSuccess(await runCse(decryptArgs(damaged, meta, out, '--range', `${2 * REGION + 5}-${2 * REGION + 9}`)));
      assert.ok(readFileSync(out).equals(content.subarray(2 * REGION + 5, 2 * REGION + 10)));
      assertFailure(await runCse(decryptArgs(damaged, meta, out + '2', '--range', '0-0')), 1, /IntegrityCheckFailed/);
      assert.equal(existsSync(out + '2'), false);
    });
  });

  describe('the Python SDK blob vectors', () => {
    const vectors = loadManifest().blob;
    vectors.forEach((v, index) => {
      // Alternate the two --metadata forms: the metadata object {"encryptiondata": "..."} and the raw document.
      const [form, metaFile] =
        index % 2 === 0 ? ['metadata object', v.metadata_file] : ['raw encryption data', v.encryptiondata_file];
      it(`${v.id} decrypts (--metadata: ${form})`, async () => {
        const allow = v.protocol === '1.0' ? ['--allow-v1'] : [];
        const out = join(dir, `${v.id}.out`);
        assertSuccess(await runCse(decryptArgs(vectorPath(v.ciphertext_file), vectorPath(metaFile), out, ...allow)));
        const plain = readFileSync(out);
        assert.equal(plain.length, v.plaintext.length);
        assert.equal(createHash('sha256').update(plain).digest('hex'), v.plaintext.sha256);
      });
    });

    for (const v of vectors.filter((x) => x.plaintext.length === REGION + 5)) {
      it(`${v.id}: a range across the 4 MiB boundary`, async () => {
        const out = join(dir, `${v.id}.range`);
        const allow = v.protocol === '1.0' ? ['--allow-v1'] : [];
        const args = decryptArgs(vectorPath(v.ciphertext_file), vectorPath(v.metadata_file), out, ...allow);
        assertSuccess(await runCse([...args, '--range', `${REGION - 3}-${REGION + 2}`]));
        assert.ok(readFileSync(out).equals(patternPlaintext(REGION + 5).subarray(REGION - 3, REGION + 3)));
      });
    }

    it('a v1 vector without --allow-v1 is refused (LegacyFormatDisabled, no output)', async () => {
      const v = vectors.find((x) => x.protocol === '1.0')!;
      const out = join(dir, 'v1-refused.out');
      assertFailure(
        await runCse(decryptArgs(vectorPath(v.ciphertext_file), vectorPath(v.metadata_file), out)),
        1,
        /^cse decrypt: LegacyFormatDisabled: /,
      );
      assert.equal(existsSync(out), false);
    });
  });

  describe('failures: one line, non-zero exit, no output file left behind', () => {
    const content = randomBytes(9 * MiB);
    let cipher: string;
    let meta: string;
    let wrongKeys: string;
    before(async () => {
      const plain = join(dir, 'fail.plain');
      writeFileSync(plain, content);
      ({ cipher, meta } = await encrypt(plain, 'fail'));
      wrongKeys = writeKeyFile(
        join(dir, 'wrong-keys.json'),
        JSON.stringify({
          keys: [{ kid: 'local:kek-1', kty: 'oct', alg: 'A256KW', k: randomBytes(32).toString('base64url') }],
        }),
      );
    });

    /** Runs a failing command into a fresh output path and checks nothing at all was added to `dir`. */
    async function expectFailure(args: (out: string) => string[], exitCode: 1 | 2, reason: RegExp): Promise<void> {
      const out = join(dir, 'must-not-exist.out');
      const before = listDir(dir);
      assertFailure(await runCse(args(out)), exitCode, reason);
      assert.equal(existsSync(out), false, 'no output file');
      assert.deepEqual(listDir(dir), before, 'no temporary file left behind');
    }

    function tamperedCopy(name: string, edit: (b: Buffer) => Buffer): string {
      const path = join(dir, name);
      writeFileSync(path, edit(readFileSync(cipher)));
      return path;
    }

    it('a flipped byte in the last region (the first two regions are fine)', () => {
      const bad = tamperedCopy('flip-last.cipher', (b) => {
        b[b.length - 20]! ^= 0x80;
        return b;
      });
      return expectFailure((out) => decryptArgs(bad, meta, out), 1, /^cse decrypt: IntegrityCheckFailed: /);
    });

    it('a truncated blob', () => {
      const bad = tamperedCopy('truncated.cipher', (b) => b.subarray(0, b.length - 1));
      return expectFailure((out) => decryptArgs(bad, meta, out), 1, /^cse decrypt: [A-Za-z]+: /);
    });

    it('two swapped regions', () => {
      const region = REGION + 28;
      const bad = tamperedCopy('swapped.cipher', (b) =>
        Buffer.concat([b.subarray(region, 2 * region), b.subarray(0, region), b.subarray(2 * region)]),
      );
      return expectFailure((out) => decryptArgs(bad, meta, out), 1, /^cse decrypt: IntegrityCheckFailed: /);
    });

    it('the wrong key under the right key id', () =>
      expectFailure(
        (out) => ['decrypt', '--keys', wrongKeys, '--metadata', meta, '--in', cipher, '--out', out],
        1,
        /IntegrityCheckFailed/,
      ));

    it('a key id the key file does not have', () => {
      const doc = JSON.parse(readFileSync(meta, 'utf8')) as { encryptiondata: string };
      const edited = join(dir, 'unknown-kid.meta.json');
      writeFileSync(
        edited,
        JSON.stringify({ encryptiondata: doc.encryptiondata.replace('local:kek-1', 'local:gone') }),
      );
      return expectFailure((out) => decryptArgs(cipher, edited, out), 1, /KeyNotFound: .*local:gone/);
    });

    it('a missing input file, a missing metadata file, a missing key file', async () => {
      await expectFailure((out) => decryptArgs(join(dir, 'absent.cipher'), meta, out), 1, /ENOENT.*absent\.cipher/);
      await expectFailure((out) => decryptArgs(cipher, join(dir, 'absent.json'), out), 1, /ENOENT.*absent\.json/);
      await expectFailure(
        (out) => ['decrypt', '--keys', join(dir, 'absent-keys.json'), '--metadata', meta, '--in', cipher, '--out', out],
        1,
        /ENOENT.*absent-keys\.json/,
      );
    });

    it('metadata that is not JSON, or has no encryption data', async () => {
      const notJson = join(dir, 'not-json.meta');
      writeFileSync(notJson, 'encryptiondata: nope');
      await expectFailure((out) => decryptArgs(cipher, notJson, out), 1, /InvalidMetadata: .*not valid JSON/);
      const other = join(dir, 'other.meta.json');
      writeFileSync(other, JSON.stringify({ owner: 'someone' }));
      await expectFailure((out) => decryptArgs(cipher, other, out), 1, /NotEncrypted: .*no encryptiondata member/);
      const wrongType = join(dir, 'wrong-type.meta.json');
      writeFileSync(wrongType, JSON.stringify({ encryptiondata: { WrappedContentKey: {} } }));
      await expectFailure((out) => decryptArgs(cipher, wrongType, out), 1, /InvalidMetadata: .*must be a string/);
    });

    it('an existing output file is left untouched by a failed decrypt', async () => {
      const bad = tamperedCopy('flip-again.cipher', (b) => {
        b[b.length - 1]! ^= 0x01;
        return b;
      });
      const out = join(dir, 'existing.out');
      writeFileSync(out, 'previous content');
      assertFailure(await runCse(decryptArgs(bad, meta, out)), 1, /IntegrityCheckFailed/);
      assert.equal(readFileSync(out, 'utf8'), 'previous content');
    });

    it('encrypt: an unknown --key-id and a missing input leave neither output', async () => {
      const plain = join(dir, 'fail.plain');
      for (const [kid, input, reason] of [
        ['local:nope', plain, /^cse encrypt: KeyNotFound: .*local:nope/],
        ['local:kek-1', join(dir, 'absent.plain'), /^cse encrypt: ENOENT/],
      ] as const) {
        const before = listDir(dir);
        const out = join(dir, 'enc.out');
        const metaOut = join(dir, 'enc.meta');
        const args = [
          'encrypt',
          '--keys',
          keys,
          '--key-id',
          kid,
          '--in',
          input,
          '--out',
          out,
          '--metadata-out',
          metaOut,
        ];
        assertFailure(await runCse(args), 1, reason);
        assert.equal(existsSync(out) || existsSync(metaOut), false);
        assert.deepEqual(listDir(dir), before);
      }
    });

    it('SIGTERM mid-way removes the temporary output, then dies of SIGTERM', async (t) => {
      if (process.platform === 'win32') return t.skip('needs a FIFO');
      // A FIFO as --in keeps encrypt waiting for more plaintext (a read blocked in the thread pool) after its
      // output file was created: the case where process.exit() would hang.
      const work = join(dir, 'sigterm');
      mkdirSync(work);
      const fifo = join(work, 'in.fifo');
      execFileSync('mkfifo', [fifo]);
      const args = ['encrypt', '--keys', keys, '--key-id', 'local:kek-1', '--in', fifo];
      const child = spawn(process.execPath, [
        CLI_MODULE,
        ...args,
        ...['--out', join(work, 'c'), '--metadata-out', join(work, 'm')],
      ]);
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
        child.on('exit', (code, signal) => resolve({ code, signal })),
      );
      // The writer is a separate process, so no blocking FIFO open or write can ever hang this test process.
      const writer = spawn(process.execPath, ['-e', FIFO_WRITER, fifo, String(5 * MiB)], { stdio: 'ignore' });
      try {
        const deadline = Date.now() + 30_000;
        while (!listDir(work).some((f) => f.endsWith('.cse-tmp') && statSync(join(work, f)).size > REGION)) {
          assert.ok(Date.now() < deadline, 'the temporary output never reached one region');
          await new Promise((r) => setTimeout(r, 20));
        }
        await new Promise((r) => setTimeout(r, 200)); // let the CLI drain the FIFO and block reading it
        child.kill('SIGTERM');
        const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000).unref());
        assert.deepEqual(await Promise.race([exited, timeout]), { code: null, signal: 'SIGTERM' });
      } finally {
        child.kill('SIGKILL'); // no-ops once they exited; bound the test if they did not
        writer.kill('SIGKILL');
      }
      assert.deepEqual(listDir(work), ['in.fifo']);
    });

    it('encrypt into a directory that does not exist', async () => {
      const plain = join(dir, 'fail.plain');
      const out = join(dir, 'no-such-dir', 'x.cipher');
      const metaOut = join(dir, 'x.meta');
      const args = ['encrypt', '--keys', keys, '--key-id', 'local:kek-1', '--in', plain, '--out', out];
      assertFailure(await runCse([...args, '--metadata-out', metaOut]), 1, /ENOENT/);
      assert.equal(existsSync(metaOut), false);
    });
  });

  describe('key material never reaches the terminal', () => {
    it('a key file given where metadata is expected is not echoed', async () => {
      const out = join(dir, 'km.out');
      const cipher = join(dir, 'km.cipher');
      writeFileSync(cipher, Buffer.alloc(64));
      // runCse checks every output line against every registered secret (the keys' k, d, p, q, dp, dq, qi)
      assertFailure(await runCse(decryptArgs(cipher, keys, out)), 1, /NotEncrypted/);
      assertFailure(await runCse(['decrypt-message', '--keys', keys, '--in', keys, '--out', out]), 1, /InvalidMessage/);
    });

    it('a broken key file is not quoted', async () => {
      const secret = randomBytes(32).toString('base64url');
      registerSecret(secret);
      const broken = join(dir, 'broken-keys.json');
      const out = join(dir, 'km2.out');
      for (const text of [
        `{"keys":[{"kid":"a","kty":"oct","alg":"A256KW","k":"${secret}"`, // truncated JSON
        `{"keys":[{"kid":"a","kty":"oct","alg":"A256KW","k":"${secret}x"}]}`, // wrong length
      ]) {
        writeFileSync(broken, text);
        assertFailure(
          await runCse([
            'encrypt',
            '--keys',
            broken,
            '--key-id',
            'a',
            '--in',
            keys,
            '--out',
            out,
            '--metadata-out',
            out + '.m',
          ]),
          1,
          /^cse encrypt: InvalidKey: /,
        );
      }
    });

    it('a key value echoed by some message (here: a file named like it) is redacted', async () => {
      const k = secretValuesOf(readFileSync(keys, 'utf8'))[0]!; // the oct key's k
      const out = join(dir, 'km3.out');
      const result = await runCse(['decrypt-message', '--keys', keys, '--in', join(dir, k), '--out', out]);
      assertFailure(result, 1, /ENOENT.*\[redacted\]/);
    });

    it('a successful run prints no key material either', async () => {
      const copy = join(dir, 'keys-as-plaintext.json');
      copyFileSync(keys, copy);
      const { cipher, meta } = await encrypt(copy, 'keys-as-plaintext');
      const out = join(dir, 'keys-back.json');
      const result = await runCse(decryptArgs(cipher, meta, out));
      assertSuccess(result);
      assert.ok(readFileSync(out).equals(readFileSync(keys)));
    });
  });
});
