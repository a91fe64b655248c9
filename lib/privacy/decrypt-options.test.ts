import { describe, expect, it } from 'vitest';
import { parseDecryptOptions } from './decrypt-options.ts';

const flags = ['--padlock', 'http://127.0.0.1:8090', '--service', 'analytics', '--secret-env', 'S'];

describe('parseDecryptOptions', () => {
  it('takes a gs:// partition or a local folder, and the secret from the named variable', () => {
    const gcs = parseDecryptOptions(['gs://data/page_views/dt=2026-01-01/hour=03', ...flags, '--storage-endpoint', 'http://127.0.0.1:4443'], { S: 'x' });
    expect(gcs).toMatchObject({ partition: { kind: 'gcs', bucket: 'data', prefix: 'page_views/dt=2026-01-01/hour=03/' }, service: 'analytics', secret: 'x', storageEndpoint: 'http://127.0.0.1:4443' });
    expect(parseDecryptOptions([...flags, './copy'], { S: 'x' }).partition).toEqual({ kind: 'local', dir: './copy' });
  });

  it('takes every padlock deployment group, and identity tokens on request', () => {
    expect(parseDecryptOptions(['p', ...flags], { S: 'x' })).toMatchObject({ padlockUrls: ['http://127.0.0.1:8090'], idToken: false });
    const groups = ['p', '--padlock', 'https://padlock.example,https://padlock-mirror.example', '--service', 'a', '--secret-env', 'S', '--id-token'];
    expect(parseDecryptOptions(groups, { S: 'x' })).toMatchObject({ padlockUrls: ['https://padlock.example', 'https://padlock-mirror.example'], idToken: true });
  });

  it('names what is wrong', () => {
    expect(() => parseDecryptOptions(flags, { S: 'x' })).toThrow(/expected one partition/);
    expect(() => parseDecryptOptions(['p', ...flags], {})).toThrow(/S \(from --secret-env\) is not set/);
    expect(() => parseDecryptOptions(['p', '--padlock', 'nope', '--service', 'a', '--secret-env', 'S'], { S: 'x' })).toThrow(/PADLOCK/);
  });
});
