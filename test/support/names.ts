import { randomBytes } from 'node:crypto';

const run = Date.now().toString(36);

/**
 * A resource name unique to this run and test: `<suite>-<run>-<test>-<rand>`
 * (letters, digits and dashes; valid for topics, subscriptions and buckets).
 */
export function uniqueName(suite: string, test = 't'): string {
  const clean = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return `${clean(suite)}-${run}-${clean(test)}-${randomBytes(3).toString('hex')}`.slice(0, 63);
}
