/**
 * The field path an encrypted value is bound to (its associated data, with
 * the event type: `associatedData(eventType, path)` in lib/crypto/aead.ts).
 * Unlike lib/avro/annotations.ts's schema paths (`contacts[].email`), these
 * name one concrete value, so an element's ciphertext cannot be swapped with
 * another element's:
 *
 * - record field: `email`, nested `user.email`
 * - array element: `contacts[2].email`, `emails[0]` (index from 0)
 * - map value: `attributes{"home"}` (the key as a JSON string, so keys holding
 *   `}` or `"` cannot make two positions print alike)
 * - unions add nothing (`["null","string"]` field `email` is `email`)
 */

/** `parent.name`, or `name` at the top level. */
export function fieldStep(parent: string, name: string): string {
  return parent === '' ? name : `${parent}.${name}`;
}

/** `parent[index]`. */
export function itemStep(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/** `parent{"key"}`. */
export function valueStep(parent: string, key: string): string {
  return `${parent}{${JSON.stringify(key)}}`;
}
