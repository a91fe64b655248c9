/**
 * The production registry store: Cloud Firestore in Native mode.
 *
 * Why Firestore: it is managed (nothing to run or back up by hand), its
 * transactions give the conditional write the registry needs (read the
 * revision, write only if unchanged: no lost update between two composer
 * instances), reads are strongly consistent (a type is readable by the event
 * service as soon as its write is acknowledged), and the registry's write rate
 * is tiny (a few writes per type change), far below any Firestore limit. A
 * relational database would need an instance to run; Bigtable has no
 * multi-row transactions and is sized for far larger loads.
 *
 * Layout: one document per event type in `collection` (default
 * `eventTypes`), id = the type's name, fields `name`, `status`, `revision`,
 * `updatedAt` (queryable) and `record`, the `EventTypeRecord` as a JSON
 * string. JSON because Avro schemas may hold nested arrays (defaults), which
 * Firestore values cannot; it also keeps the record byte-identical to the file
 * store's. Limit: a document holds at most 1 MiB, hundreds of schema versions.
 */
import type { Firestore } from '@google-cloud/firestore';
import { AppError, isAppError } from '../errors.ts';
import { eventTypeNamePattern } from '../names.ts';
import type { EventTypeRecord, RegistryStore } from './types.ts';

export interface FirestoreRegistryOptions {
  /** Collection of event-type documents (default `eventTypes`). */
  collection?: string;
  /** Terminate the Firestore client on `close()` (default true). */
  ownsClient?: boolean;
}

interface EventTypeDocument {
  name: string;
  status: string;
  revision: number;
  updatedAt: string;
  record: string;
}

export class FirestoreRegistryStore implements RegistryStore {
  private readonly firestore: Firestore;
  private readonly collection: string;
  private readonly ownsClient: boolean;

  constructor(firestore: Firestore, options: FirestoreRegistryOptions = {}) {
    this.firestore = firestore;
    this.collection = options.collection ?? 'eventTypes';
    this.ownsClient = options.ownsClient ?? true;
  }

  private ref(name: string) {
    return this.firestore.collection(this.collection).doc(name);
  }

  async getEventType(name: string): Promise<EventTypeRecord | undefined> {
    if (!eventTypeNamePattern.test(name)) return undefined;
    const snap = await unavailableOnError(() => this.ref(name).get());
    return snap.exists ? decode(snap.data() as EventTypeDocument) : undefined;
  }

  async listEventTypes(): Promise<EventTypeRecord[]> {
    const snap = await unavailableOnError(() => this.firestore.collection(this.collection).get());
    return snap.docs.map((d) => decode(d.data() as EventTypeDocument)).sort((a, b) => a.settings.name.localeCompare(b.settings.name));
  }

  async putEventType(record: EventTypeRecord, expectedRevision: number): Promise<EventTypeRecord> {
    const name = record.settings.name;
    if (!eventTypeNamePattern.test(name)) throw new AppError('BAD_REQUEST', { message: `not an event-type name: ${JSON.stringify(name)}` });
    const stored: EventTypeRecord = { ...structuredClone(record), revision: expectedRevision + 1 };
    const ref = this.ref(name);
    await unavailableOnError(() =>
      this.firestore.runTransaction(async (tx) => {
        const snap = await tx.get(ref);
        const actual = snap.exists ? Number((snap.data() as EventTypeDocument).revision) : 0;
        if (actual !== expectedRevision) {
          throw new AppError(expectedRevision === 0 ? 'EVENT_TYPE_EXISTS' : 'CONCURRENT_UPDATE', {
            details: { eventType: name, expectedRevision, actualRevision: actual },
          });
        }
        const doc: EventTypeDocument = { name, status: stored.status, revision: stored.revision, updatedAt: stored.updatedAt, record: JSON.stringify(stored) };
        tx.set(ref, doc);
      }),
    );
    return structuredClone(stored);
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.firestore.terminate();
  }
}

function decode(doc: EventTypeDocument): EventTypeRecord {
  return JSON.parse(doc.record) as EventTypeRecord;
}

async function unavailableOnError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isAppError(err)) throw err;
    throw new AppError('REGISTRY_UNAVAILABLE', { message: `Firestore registry: ${err instanceof Error ? err.message : String(err)}`, cause: err });
  }
}
