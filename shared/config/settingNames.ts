/**
 * Every CSE_* app setting the app reads. This list is the contract checked against infra/ (Bicep app
 * settings), local.settings.sample.json and README.md by test/infra/settingsContract.test.ts: add a setting here
 * and in all three, or the contract test fails.
 */
export const CSE_SETTING_NAMES = [
  'CSE_KEY_ID',
  'CSE_LOCAL_KEYS',
  'CSE_ALLOWED_KEY_VAULTS',
  'CSE_ALLOW_V1',
  'CSE_ALLOW_PLAINTEXT_READS',
  'CSE_CONTAINERS',
  'CSE_TABLES',
  'CSE_TABLE_PROTOCOL',
  'CSE_TABLE_ENCRYPTED_PROPERTIES',
  'CSE_INGEST_QUEUE',
  'CSE_INGEST_TARGET_CONTAINER',
  'CSE_ROTATION_SCHEDULE',
  'CSE_ROTATION_CONCURRENCY',
  'CSE_ROTATION_REENCRYPT_V1',
] as const;

export type CseSettingName = (typeof CSE_SETTING_NAMES)[number];
