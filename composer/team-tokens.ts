/**
 * The composer's bearer tokens: which team a presented token names. Tokens are
 * held as SHA-256 digests and every configured one is compared, in constant
 * time, on every request, so neither the answer's timing nor a property name
 * (`constructor`, `__proto__`) can stand in for a token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export class TeamTokens {
  private readonly entries: readonly { digest: Buffer; team: string }[];

  /** @param tokens bearer token → team */
  constructor(tokens: ReadonlyMap<string, string>) {
    this.entries = [...tokens].map(([token, team]) => ({ digest: digest(token), team }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** The team of `token`, or undefined if no configured token equals it. */
  teamOf(token: string): string | undefined {
    const presented = digest(token);
    let team: string | undefined;
    // No early exit: the time taken does not tell which entry matched.
    for (const entry of this.entries) {
      if (timingSafeEqual(presented, entry.digest)) team = entry.team;
    }
    return team;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
