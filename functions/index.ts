/**
 * App-level set-up, loaded (like every file matched by package.json `main`) before any function registration
 * is used. Streaming lets HTTP functions read request bodies and write responses without buffering them; it
 * needs Functions host 4.28 or later, and the local host (`npm start`) supports it.
 */
import { app } from '@azure/functions';
import { getAppServices } from '../shared/appServices';
import { loadConfig } from '../shared/config/config';

app.setup({ enableHttpStream: true });

// Settings are checked as the app loads, so a missing or contradictory setting stops start-up with a message
// naming it (the Functions host reports the app as failing to load), rather than failing each request later.
loadConfig(process.env);

// What loadConfig cannot check without I/O (the local key file exists and holds CSE_KEY_ID) is checked when the
// host starts the app. Nothing here contacts Key Vault or Storage.
app.hook.appStart(async () => {
  await getAppServices();
});
