/**
 * A problem that stops the local host from starting: a bad setting, host.json, connection string, port, or app.
 * main.ts prints the message alone (no stack), since it is meant for the person running `npm start`.
 */
export class HostStartError extends Error {
  override readonly name = 'HostStartError';
}
