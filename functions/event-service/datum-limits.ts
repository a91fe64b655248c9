/**
 * What an event's datum may hold, shared by the JSON and the Avro binary
 * paths so both accept the same values, and only values Pub/Sub's schema
 * validation of the topic accepts and stores exactly (README.md, "Limits").
 */

/** Avro `int`: a signed 32-bit integer. */
export const INT_MIN = -(2 ** 31);
export const INT_MAX = 2 ** 31 - 1;

/**
 * Most records, arrays and maps nested inside one another in a datum.
 * Pub/Sub documents no depth limit; its emulator refuses a recursive record
 * nested about 570–650 deep ("Could not parse message", depending on the
 * shape), so a limit well below keeps us on the accepted side of any
 * stack-bound decoder while no real event comes near it.
 */
export const MAX_NESTING_DEPTH = 100;

/** True when `v` is a number an Avro `float` (IEEE 754 binary32) holds without becoming Infinity. */
export function fitsFloat(v: number): boolean {
  return Number.isFinite(Math.fround(v));
}

/** JavaScript Avro readers (avsc, the ETL's) silently drop a map key named `__proto__`: refuse it rather than lose it. */
export const PROTO_KEY = 'map key "__proto__" would be dropped by JavaScript readers downstream';
