/** What a route handler gets for one request. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from './store.ts';
import type { UploadSessions } from './upload-sessions.ts';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  /** Which API prefix the request came in on (`/storage/v1` or none: json). */
  api: 'json' | 'upload' | 'download';
  /** Path segments after the prefix, percent-decoded. */
  segments: string[];
  query: URLSearchParams;
  /** The request body (possibly cut short by an injected fault). */
  body: AsyncIterable<Buffer>;
  /** `http://host:port` as the client addressed us, for links and upload URLs. */
  baseUrl: string;
  store: Store;
  sessions: UploadSessions;
}
