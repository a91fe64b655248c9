/**
 * The list prices of `prices.json` (one documented data file: date, currency,
 * unit and scope of each price), validated when loaded.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AppError } from '../../lib/errors.ts';

const item = z.object({ price: z.number().nonnegative(), unit: z.string().min(1), what: z.string().min(1) });
const priceList = z.object({
  about: z.string(),
  recordedOn: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  currency: z.string().length(3),
  items: z.object({
    gkeAutopilotVcpuHour: item,
    gkeAutopilotMemoryGiBHour: item,
    cloudRunVcpuSecond: item,
    cloudRunMemoryGiBSecond: item,
    pubsubThroughputTiB: item,
    gcsClassA10k: item,
    gcsClassB10k: item,
    gcsStandardGiBMonth: item,
  }),
});
export type PriceList = z.infer<typeof priceList>;

/** The price list shipped beside this module. */
export const defaultPricesFile = new URL('./prices.json', import.meta.url);

/** Reads and validates a price list; CONFIG_INVALID naming the file and field when it is wrong. */
export function loadPrices(file: string | URL = defaultPricesFile): PriceList {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AppError('CONFIG_INVALID', { message: `cannot read price list ${String(file)}: ${err instanceof Error ? err.message : String(err)}` });
  }
  const parsed = priceList.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AppError('CONFIG_INVALID', { message: `price list ${String(file)}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` });
  }
  return parsed.data;
}
