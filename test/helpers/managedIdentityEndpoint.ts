/**
 * A fake App Service / Functions managed identity endpoint (what `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` point
 * to in Azure), so tests can check which identity a real @azure/identity credential asks for, offline.
 *
 *   const mi = await startManagedIdentityEndpoint();   // sets IDENTITY_ENDPOINT / IDENTITY_HEADER
 *   await credential.getToken('https://storage.azure.com/.default');
 *   mi.requests[0].clientId                             // the client_id the credential sent
 *   await mi.close();                                    // restores the environment
 *
 * It changes process.env of the test process (each test file runs in its own process).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface IdentityTokenRequest {
  readonly resource: string | null;
  readonly clientId: string | null;
  readonly resourceId: string | null;
  readonly objectId: string | null;
  readonly headerOk: boolean;
}

export async function startManagedIdentityEndpoint(): Promise<{
  requests: IdentityTokenRequest[];
  close(): Promise<void>;
}> {
  const header = 'test-identity-header';
  const requests: IdentityTokenRequest[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const q = url.searchParams;
    const headerOk = req.headers['x-identity-header'] === header;
    requests.push({
      resource: q.get('resource'),
      clientId: q.get('client_id'),
      resourceId: q.get('mi_res_id') ?? q.get('msi_res_id'),
      objectId: q.get('object_id') ?? q.get('principal_id'),
      headerOk,
    });
    res.writeHead(headerOk ? 200 : 401, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        access_token: 'fake-managed-identity-token',
        expires_on: String(Math.floor(Date.now() / 1000) + 3600),
        resource: q.get('resource'),
        token_type: 'Bearer',
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };
  process.env.IDENTITY_ENDPOINT = `http://127.0.0.1:${(server.address() as AddressInfo).port}/msi/token`;
  process.env.IDENTITY_HEADER = header;
  return {
    requests,
    async close() {
      restore('IDENTITY_ENDPOINT', saved.endpoint);
      restore('IDENTITY_HEADER', saved.header);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
