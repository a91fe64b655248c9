/**
 * An in-memory stand-in for padlock for unit tests and benchmarks of pure
 * logic: keys derived from a fixed secret per (context, category, user), with
 * deletion and per-service entitlement. System tests use the real padlock.
 */
import { createHash, createHmac } from 'node:crypto';
import { AppError } from '../errors.ts';
import type { KeyLookupOptions, KeyRequest, KeyResult, KeySource } from './keys.ts';

export class FakeKeySource implements KeySource {
  readonly calls: { items: KeyRequest[]; options: KeyLookupOptions }[] = [];
  readonly created = new Set<string>();
  readonly deletedUsers = new Set<string>();
  readonly deletedCategories = new Set<string>();
  /** Set to make every lookup fail (padlock down). */
  failWith: Error | undefined;

  constructor(private readonly contexts: readonly string[] = ['events']) {}

  async getKeys(items: KeyRequest[], options: KeyLookupOptions = {}): Promise<KeyResult[]> {
    this.calls.push({ items, options });
    if (this.failWith !== undefined) throw this.failWith;
    const context = options.context ?? this.contexts[0] ?? '';
    if (!this.contexts.includes(context)) throw new AppError('CONTEXT_FORBIDDEN', { details: { context } });
    return items.map((item) => {
      if (this.deletedUsers.has(item.userId) || this.deletedCategories.has(`${item.userId}/${item.category}`)) return { status: 'deleted' };
      if (!this.created.has(item.userId)) {
        if (options.createIfAbsent !== true) return { status: 'absent' };
        this.created.add(item.userId);
      }
      const key = createHmac('sha256', 'fake-root').update(`${context}\u0000${item.category}\u0000${item.userId}`).digest();
      return { status: 'found', key: { keyId: createHash('sha256').update(key).digest().readUInt32BE(0), key } };
    });
  }
}
