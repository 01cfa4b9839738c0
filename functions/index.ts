/**
 * App-level set-up, loaded (like every file matched by package.json `main`) before any function registration
 * is used. Streaming lets HTTP functions read request bodies and write responses without buffering them; it
 * needs Functions host 4.28 or later, and the local host (`npm start`) supports it.
 */
import { app } from '@azure/functions';

app.setup({ enableHttpStream: true });
