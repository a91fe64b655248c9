/** An in-memory RegistryStore: for tests, and the reference semantics of the interface. */
import { AppError } from '../errors.ts';
import type { EventTypeRecord, RegistryStore } from './types.ts';

export class MemoryRegistryStore implements RegistryStore {
  private readonly records = new Map<string, EventTypeRecord>();

  async getEventType(name: string): Promise<EventTypeRecord | undefined> {
    const r = this.records.get(name);
    return r === undefined ? undefined : structuredClone(r);
  }

  async listEventTypes(): Promise<EventTypeRecord[]> {
    return [...this.records.values()].map((r) => structuredClone(r)).sort((a, b) => a.settings.name.localeCompare(b.settings.name));
  }

  async putEventType(record: EventTypeRecord, expectedRevision: number): Promise<EventTypeRecord> {
    const name = record.settings.name;
    const existing = this.records.get(name);
    const actual = existing?.revision ?? 0;
    if (actual !== expectedRevision) {
      throw new AppError(expectedRevision === 0 ? 'EVENT_TYPE_EXISTS' : 'CONCURRENT_UPDATE', {
        details: { eventType: name, expectedRevision, actualRevision: actual },
      });
    }
    const stored = { ...structuredClone(record), revision: expectedRevision + 1 };
    this.records.set(name, stored);
    return structuredClone(stored);
  }
}
