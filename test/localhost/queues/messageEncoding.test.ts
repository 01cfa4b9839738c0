import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeMessageBody, encodeMessageBody } from '../../../localhost/queues/messageEncoding';
import { isValidQueueName, poisonQueueName } from '../../../localhost/queues/queueNames';

describe('queue message encoding', () => {
  it('round-trips UTF-8 text through base64', () => {
    const encoded = encodeMessageBody('héllo ✓', 'base64');
    assert.equal(encoded, Buffer.from('héllo ✓').toString('base64'));
    const decoded = decodeMessageBody(encoded, 'base64');
    assert.ok(decoded.ok);
    assert.equal(decoded.bytes.toString('utf8'), 'héllo ✓');
  });

  it('rejects what .NET would not decode, although Node would', () => {
    for (const bad of ['not base64!', 'abc', 'ab=c', 'YQ', '====', 'YWJj*']) {
      assert.equal(decodeMessageBody(bad, 'base64').ok, false, bad);
    }
    assert.ok(decodeMessageBody('YWJj\r\nZGVm', 'base64').ok, 'whitespace is ignored');
    assert.ok(decodeMessageBody('', 'base64').ok, 'empty is valid');
  });

  it('passes text through with messageEncoding none', () => {
    assert.equal(encodeMessageBody('plain', 'none'), 'plain');
    const decoded = decodeMessageBody('not base64!', 'none');
    assert.ok(decoded.ok && decoded.bytes.toString() === 'not base64!');
  });

  it('names poison queues as the host does', () => {
    assert.equal(poisonQueueName('ingest'), 'ingest-poison');
    assert.equal(poisonQueueName('ingest-poison'), undefined, 'no poison queue for a poison queue');
    assert.equal(poisonQueueName('q'.repeat(60)), undefined, 'too long');
    assert.equal(isValidQueueName('a--b'), false);
    assert.equal(isValidQueueName('Upper'), false);
  });
});
