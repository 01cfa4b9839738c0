import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueueServiceClient } from '@azure/storage-queue';
import { AZURITE_ACCOUNT_KEY, startAzurite, type RunningAzurite } from '../helpers/azurite';
import {
  isProcessAlive,
  runLocalHostUntilExit,
  startLocalHost,
  testApp,
  type RunningLocalHost,
} from '../helpers/localHost';

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(50);
  }
}

const minimal = { main: testApp('minimalApp') };

describe('local host start-up and shutdown', { concurrency: true }, () => {
  let azurite: RunningAzurite;
  before(async () => {
    azurite = await startAzurite();
  });
  after(() => azurite?.stop());

  it('starts an embedded Azurite on free ports when AzureWebJobsStorage is unset, with a development key ring', async () => {
    const host = await startLocalHost({ ...minimal, shutdownSeconds: 20, env: { MINIMAL_QUEUE: 'embedded-q' } });
    let azuritePid: number | undefined;
    try {
      azuritePid = host.azuritePid;
      assert.ok(azuritePid && isProcessAlive(azuritePid), 'Azurite runs');
      assert.match(host.connectionString, /^DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;/);
      for (const port of host.connectionString.match(/127\.0\.0\.1:(\d+)/g) ?? []) {
        assert.ok(!/:1000[0-2]$/.test(port), `not a default Azurite port: ${port}`);
      }
      assert.ok(existsSync(join(host.root, '.local', 'azurite')), 'data under .local/azurite');
      assert.equal(host.logs.filter((l) => l.includes('Local host ready at')).length, 1, 'one ready line');
      assert.match(
        host.logs.find((l) => l.includes('Local host ready at')) ?? '',
        /Try: curl http:\/\/localhost:\d+\//,
      );

      // The embedded Azurite serves the app: a queue message is processed.
      const queue = QueueServiceClient.fromConnectionString(host.connectionString).getQueueClient('embedded-q');
      await queue.createIfNotExists();
      await queue.sendMessage(Buffer.from('via embedded Azurite').toString('base64'));
      await host.waitForLog('"input":"via embedded Azurite"');

      // The development key ring: one A256KW key, given to the app, never printed.
      const ringFile = join(host.root, '.local', 'dev-keys.json');
      const ring = JSON.parse(readFileSync(ringFile, 'utf8')) as { keys: Record<string, string>[] };
      assert.equal(ring.keys.length, 1);
      const key = ring.keys[0]!;
      assert.deepEqual({ kid: key.kid, kty: key.kty, alg: key.alg }, { kid: 'local:dev-1', kty: 'oct', alg: 'A256KW' });
      assert.equal(Buffer.from(key.k!, 'base64url').length, 32);
      assert.equal(
        host.logs.some((l) => l.includes(key.k!)),
        false,
        'the key is never logged',
      );
      assert.ok(host.logs.some((l) => l.includes('.local/dev-keys.json') && /cannot be read without/.test(l)));
      const seen = (await (await fetch(host.url('/api/settings'))).json()) as Record<string, string>;
      assert.equal(seen.CSE_KEY_ID, 'local:dev-1');
      assert.equal(seen.CSE_LOCAL_KEYS, ringFile);

      // Clean shutdown: a request in flight completes, then the host and its Azurite exit.
      const slow = fetch(host.url('/api/slow'));
      await host.waitForLog(/Executing 'Functions.slow'/);
      const stopped = host.stop('SIGINT');
      const res = await slow;
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'finished');
      assert.deepEqual(await stopped, { code: 0, signal: null });
    } finally {
      await host.kill();
    }
    await until('Azurite to exit', () => !isProcessAlive(azuritePid!));
    assert.equal(isProcessAlive(host.pid), false);
  });

  it('leaves no Azurite behind when the host itself is killed', async () => {
    const host = await startLocalHost({ ...minimal, env: { MINIMAL_QUEUE: 'killed-q' } });
    const azuritePid = host.azuritePid!;
    assert.ok(isProcessAlive(azuritePid));
    await host.kill();
    await until('the orphaned Azurite to exit by itself', () => !isProcessAlive(azuritePid));
  });

  it('uses an existing storage account, settings from local.settings.json (the environment wins) and a configured key', async () => {
    const host: RunningLocalHost = await startLocalHost({
      ...minimal,
      storage: azurite.connectionString,
      localSettings: {
        MINIMAL_QUEUE: 'from-local-settings-q',
        TEST_FROM_SETTINGS: 'from the file',
        TEST_OVERRIDDEN: 'from the file',
        CSE_KEY_ID: 'local:configured',
        CSE_LOCAL_KEYS: '/somewhere/keys.json',
      },
      env: { TEST_OVERRIDDEN: 'from the environment' },
    });
    try {
      assert.equal(host.azuritePid, undefined);
      assert.equal(
        host.logs.some((l) => l.includes('Started Azurite')),
        false,
      );
      assert.equal(existsSync(join(host.root, '.local', 'dev-keys.json')), false, 'no dev key ring when a key is set');
      const seen = (await (await fetch(host.url('/api/settings'))).json()) as Record<string, string>;
      assert.deepEqual(seen, {
        CSE_KEY_ID: 'local:configured',
        CSE_LOCAL_KEYS: '/somewhere/keys.json',
        TEST_FROM_SETTINGS: 'from the file',
        TEST_OVERRIDDEN: 'from the environment',
      });
      // %MINIMAL_QUEUE% resolved from local.settings.json, in the given Azurite.
      const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(
        'from-local-settings-q',
      );
      await queue.createIfNotExists();
      await queue.sendMessage(Buffer.from('via the existing Azurite').toString('base64'));
      await host.waitForLog('"input":"via the existing Azurite"');
      // Hooks: appStart once, preInvocation before each invocation.
      assert.ok(host.logs.some((l) => l.includes('RESULT {"event":"appStart"}')));
      assert.ok(host.logs.some((l) => l.includes('RESULT {"event":"preInvocation","fn":"minimalQueue"}')));
    } finally {
      await host.stop();
    }
    assert.ok(
      host.logs.some((l) => l.includes('RESULT {"event":"appTerminate"}')),
      'appTerminate on stop',
    );
  });

  it('lets a test wait for a host that exits by itself (helper: exited)', async () => {
    const host = await startLocalHost({
      ...minimal,
      storage: azurite.connectionString,
      env: { MINIMAL_QUEUE: 'exit-q' },
    });
    // (On a loaded machine the process may end before the response is through; the exit is what matters.)
    await fetch(host.url('/api/exit'), { method: 'POST' }).catch(() => undefined);
    const timeout = sleep(30_000, 'still running', { ref: false });
    assert.deepEqual(await Promise.race([host.exited, timeout]), { code: 3, signal: null });
    await host.kill(); // no-op once exited
  });

  it('fails clearly when a binding expression names a setting that is not set', async () => {
    const result = await runLocalHostUntilExit({ ...minimal, storage: azurite.connectionString });
    assert.equal(result.code, 1);
    const message = result.logs.join('\n');
    assert.match(
      message,
      /Local host cannot start: Function 'minimalQueue' \(queueName\) uses the app setting '%MINIMAL_QUEUE%', which is not set/,
    );
  });

  it('fails clearly for a malformed connection string, without echoing it', async () => {
    const bad = `AccountName=devstoreaccount1;AccountKey=${AZURITE_ACCOUNT_KEY}`;
    const result = await runLocalHostUntilExit({ ...minimal, storage: bad, env: { MINIMAL_QUEUE: 'q-bad' } });
    assert.equal(result.code, 1);
    const output = result.logs.join('\n');
    assert.match(
      output,
      /AzureWebJobsStorage is not a valid connection string: it needs BlobEndpoint and QueueEndpoint/,
    );
    assert.equal(output.includes(AZURITE_ACCOUNT_KEY), false);
  });

  it('fails clearly when the storage account cannot be reached', async () => {
    const closed = await freePort();
    const unreachable = azurite.connectionString.replace(/127\.0\.0\.1:\d+/g, `127.0.0.1:${closed}`);
    const result = await runLocalHostUntilExit({ ...minimal, storage: unreachable, env: { MINIMAL_QUEUE: 'q-gone' } });
    assert.equal(result.code, 1);
    assert.match(
      result.logs.join('\n'),
      new RegExp(
        `Cannot use the queue service at http://127\\.0\\.0\\.1:${closed}/devstoreaccount1 \\(AzureWebJobsStorage\\): .*ECONNREFUSED`,
      ),
    );
  });

  it('fails clearly when the port is in use, before starting anything', async () => {
    const blocker = await listen();
    try {
      const port = (blocker.address() as { port: number }).port;
      const result = await runLocalHostUntilExit({ ...minimal, port, env: { MINIMAL_QUEUE: 'q-port' } });
      assert.equal(result.code, 1);
      const output = result.logs.join('\n');
      assert.match(
        output,
        new RegExp(`Port ${port} is already in use on 127\\.0\\.0\\.1; set PORT to use another port`),
      );
      assert.equal(output.includes('Started Azurite'), false, 'no embedded Azurite was started');
    } finally {
      blocker.close();
    }
  });

  it('starts an app with no functions (a fresh clone: functions/index.ts only)', async () => {
    const host = await startLocalHost({
      main: join(__dirname, '..', '..', 'functions', 'index.js'),
      storage: azurite.connectionString,
    });
    try {
      assert.ok(host.logs.some((l) => l.includes('No job functions found')));
      assert.ok(host.logs.some((l) => /Local host ready at http:\/\/localhost:\d+ \(0 functions\)/.test(l)));
      const res = await fetch(host.url('/'));
      assert.equal(res.status, 200);
      assert.equal((await fetch(host.url('/api/anything'))).status, 404);
    } finally {
      await host.stop();
    }
  });
});

function listen(): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function freePort(): Promise<number> {
  const server = await listen();
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
