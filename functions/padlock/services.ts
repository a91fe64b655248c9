/**
 * Calling services: who they are (name + secret, stored as SHA-256), which key
 * contexts they may derive keys for, and whether they may delete (admin).
 * Secrets are random tokens (≥128 bits), not passwords, so one SHA-256 suffices.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { AppError } from '../../lib/errors.ts';

/** Service names and key contexts: short lowercase identifiers. */
export const namePattern = /^[a-z][a-z0-9._-]{0,62}$/;

export const serviceEntrySchema = z.object({
  name: z.string().regex(namePattern, 'expected a lowercase name (a-z, 0-9, . _ -)'),
  secretSha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected the hex SHA-256 of the secret'),
  /** Key contexts the service may use; its own name if absent. The first is its default. */
  contexts: z.array(z.string().regex(namePattern, 'expected a lowercase context name')).min(1).optional(),
  /** May delete users and categories (e.g. `privacy`). */
  admin: z.boolean().optional(),
});

export type ServiceEntry = z.infer<typeof serviceEntrySchema>;

/** An authenticated caller. */
export interface Caller {
  name: string;
  contexts: readonly string[];
  admin: boolean;
}

/** A config entry for `name` with `secret` (for local provisioning and tests). */
export function serviceEntry(name: string, secret: string, opts: { contexts?: string[]; admin?: boolean } = {}): ServiceEntry {
  return { name, secretSha256: sha256Hex(secret), ...(opts.contexts ? { contexts: opts.contexts } : {}), ...(opts.admin ? { admin: true } : {}) };
}

export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

const DUMMY_HASH = Buffer.alloc(32);

/** Bound on remembered Authorization header values (a few per service in practice). */
export const AUTH_CACHE_MAX = 256;

export class ServiceRegistry {
  private readonly byName: Map<string, { caller: Caller; hash: Buffer }>;
  /**
   * Exact `Authorization` values that authenticated, with their caller: a
   * service's repeat requests skip the parse and the hash. Only successes are
   * kept (a wrong secret can't fill it), and the registry never changes, so an
   * entry never goes stale. Bounded, oldest out first.
   */
  private readonly authenticated = new Map<string, Caller>();

  constructor(entries: readonly ServiceEntry[]) {
    this.byName = new Map(
      entries.map((e) => [
        e.name,
        { caller: { name: e.name, contexts: e.contexts ?? [e.name], admin: e.admin === true }, hash: Buffer.from(e.secretSha256, 'hex') },
      ]),
    );
  }

  /** The caller of an `Authorization: Basic base64(service:secret)` header; 401 SERVICE_UNKNOWN otherwise. */
  authenticate(header: string | undefined): Caller {
    if (header === undefined) return this.verify(header);
    const known = this.authenticated.get(header);
    if (known !== undefined) return known;
    const caller = this.verify(header);
    if (this.authenticated.size >= AUTH_CACHE_MAX) {
      const oldest = this.authenticated.keys().next();
      if (oldest.done !== true) this.authenticated.delete(oldest.value);
    }
    this.authenticated.set(header, caller);
    return caller;
  }

  /** The full check: parse, hash the presented secret, compare in constant time. */
  private verify(header: string | undefined): Caller {
    const credentials = parseBasic(header);
    if (credentials === undefined) {
      throw new AppError('SERVICE_UNKNOWN', { message: 'Missing or malformed Authorization header (expected Basic service:secret)' });
    }
    const entry = this.byName.get(credentials.service);
    const presented = createHash('sha256').update(credentials.secret, 'utf8').digest();
    // Compare even for unknown services, so timing does not tell which names exist.
    const matches = timingSafeEqual(presented, entry?.hash ?? DUMMY_HASH);
    if (entry === undefined || !matches) throw new AppError('SERVICE_UNKNOWN');
    return entry.caller;
  }
}

/** The context a request uses: the asked one if authorised (else 403), or the caller's default. */
export function authoriseContext(caller: Caller, asked: string | undefined): string {
  const context = asked ?? caller.contexts[0];
  if (context === undefined || !caller.contexts.includes(context)) {
    throw new AppError('CONTEXT_FORBIDDEN', { details: { service: caller.name, context: asked } });
  }
  return context;
}

export function requireAdmin(caller: Caller): void {
  if (!caller.admin) throw new AppError('FORBIDDEN', { message: 'Only admin services may delete keychains', details: { service: caller.name } });
}

function parseBasic(header: string | undefined): { service: string; secret: string } | undefined {
  if (header === undefined) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (match?.[1] === undefined) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { service: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}
