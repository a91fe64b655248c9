/**
 * One load-generating client process of the migration system test:
 * `LOAD_SPEC='{"urls":[…],"prefix":"…","rounds":N,"worker":W,"workers":K}' node --import tsx load-client.ts`.
 * Each round: a lookup (creating) of a fresh user and of an older one, a
 * sign-up every 4th round, a user deletion every 5th, an opt-out every 7th,
 * alternating over the padlock URLs. Prints `started`, then one JSON line: every derived key
 * received (`user/category` → hex), what it deleted, and every failure.
 */
import { clientFor } from './harness.ts';

interface Spec {
  urls: string[];
  prefix: string;
  rounds: number;
  worker: number;
  workers: number;
}

const spec = JSON.parse(process.env.LOAD_SPEC ?? '{}') as Spec;
const CATEGORIES = ['contact', 'ads'];
const seen: [string, string][] = [];
const deletedUsers: string[] = [];
const deletedCategories: string[] = [];
const failures: string[] = [];
let lookups = 0;
const w = spec.worker;
process.stdout.write('started\n');

for (let r = 0; r < spec.rounds; r++) {
  const url = spec.urls[(w + r) % spec.urls.length]!;
  const fresh = `${spec.prefix}-w${w}-r${r}`;
  const old = `${spec.prefix}-w${(w + 1) % spec.workers}-r${Math.max(0, r - 3)}`;
  const items = [fresh, old].flatMap((userId) => CATEGORIES.map((category) => ({ userId, category })));
  try {
    const results = await clientFor(url, 'etl').getKeys(items, { createIfAbsent: true });
    lookups++;
    results.forEach((res, i) => {
      if (res.status === 'found') seen.push([`${items[i]!.userId}/${items[i]!.category}`, res.key.key.toString('hex')]);
    });
    if (r % 4 === 0) await clientFor(url, 'signup').createKeychain(`${fresh}-signup`);
    if (r % 5 === 2) {
      await clientFor(url, 'privacy').deleteUser(old);
      deletedUsers.push(old);
    }
    if (r % 7 === 3) {
      await clientFor(url, 'privacy').deleteCategory(fresh, 'ads');
      deletedCategories.push(`${fresh}/ads`);
    }
  } catch (err) {
    failures.push(String(err));
  }
}
process.stdout.write(`${JSON.stringify({ seen, deletedUsers, deletedCategories, failures, lookups })}\n`);
