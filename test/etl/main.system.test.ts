/** `etl/main.ts` as a process: bad configuration exits 1 naming the variable. */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function run(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const base = { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none' };
    const child = spawn(process.execPath, ['--import', 'tsx', 'etl/main.ts'], { env: { ...base, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

describe('etl/main.ts', () => {
  it.each([
    [{ STAGING_BUCKET: 'stage-b' }, 'DATA_BUCKET'],
    [{ STAGING_BUCKET: 'stage-b', DATA_BUCKET: 'data-b', ETL_FLUSH_AGE_MS: 'soon' }, 'ETL_FLUSH_AGE_MS'],
    [{ STAGING_BUCKET: 'stage-b', DATA_BUCKET: 'data-b', EVENT_TYPES: 'Not A Type' }, 'EVENT_TYPES'],
    [{ STAGING_BUCKET: 'stage-b', DATA_BUCKET: 'data-b', PADLOCK_URL: 'http://127.0.0.1:1' }, 'PADLOCK_SECRET'],
  ])('exits 1 on %j naming %s', async (env, variable) => {
    const r = await run(env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${variable}:`);
  });
});
