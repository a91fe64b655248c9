import { describe, expect, it } from 'vitest';
import { FakeKeySource } from '../lib/privacy/test-keys.ts';
import { MemoryRegistryStore } from '../lib/registry/memory.ts';
import type { AvroSchemaJson } from '../lib/registry/types.ts';
import { createEncryptionTransform } from './encryption-transform.ts';
import { SchemaResolver } from './schemas.ts';
import { eventTypeRecord } from '../test/support/etl.ts';
import { identityTransform } from './transform.ts';

const schema: AvroSchemaJson = {
  type: 'record',
  name: 'Reading',
  fields: [
    { name: 'userId', type: 'string', semanticType: 'userId' },
    { name: 'n', type: 'long' },
    { name: 'maybe', type: ['null', { type: 'long' }] },
  ],
};
const edges = [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, -(2n ** 53n), -(2n ** 52n) - 1n];

describe('SchemaResolver types (issue 21, defect 1)', () => {
  it.each([
    ['identity', identityTransform],
    ['encryption', createEncryptionTransform({ keys: new FakeKeySource() })],
  ])('%s: writer and delivered types carry every 64-bit long exactly', (_label, transform) => {
    const resolver = new SchemaResolver('t', new MemoryRegistryStore(), transform, 0);
    resolver.load(eventTypeRecord('t', [schema]));
    const resolved = resolver.get(eventTypeRecord('t', [schema]).versions[0]!.fingerprint)!;
    for (const n of edges) {
      const value = { userId: 'u', n, maybe: n };
      // What a producer wrote, decoded by the ETL, re-encoded in the delivered schema (as when encrypting).
      const decoded = resolved.writerType.fromBuffer(resolved.writerType.toBuffer(value)) as typeof value;
      const delivered = resolved.deliveredType.fromBuffer(resolved.deliveredType.toBuffer(decoded)) as typeof value;
      for (const r of [decoded, delivered]) expect([BigInt(r.n), BigInt(r.maybe)]).toEqual([n, n]);
    }
  });
});
