/**
 * The `cse` command line itself: help, usage errors (exit 2, one line), and the bin/cse.js launcher.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { projectRoot } from '../helpers/paths';
import {
  assertFailure,
  assertSuccess,
  CLI_MODULE,
  makeTempDir,
  runCse,
  runCseInProcess,
  writeVectorKeyFile,
} from './runCse';

const USAGE_LINES = [
  'cse decrypt --keys JWKS --metadata FILE --in CIPHER --out PLAIN [--range RANGE] [--allow-v1]',
  'cse encrypt --keys JWKS --key-id KID --in PLAIN --out CIPHER --metadata-out FILE',
  'cse encrypt-message --keys JWKS --key-id KID --in PLAIN --out TEXT [--base64]',
  'cse decrypt-message --keys JWKS --in TEXT --out PLAIN [--allow-v1]',
];

describe('cse usage', () => {
  const tmp = makeTempDir('usage');
  let keys: string;
  before(() => {
    keys = writeVectorKeyFile(tmp.dir);
  });
  after(() => tmp.cleanup());

  it('--help lists every command with its exact flags, exit 0', async () => {
    for (const [words, run] of [
      [['--help'], runCse],
      [['-h'], runCseInProcess],
      [['help'], runCseInProcess],
    ] as const) {
      const result = await run(words);
      assertSuccess(result);
      for (const line of USAGE_LINES) assert.ok(result.stdout.includes(line), line);
    }
  });

  it('<command> --help prints that command, exit 0, without needing its required flags', async () => {
    for (const line of USAGE_LINES) {
      const command = line.split(' ')[1]!;
      for (const [words, run] of [
        [[command, '--help'], runCse],
        [['help', command], runCseInProcess],
      ] as const) {
        const result = await run(words);
        assertSuccess(result);
        assert.ok(result.stdout.startsWith(`Usage: ${line}\n`), result.stdout);
      }
    }
  });

  const usageErrors: Array<[string, string[], RegExp]> = [
    ['no command', [], /^cse: missing command \(see `cse --help`\)$/],
    ['an unknown command', ['decrypt-blob'], /^cse: unknown command "decrypt-blob"/],
    [
      'an unknown flag',
      ['decrypt', '--key', 'x'],
      /^cse decrypt: Unknown option '--key' \(see `cse decrypt --help`\)$/,
    ],
    ['a flag without its value', ['encrypt', '--keys'], /^cse encrypt: Option '--keys <value>' argument missing/],
    ['a value for a boolean flag', ['decrypt-message', '--allow-v1=yes'], /^cse decrypt-message: Option '--allow-v1'/],
    ['a positional argument', ['encrypt-message', 'file.txt'], /^cse encrypt-message: Unexpected argument 'file\.txt'/],
    ['a repeated flag', ['decrypt', '--in', 'a', '--in', 'b'], /^cse decrypt: --in given more than once/],
    [
      'an empty value',
      ['decrypt', '--keys', 'k', '--metadata', 'm', '--in=', '--out', 'o'],
      /^cse decrypt: --in needs a non-empty value/,
    ],
    [
      'a value starting with a dash that is not a number',
      ['decrypt', '--keys', 'k', '--metadata', 'm', '--in', '-x', '--out', 'o'],
      /^cse decrypt: Option '--in' argument is ambiguous\. .*'--in=-XYZ'/,
    ],
  ];
  for (const [name, args, reason] of usageErrors) {
    it(`${name}: one line, exit 2`, async () => assertFailure(await runCse(args), 2, reason));
  }

  it('each missing required flag is named, exit 2 (in process: a parsing matrix)', async () => {
    const full: Record<string, string[]> = {
      decrypt: ['--keys', keys, '--metadata', 'm', '--in', 'c', '--out', 'p'],
      encrypt: ['--keys', keys, '--key-id', 'k', '--in', 'p', '--out', 'c', '--metadata-out', 'm'],
      'encrypt-message': ['--keys', keys, '--key-id', 'k', '--in', 'p', '--out', 't'],
      'decrypt-message': ['--keys', keys, '--in', 't', '--out', 'p'],
    };
    for (const [command, flags] of Object.entries(full)) {
      for (let i = 0; i < flags.length; i += 2) {
        const without = [...flags.slice(0, i), ...flags.slice(i + 2)];
        assertFailure(
          await runCseInProcess([command, ...without]),
          2,
          new RegExp(`^cse ${command}: missing required flag ${flags[i]}`),
        );
      }
    }
  });

  it('bin/cse.js launches the compiled CLI from ../dist and passes its exit code on', async () => {
    const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    assert.equal(pkg.bin['cse'], 'bin/cse.js');
    // Lay out <tmp>/bin/cse.js beside <tmp>/dist -> this build's output folder, whatever outDir the tests use.
    const root = join(tmp.dir, 'package');
    mkdirSync(join(root, 'bin'), { recursive: true });
    copyFileSync(join(projectRoot(), 'bin', 'cse.js'), join(root, 'bin', 'cse.js'));
    symlinkSync(join(CLI_MODULE, '..', '..'), join(root, 'dist'), 'dir');
    const launcher = join(root, 'bin', 'cse.js');
    const help = await runCse(['--help'], launcher);
    assertSuccess(help);
    assert.ok(help.stdout.includes(USAGE_LINES[0]!));
    assertFailure(await runCse(['frobnicate'], launcher), 2, /unknown command/);
    assertFailure(
      await runCse(['decrypt-message', '--keys', keys, '--in', join(tmp.dir, 'absent'), '--out', 'x'], launcher),
      1,
      /ENOENT/,
    );
  });
});
