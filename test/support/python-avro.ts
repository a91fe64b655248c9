/**
 * Debian's python3-avro as an independent Avro implementation for tests:
 * encode JSON-described values and decode message bytes, with Python's exact
 * integers, so a long is checked bit for bit without going through avsc.
 */
import { execFileSync, spawnSync } from 'node:child_process';

/** Debian's interpreter (python3-avro is a Debian package, not in the pyenv one first on PATH). */
const PYTHON = '/usr/bin/python3';

/** Reads a JSON request on stdin; every integer in the answer is a decimal string (JSON numbers would round). */
const SCRIPT = `
import avro.io, avro.schema, io, json, sys

def exact(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return {k: exact(x) for k, x in v.items()}
    if isinstance(v, list):
        return [exact(x) for x in v]
    return v

def ints(v):
    # Requests carry integers as {"int": "<decimal>"} so JSON never rounds them.
    if isinstance(v, dict) and list(v.keys()) == ["int"]:
        return int(v["int"])
    if isinstance(v, dict):
        return {k: ints(x) for k, x in v.items()}
    if isinstance(v, list):
        return [ints(x) for x in v]
    return v

req = json.load(sys.stdin)
schema = avro.schema.parse(json.dumps(req["schema"]))
out = {"encoded": [], "decoded": []}
for value in req.get("encode", []):
    buf = io.BytesIO()
    avro.io.DatumWriter(schema).write(ints(value), avro.io.BinaryEncoder(buf))
    out["encoded"].append(buf.getvalue().hex())
for hexdata in req.get("decode", []):
    data = bytes.fromhex(hexdata)
    reader = io.BytesIO(data)
    value = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(reader))
    if reader.tell() != len(data):
        raise SystemExit("trailing bytes after the datum")
    again = io.BytesIO()
    avro.io.DatumWriter(schema).write(value, avro.io.BinaryEncoder(again))
    out["decoded"].append({"value": exact(value), "reencoded": again.getvalue().hex()})
json.dump(out, sys.stdout)
`;

/** True when Debian's python3 with python3-avro is installed. */
export function pythonAvroAvailable(): boolean {
  return spawnSync(PYTHON, ['-c', 'import avro.io'], { stdio: 'ignore' }).status === 0;
}

/** An integer for `encode`: decimal, so JSON never rounds it on the way to Python. */
export function exactInt(n: bigint | number): { int: string } {
  return { int: BigInt(n).toString() };
}

export interface PythonAvroResult {
  /** Hex of each `encode` value's binary datum. */
  encoded: string[];
  /** Each `decode` datum as Python read it (integers as decimal strings) and re-encoded by Python (hex). */
  decoded: Array<{ value: unknown; reencoded: string }>;
}

/** Encodes `encode` values and decodes `decode` datums (Buffers) with python3-avro. */
export function pythonAvro(schema: unknown, request: { encode?: unknown[]; decode?: Buffer[] }): PythonAvroResult {
  const input = JSON.stringify({ schema, encode: request.encode ?? [], decode: (request.decode ?? []).map((b) => b.toString('hex')) });
  return JSON.parse(execFileSync(PYTHON, ['-c', SCRIPT], { input, encoding: 'utf8', timeout: 60_000 })) as PythonAvroResult;
}
