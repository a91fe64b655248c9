/**
 * Reads load-job source URIs (`gs://bucket/name`, one `*` wildcard allowed in
 * the name) from a Cloud Storage JSON API endpoint: the project's GCS
 * emulator. 429/5xx answers and dropped connections are retried a few times,
 * as BigQuery does with its own reads.
 */
import { errors } from './errors.ts';

export interface SourceObject {
  uri: string;
  bucket: string;
  name: string;
  size: number;
}

export interface GcsSource {
  /** The objects a source URI names, sorted by name; a 404 `notFound` if none. */
  resolve(uri: string): Promise<SourceObject[]>;
  read(obj: SourceObject): Promise<Buffer>;
}

export interface GcsSourceOptions {
  /** Attempts per request (first try included). */
  attempts?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** At most this many objects per URI. */
  maxObjects?: number;
}

/** `gs://bucket/name` split; a 400 `invalid` if it is not one. */
export function parseGsUri(uri: string): { bucket: string; name: string } {
  const m = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,221}[a-z0-9])\/(.+)$/.exec(uri);
  if (m === null) throw errors.invalid(`Invalid source URI ${JSON.stringify(uri.slice(0, 2048))}: expected gs://bucket/object.`);
  if (m[2]!.split('*').length > 2) throw errors.invalid(`Source URI ${uri} has more than one wildcard; only one '*' is allowed in the object name.`);
  return { bucket: m[1]!, name: m[2]! };
}

export function gcsSource(endpoint: string, options: GcsSourceOptions = {}): GcsSource {
  const base = `${endpoint.replace(/\/+$/, '')}/storage/v1`;
  const attempts = options.attempts ?? 5;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxObjects = options.maxObjects ?? 10_000;

  /** GETs `url` and consumes the body, retrying as a whole; undefined on 404. */
  async function get<T>(url: string, what: string, consume: (res: Response) => Promise<T>): Promise<T | undefined> {
    let last = '';
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** i));
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        if (res.status === 404) {
          await res.body?.cancel();
          return undefined;
        }
        if (res.ok) return await consume(res);
        last = `HTTP ${res.status}`;
        await res.body?.cancel();
        if (res.status !== 429 && res.status < 500) break;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
    }
    throw errors.backendError(`Error while reading data, error message: reading ${what} from Cloud Storage failed (${last}).`);
  }

  return {
    async resolve(uri) {
      const { bucket, name } = parseGsUri(uri);
      const star = name.indexOf('*');
      if (star === -1) {
        const meta = await get(`${base}/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}`, uri, async (r) => (await r.json()) as { size?: string });
        if (meta === undefined) throw errors.notFound(`URI ${uri}`);
        return [{ uri, bucket, name, size: Number(meta.size ?? 0) }];
      }
      const prefix = name.slice(0, star);
      const suffix = name.slice(star + 1);
      const found: SourceObject[] = [];
      let pageToken: string | undefined;
      do {
        const q = new URLSearchParams({ prefix, maxResults: '1000', fields: 'items(name,size),nextPageToken' });
        if (pageToken !== undefined) q.set('pageToken', pageToken);
        const page = await get(`${base}/b/${encodeURIComponent(bucket)}/o?${q.toString()}`, uri, async (r) => (await r.json()) as { items?: { name: string; size: string }[]; nextPageToken?: string });
        if (page === undefined) throw errors.notFound(`URI ${uri}`);
        for (const item of page.items ?? []) {
          if (item.name.length >= prefix.length + suffix.length && item.name.endsWith(suffix)) {
            found.push({ uri: `gs://${bucket}/${item.name}`, bucket, name: item.name, size: Number(item.size) });
            if (found.length > maxObjects) throw errors.invalid(`Source URI ${uri} matches more than ${maxObjects} objects.`);
          }
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== undefined);
      if (found.length === 0) throw errors.notFound(`URI ${uri}`);
      return found;
    },
    async read(obj) {
      const bytes = await get(`${base}/b/${encodeURIComponent(obj.bucket)}/o/${encodeURIComponent(obj.name)}?alt=media`, obj.uri, async (r) => Buffer.from(await r.arrayBuffer()));
      if (bytes === undefined) throw errors.notFound(`URI ${obj.uri}`);
      return bytes;
    },
  };
}
