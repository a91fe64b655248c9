/**
 * A RegistryReader over a JSON file (an array of EventTypeRecord, or
 * `{eventTypes: [...]}`), re-read on every call so an updated export is
 * picked up: how a standalone worker deployment (`etl/main.ts`) sees the
 * registry until it reads the composer's store directly.
 */
import { readFile } from 'node:fs/promises';
import { AppError } from '../lib/errors.ts';
import type { EventTypeRecord, RegistryReader } from '../lib/registry/types.ts';

export class FileRegistryReader implements RegistryReader {
  constructor(private readonly file: string) {}

  async listEventTypes(): Promise<EventTypeRecord[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (cause) {
      throw new AppError('REGISTRY_UNAVAILABLE', { message: `cannot read registry file ${this.file}`, cause });
    }
    const json = JSON.parse(text) as EventTypeRecord[] | { eventTypes?: EventTypeRecord[] };
    const list = Array.isArray(json) ? json : (json.eventTypes ?? []);
    return list;
  }

  async getEventType(name: string): Promise<EventTypeRecord | undefined> {
    return (await this.listEventTypes()).find((r) => r.settings.name === name);
  }
}
