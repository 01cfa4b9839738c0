/**
 * GET /api/health (anonymous, for load balancer and uptime probes): 200 when Azure Storage answers and the active
 * key can wrap a content key, 503 otherwise. The answer names no container, key or error detail, since anyone
 * can call it; the reasons go to the log.
 */
import { randomBytes } from 'node:crypto';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getAppServices } from '../shared/appServices';
import { DEFAULT_RETRY_AFTER_SECONDS } from './http/errors';

/** A probe must answer before the prober gives up; a check slower than this counts as down. */
const CHECK_TIMEOUT_MS = 5_000;

type CheckResult = 'ok' | 'unavailable';

export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  let storage: CheckResult = 'unavailable';
  let key: CheckResult = 'unavailable';
  try {
    const services = await getAppServices();
    [storage, key] = await Promise.all([
      check('storage', context, () =>
        services.blobService.getProperties({ abortSignal: AbortSignal.timeout(CHECK_TIMEOUT_MS) }),
      ),
      check('key', context, async () => {
        const kek = await services.keyRing.activeKey();
        await kek.wrapKey(kek.defaultAlgorithm, randomBytes(32));
      }),
    ]);
  } catch (e) {
    context.warn(`health: configuration not usable: ${e instanceof Error ? e.message : String(e)}`);
  }
  const healthy = storage === 'ok' && key === 'ok';
  return {
    status: healthy ? 200 : 503,
    headers: {
      'cache-control': 'no-store',
      ...(healthy ? {} : { 'retry-after': String(DEFAULT_RETRY_AFTER_SECONDS) }),
    },
    jsonBody: { status: healthy ? 'healthy' : 'unhealthy', storage, key },
  };
}

async function check(what: string, context: InvocationContext, probe: () => Promise<unknown>): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([probe(), timeout]);
    return 'ok';
  } catch (e) {
    context.warn(`health: ${what} unavailable: ${e instanceof Error ? e.message : String(e)}`);
    return 'unavailable';
  } finally {
    clearTimeout(timer);
  }
}

app.http('health', {
  methods: ['GET'],
  route: 'health',
  authLevel: 'anonymous',
  handler: health,
});
