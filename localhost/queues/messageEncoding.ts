/**
 * Queue message bodies as the Functions host encodes them (host.json extensions.queues.messageEncoding, app-wide,
 * for the trigger and output bindings alike). `@azure/storage-queue` does not encode, so this module does.
 */
import type { MessageEncoding } from '../hostJson';

/**
 * Strict base64, as .NET's Convert.FromBase64String reads it: the standard alphabet, whitespace ignored,
 * padded to a multiple of 4. Node's own decoder accepts anything, which would turn garbage into bytes.
 */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export type DecodedBody = { ok: true; bytes: Buffer } | { ok: false; reason: string };

export function decodeMessageBody(raw: string, encoding: MessageEncoding): DecodedBody {
  if (encoding === 'none') return { ok: true, bytes: Buffer.from(raw, 'utf8') };
  const compact = raw.replace(/[\t\n\r ]/g, '');
  if (!BASE64.test(compact)) return { ok: false, reason: 'the message is not valid base64' };
  return { ok: true, bytes: Buffer.from(compact, 'base64') };
}

export function encodeMessageBody(body: string | Uint8Array, encoding: MessageEncoding): string {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
  return encoding === 'base64' ? bytes.toString('base64') : bytes.toString('utf8');
}
