import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ENCRYPTION_DATA_METADATA_KEY,
  parseEncryptionData,
  serializeEncryptionData,
  encryptionDataFromJson,
  type EncryptionData,
  type EncryptionDataV2,
} from '../../../shared/crypto/encryptionData';
import { isCseError, type CseErrorCode } from '../../../shared/errors';
import { loadManifest, vectorPath } from '../../helpers/vectors';

const PY_V2 =
  '{"WrappedContentKey": {"KeyId": "local:key1", "EncryptedKey": "Y10mpREhuBOxrieJdFp/2/jW+jgjH2KFpGgseeWHHHLlq+azTVPS3dybi0VgH9gi", "Algorithm": "A256KW"}, "EncryptionAgent": {"Protocol": "2.0", "EncryptionAlgorithm": "AES_GCM_256"}, "EncryptedRegionInfo": {"DataLength": 4194304, "NonceLength": 12}, "KeyWrappingMetadata": {"EncryptionLibrary": "Python 12.15.0b1"}, "EncryptionMode": "FullBlob"}';
const PY_V1 =
  '{"WrappedContentKey": {"KeyId": "local:key1", "EncryptedKey": "gBtSHZV+WjYCvRijsRUSzJ+wgi3Q00lpEj2osdq36AcqW+Vuybf0yQ==", "Algorithm": "A256KW"}, "EncryptionAgent": {"Protocol": "1.0", "EncryptionAlgorithm": "AES_CBC_256"}, "ContentEncryptionIV": "IiIiIiIiIiIiIiIiIiIiIg==", "KeyWrappingMetadata": {"EncryptionLibrary": "Python 12.15.0b1"}, "EncryptionMode": "FullBlob"}';
/** FORMAT.md §1.5: the same v2 document as .NET writes it (compact, its order, `+` escaped). */
const NET_V2 =
  '{"EncryptionMode":"FullBlob","WrappedContentKey":{"KeyId":"local:key1","EncryptedKey":"Y10mpREhuBOxrieJdFp/2/jW\\u002BjgjH2KFpGgseeWHHHLlq\\u002BazTVPS3dybi0VgH9gi","Algorithm":"A256KW"},"EncryptionAgent":{"Protocol":"2.0","EncryptionAlgorithm":"AES_GCM_256"},"EncryptedRegionInfo":{"DataLength":4194304,"NonceLength":12},"KeyWrappingMetadata":{"EncryptionLibrary":"azsdk-net-Azure.Storage.Blobs/12.x.y (...)"}}';

function asV2(data: EncryptionData): EncryptionDataV2 {
  assert.ok(data.protocol !== '1.0');
  return data;
}

function rejects(json: string, code: CseErrorCode, messagePart: RegExp): void {
  assert.throws(
    () => parseEncryptionData(json),
    (e) => isCseError(e, code) && messagePart.test(e.message),
  );
}

// Edits of arbitrary JSON documents are clearest untyped.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function edit(json: string, f: (doc: Record<string, any>) => void): string {
  const doc = JSON.parse(json);
  f(doc);
  return JSON.stringify(doc);
}

test('metadata key is the lower-case name every SDK uses', () => {
  assert.equal(ENCRYPTION_DATA_METADATA_KEY, 'encryptiondata');
});

test('parses a Python v2 document', () => {
  const data = asV2(parseEncryptionData(PY_V2));
  assert.equal(data.protocol, '2.0');
  assert.equal(data.encryptionAlgorithm, 'AES_GCM_256');
  assert.deepEqual(data.encryptedRegionInfo, { dataLength: 4194304, nonceLength: 12 });
  assert.equal(data.wrappedContentKey.keyId, 'local:key1');
  assert.equal(data.wrappedContentKey.algorithm, 'A256KW');
  assert.equal(data.wrappedContentKey.encryptedKey.length, 48);
  assert.equal(data.encryptionMode, 'FullBlob');
  assert.deepEqual(data.keyWrappingMetadata, { EncryptionLibrary: 'Python 12.15.0b1' });
});

test('parses a Python v1 document', () => {
  const data = parseEncryptionData(PY_V1);
  assert.equal(data.protocol, '1.0');
  if (data.protocol !== '1.0') return;
  assert.equal(data.contentEncryptionIV.toString('hex'), '22'.repeat(16));
  assert.equal(data.wrappedContentKey.encryptedKey.length, 40);
});

test('.NET style (compact, other order, \\u002B escapes) parses to the same document as Python style', () => {
  const net = parseEncryptionData(NET_V2);
  const py = parseEncryptionData(PY_V2);
  assert.deepEqual(net.wrappedContentKey, py.wrappedContentKey);
  assert.deepEqual({ ...net, keyWrappingMetadata: undefined }, { ...py, keyWrappingMetadata: undefined });
});

