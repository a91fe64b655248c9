/**
 * Names and keys a careless or hostile client may send: a lone surrogate in an
 * object name (it has no UTF-8 form, so stored it would collide with its
 * U+FFFD twin) is refused; metadata and label keys named `__proto__` are kept
 * as keys, not swallowed by Object.prototype's setter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGcsEmulator, type GcsEmulator } from '../../../emulators/gcs/index.ts';

let gcs: GcsEmulator;
beforeAll(async () => {
  gcs = await startGcsEmulator({ port: 0 });
});
afterAll(async () => gcs.close());

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${gcs.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

describe('GCS emulator: hostile names and keys', () => {
  it('refuses an object name with a lone surrogate, with a reason', async () => {
    await api('POST', '/storage/v1/b?project=p', { name: 'hostile-a' });
    const res = await fetch(`${gcs.url}/upload/storage/v1/b/hostile-a/o?uploadType=multipart`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/related; boundary=b' },
      body: ['--b', 'content-type: application/json', '', JSON.stringify({ name: 'x\ud800' }), '--b', 'content-type: text/plain', '', 'data', '--b--', ''].join('\r\n'),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('lone surrogate');
    const twin = await api('GET', `/storage/v1/b/hostile-a/o/${encodeURIComponent('x\ufffd')}`);
    expect(twin.status).toBe(404);
  });

  it('keeps metadata and label keys named __proto__', async () => {
    const bucket = await api('POST', '/storage/v1/b?project=p', JSON.parse('{"name":"hostile-b","labels":{"__proto__":"l","team":"t"}}'));
    expect(bucket.status).toBe(200);
    expect(Object.hasOwn(bucket.json.labels as object, '__proto__')).toBe(true);
    const res = await fetch(`${gcs.url}/upload/storage/v1/b/hostile-b/o?uploadType=multipart`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/related; boundary=b' },
      body: ['--b', 'content-type: application/json', '', '{"name":"o","metadata":{"__proto__":"m","k":"v"}}', '--b', 'content-type: text/plain', '', 'data', '--b--', ''].join('\r\n'),
    });
    expect(res.status).toBe(200);
    const stored = await api('GET', '/storage/v1/b/hostile-b/o/o');
    expect(stored.json.metadata).toEqual(JSON.parse('{"__proto__":"m","k":"v"}'));
    expect(Object.hasOwn(stored.json.metadata as object, '__proto__')).toBe(true);
  });
});
