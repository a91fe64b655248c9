/**
 * CRC32C (Castagnoli), table-driven with slicing-by-8, as Cloud Storage
 * reports it: the 32-bit value big-endian, base64-encoded.
 */
const POLY = 0x82f63b78;

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const prev = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = ((prev >>> 8) ^ t[prev & 0xff]!) >>> 0;
    }
  }
  return t;
})();

/** Continues a CRC32C over `data`; start with 0. Returns an unsigned 32-bit value. */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  const t = TABLE;
  let c = ~crc >>> 0;
  let i = 0;
  const n = data.length;
  const end8 = n - (n % 8);
  while (i < end8) {
    const a = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + data[i + 4]!]! ^
      t[512 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!;
    i += 8;
  }
  while (i < n) {
    c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}

/** CRC32C of one buffer. */
export function crc32c(data: Uint8Array): number {
  return crc32cUpdate(0, data);
}

/** The value as GCS shows it in `crc32c` and `x-goog-hash`: 4 bytes big-endian, base64. */
export function crc32cToBase64(crc: number): string {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(crc >>> 0, 0);
  return b.toString('base64');
}