test('serializes compactly in .NET/Java order, byte for byte the .NET document apart from the + escape', () => {
  const data = parseEncryptionData(NET_V2);
  assert.equal(serializeEncryptionData(data), NET_V2.replaceAll('\\u002B', '+'));
});

test('serialized v1 has ContentEncryptionIV where v2 has EncryptedRegionInfo, and round-trips', () => {
  const data = parseEncryptionData(PY_V1);
  const text = serializeEncryptionData(data);
  assert.equal(
    text,
    '{"EncryptionMode":"FullBlob","WrappedContentKey":{"KeyId":"local:key1","EncryptedKey":"gBtSHZV+WjYCvRijsRUSzJ+wgi3Q00lpEj2osdq36AcqW+Vuybf0yQ==","Algorithm":"A256KW"},"EncryptionAgent":{"Protocol":"1.0","EncryptionAlgorithm":"AES_CBC_256"},"ContentEncryptionIV":"IiIiIiIiIiIiIiIiIiIiIg==","KeyWrappingMetadata":{"EncryptionLibrary":"Python 12.15.0b1"}}',
  );
  assert.deepEqual(parseEncryptionData(text), data);
});

test('absent optional members are omitted, not written as null', () => {
  const data = parseEncryptionData(
    edit(PY_V2, (d) => {
      delete d.EncryptionMode;
      delete d.KeyWrappingMetadata;
    }),
  );
  assert.equal(data.encryptionMode, undefined);
  assert.equal(data.keyWrappingMetadata, undefined);
  const text = serializeEncryptionData(data);
  assert.ok(text.startsWith('{"WrappedContentKey":'));
  assert.ok(!text.includes('null'));
  assert.ok(!text.includes('KeyWrappingMetadata'));
});

test('null optional members are read as absent (.NET key rotation writes "EncryptionMode": null)', () => {
  const data = parseEncryptionData(
    edit(PY_V2, (d) => {
      d.EncryptionMode = null;
      d.KeyWrappingMetadata = null;
      d.ContentEncryptionIV = null;
    }),
  );
  assert.equal(data.encryptionMode, undefined);
  assert.equal(data.keyWrappingMetadata, undefined);
});

test('unknown members are ignored at every level', () => {
  const data = parseEncryptionData(
    edit(PY_V2, (d) => {
      d.Future = { x: 1 };
      d.Scalar = 5;
      d.WrappedContentKey.Extra = 'y';
      d.EncryptionAgent.Extra = [1];
      d.EncryptedRegionInfo.TagLength = 16;
      d.KeyWrappingMetadata.Other = 7;
    }),
  );
  assert.equal(data.protocol, '2.0');
  assert.deepEqual(data.keyWrappingMetadata, { EncryptionLibrary: 'Python 12.15.0b1' });
  assert.ok(!serializeEncryptionData(data).includes('Future'));
});

test('v2.1 keeps its DataLength', () => {
  const data = asV2(
    parseEncryptionData(
      edit(PY_V2, (d) => {
        d.EncryptionAgent.Protocol = '2.1';
        d.EncryptedRegionInfo.DataLength = 4096;
      }),
    ),
  );
  assert.equal(data.protocol, '2.1');
  assert.equal(data.encryptedRegionInfo.dataLength, 4096);
  assert.ok(serializeEncryptionData(data).includes('"Protocol":"2.1"'));
  assert.ok(serializeEncryptionData(data).includes('"DataLength":4096'));
});

test('serialization is ASCII only (non-ASCII escaped), and reads back to the same strings', () => {
  const base = parseEncryptionData(PY_V2);
  const data: EncryptionData = {
    ...base,
    wrappedContentKey: { ...base.wrappedContentKey, keyId: 'clé-🔑' },
    keyWrappingMetadata: { EncryptionLibrary: 'lib "quoted" \u00e9' },
  };
  const text = serializeEncryptionData(data);
  assert.match(text, /^[\x20-\x7e]*$/);
  assert.ok(text.includes('cl\\u00e9-\\ud83d\\udd11'));
  assert.deepEqual(parseEncryptionData(text), data);
});

test('every vector document parses and re-serializes to an equal JSON value (order aside)', () => {
  for (const v of loadManifest().blob) {
    const text = readFileSync(vectorPath(v.encryptiondata_file), 'utf8');
    const data = parseEncryptionData(text);
    assert.equal(data.protocol, v.protocol, v.id);
    assert.deepEqual(JSON.parse(serializeEncryptionData(data)), JSON.parse(text), v.id);
  }
});

