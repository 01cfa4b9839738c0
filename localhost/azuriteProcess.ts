/**
 * Child-process entry for Azurite. `startAzurite()` spawns this file (not Azurite's own script) with an IPC
 * channel so that Azurite never outlives whoever started it: if that parent dies, even by SIGKILL, the channel
 * closes, `disconnect` fires here and Azurite is shut down. Azurite's own script ignores its parent entirely.
 *
 * Usage (internal): node azuriteProcess.js <path to azurite/dist/src/azurite.js> [azurite options...]
 */
const [, , azuriteScript, ...azuriteArgs] = process.argv;
if (!azuriteScript) {
  console.error('usage: azuriteProcess.js <azurite.js> [options]');
  process.exit(2);
}

function shutDown(): void {
  // Azurite closes its three servers on SIGTERM; the process then exits when nothing is left open. The timer is
  // the backstop for a server that does not close (it must not keep the process alive by itself).
  process.kill(process.pid, 'SIGTERM');
  setTimeout(() => process.exit(0), 5000).unref();
}

process.once('disconnect', shutDown);
// The channel is only a tripwire: it must not keep this process alive once Azurite's servers have closed.
process.channel?.unref();

// Azurite reads its options from process.argv (the `args` package skips the first two entries).
process.argv = [process.argv[0] ?? process.execPath, azuriteScript, ...azuriteArgs];
// eslint-disable-next-line @typescript-eslint/no-require-imports -- Azurite is a script, loaded for its effect
require(azuriteScript);