test('encryptionDataFromJson accepts an already parsed object (queue envelopes)', () => {
  assert.equal(encryptionDataFromJson(JSON.parse(PY_V2)).protocol, '2.0');
});

test('malformed documents fail with InvalidEncryptionData naming what is wrong', () => {
  rejects('not json', 'InvalidEncryptionData', /not valid JSON/);
  rejects('[]', 'InvalidEncryptionData', /must be a JSON object/);
  rejects('null', 'InvalidEncryptionData', /missing/);
  rejects(
    edit(PY_V2, (d) => delete d.EncryptionAgent),
    'InvalidEncryptionData',
    /EncryptionAgent is missing/,
  );
  rejects(
    edit(PY_V2, (d) => delete d.EncryptionAgent.Protocol),
    'InvalidEncryptionData',
    /Protocol is missing/,
  );
  rejects(
    edit(PY_V2, (d) => (d.EncryptionAgent.Protocol = 2)),
    'InvalidEncryptionData',
    /Protocol must be a string/,
  );
  rejects(
    edit(PY_V2, (d) => delete d.WrappedContentKey),
    'InvalidEncryptionData',
    /WrappedContentKey is missing/,
  );
  rejects(
    edit(PY_V2, (d) => (d.WrappedContentKey.KeyId = '')),
    'InvalidEncryptionData',
    /KeyId is empty/,
  );
  rejects(
    edit(PY_V2, (d) => (d.WrappedContentKey.KeyId = null)),
    'InvalidEncryptionData',
    /KeyId is missing/,
  );
  rejects(
    edit(PY_V2, (d) => delete d.WrappedContentKey.Algorithm),
    'InvalidEncryptionData',
    /Algorithm is missing/,
  );
  rejects(
    edit(PY_V2, (d) => (d.WrappedContentKey.EncryptedKey = 'abc$')),
    'InvalidEncryptionData',
    /EncryptedKey is not valid base64/,
  );
  rejects(
    edit(PY_V2, (d) => delete d.EncryptedRegionInfo),
    'InvalidEncryptionData',
    /EncryptedRegionInfo is missing/,
  );
  rejects(
    edit(PY_V2, (d) => (d.EncryptedRegionInfo.DataLength = 0)),
    'InvalidEncryptionData',
    /DataLength must be a positive/,
  );
  rejects(
    edit(PY_V2, (d) => (d.EncryptedRegionInfo.DataLength = 1.5)),
    'InvalidEncryptionData',
    /DataLength must be a positive/,
  );
  rejects(
    edit(PY_V2, (d) => (d.EncryptedRegionInfo.DataLength = '4194304')),
    'InvalidEncryptionData',
    /DataLength/,
  );
  rejects(
    edit(PY_V2, (d) => (d.EncryptedRegionInfo.NonceLength = 16)),
    'InvalidEncryptionData',
    /NonceLength must be 12/,
  );
  rejects(
    edit(PY_V1, (d) => delete d.ContentEncryptionIV),
    'InvalidEncryptionData',
    /ContentEncryptionIV is missing/,
  );
  rejects(
    edit(PY_V1, (d) => (d.ContentEncryptionIV = 'AAAA')),
    'InvalidEncryptionData',
    /ContentEncryptionIV must be 16 bytes/,
  );
  rejects(
    edit(PY_V2, (d) => (d.EncryptionMode = 3)),
    'InvalidEncryptionData',
    /EncryptionMode must be a string/,
  );
  rejects(
    edit(PY_V2, (d) => (d.KeyWrappingMetadata = 'x')),
    'InvalidEncryptionData',
    /KeyWrappingMetadata must be a JSON object/,
  );
});

test('unknown protocols and mismatched content algorithms fail with UnsupportedProtocol', () => {
  rejects(
    edit(PY_V2, (d) => (d.EncryptionAgent.Protocol = '3.0')),
    'UnsupportedProtocol',
    /"3\.0" is not supported/,
  );
  rejects(
    edit(PY_V2, (d) => (d.EncryptionAgent.EncryptionAlgorithm = 'AES_CBC_256')),
    'UnsupportedProtocol',
    /requires EncryptionAgent.EncryptionAlgorithm AES_GCM_256/,
  );
  rejects(
    edit(PY_V1, (d) => (d.EncryptionAgent.EncryptionAlgorithm = 'AES_GCM_256')),
    'UnsupportedProtocol',
    /requires EncryptionAgent.EncryptionAlgorithm AES_CBC_256/,
  );
});
