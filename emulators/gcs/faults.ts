/**
 * Fault injection: rules that make matching requests fail, slow down or lose
 * their connection. Rules are matched in the order they were added; each
 * request picks up the latency of every rule that fires and the failure of
 * the first firing rule that has one.
 */
import { randomUUID } from 'node:crypto';
import { errors } from './gcs-errors.ts';

/** A fault rule as tests write it (JSON over the admin endpoint, or in process). */
export interface FaultRule {
  /** HTTP methods this rule applies to (any when absent), e.g. `["POST","PUT"]` for writes. */
  methods?: string[];
  /** Regular expression tested against the path and query, e.g. `"^/upload/"` for uploads only. */
  path?: string;
  /** Fire for the next `times` matching requests only (then the rule is dropped). */
  times?: number;
  /** Fire for each matching request with this probability (0..1); 1 when absent. */
  probability?: number;
  /** Answer with this status and a GCS error body instead of handling the request. */
  status?: number;
  /** Delay the request this long before it is handled (or failed). */
  latencyMs?: number;
  /**
   * Destroy the connection after this many body bytes: of the request
   * (`cut: "request"`, mid-upload) or of the response (`cut: "response"`, mid-download).
   */
  cutAfterBytes?: number;
  cut?: 'request' | 'response';
}

/** A stored rule, with how often it fired. */
export interface ActiveFaultRule extends FaultRule {
  id: string;
  fired: number;
}

/** What to do to one request. */
export interface FaultDecision {
  latencyMs: number;
  status?: number;
  cut?: { side: 'request' | 'response'; afterBytes: number };
  /** Ids of the rules that fired. */
  ruleIds: string[];
}

/** The run-time controls tests use (the emulator's `faults`). */
export interface FaultController {
  /** Adds a rule; returns its id. */
  add(rule: FaultRule): string;
  remove(id: string): boolean;
  clear(): void;
  list(): ActiveFaultRule[];
}

/** Checks a rule from untrusted JSON; throws a 400 AppError naming the bad field. */
export function validateFaultRule(value: unknown): FaultRule {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw errors.invalid('A fault rule must be a JSON object.');
  const v = value as Record<string, unknown>;
  const rule: FaultRule = {};
  const known = new Set(['methods', 'path', 'times', 'probability', 'status', 'latencyMs', 'cutAfterBytes', 'cut']);
  for (const k of Object.keys(v)) if (!known.has(k)) throw errors.invalid(`Unknown fault rule field '${k}'.`);
  if (v.methods !== undefined) {
    if (!Array.isArray(v.methods) || !v.methods.every((m) => typeof m === 'string')) throw errors.invalid('methods: expected an array of strings.');
    rule.methods = (v.methods as string[]).map((m) => m.toUpperCase());
  }
  if (v.path !== undefined) {
    if (typeof v.path !== 'string') throw errors.invalid('path: expected a regular expression string.');
    try {
      new RegExp(v.path);
    } catch {
      throw errors.invalid('path: not a valid regular expression.');
    }
    rule.path = v.path;
  }
  const int = (k: 'times' | 'status' | 'latencyMs' | 'cutAfterBytes', min: number, max: number): void => {
    const x = v[k];
    if (x === undefined) return;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) throw errors.invalid(`${k}: expected an integer ${min}..${max}.`);
    rule[k] = x;
  };
  int('times', 1, 1e9);
  int('status', 400, 599);
  int('latencyMs', 0, 600_000);
  int('cutAfterBytes', 0, Number.MAX_SAFE_INTEGER);
  if (v.probability !== undefined) {
    if (typeof v.probability !== 'number' || !(v.probability >= 0 && v.probability <= 1)) throw errors.invalid('probability: expected a number 0..1.');
    rule.probability = v.probability;
  }
  if (v.cut !== undefined) {
    if (v.cut !== 'request' && v.cut !== 'response') throw errors.invalid("cut: expected 'request' or 'response'.");
    rule.cut = v.cut;
  }
  if (rule.cut !== undefined && rule.cutAfterBytes === undefined) rule.cutAfterBytes = 0;
  if (rule.cutAfterBytes !== undefined && rule.cut === undefined) rule.cut = 'response';
  if (rule.status === undefined && rule.latencyMs === undefined && rule.cut === undefined) {
    throw errors.invalid('A fault rule needs status, latencyMs or cut.');
  }
  return rule;
}

/** The rule set, matched per request. `random` is injectable for tests. */
export class FaultInjector implements FaultController {
  private rules: (ActiveFaultRule & { regex?: RegExp })[] = [];

  constructor(private readonly random: () => number = Math.random) {}

  add(rule: FaultRule): string {
    const valid = validateFaultRule(rule);
    const id = randomUUID();
    this.rules.push({ ...valid, id, fired: 0, regex: valid.path === undefined ? undefined : new RegExp(valid.path) });
    return id;
  }

  remove(id: string): boolean {
    const before = this.rules.length;
    this.rules = this.rules.filter((r) => r.id !== id);
    return this.rules.length !== before;
  }

  clear(): void {
    this.rules = [];
  }

  list(): ActiveFaultRule[] {
    return this.rules.map(({ regex: _regex, ...r }) => ({ ...r }));
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** Decides the faults for one request; undefined when none fires. */
  decide(method: string, pathAndQuery: string): FaultDecision | undefined {
    if (this.rules.length === 0) return undefined;
    let decision: FaultDecision | undefined;
    for (const r of this.rules) {
      if (r.methods !== undefined && !r.methods.includes(method)) continue;
      if (r.regex !== undefined && !r.regex.test(pathAndQuery)) continue;
      if (r.probability !== undefined && this.random() >= r.probability) continue;
      r.fired++;
      if (r.times !== undefined) r.times--;
      decision ??= { latencyMs: 0, ruleIds: [] };
      decision.ruleIds.push(r.id);
      decision.latencyMs += r.latencyMs ?? 0;
      if (decision.status === undefined && decision.cut === undefined) {
        if (r.status !== undefined) decision.status = r.status;
        else if (r.cut !== undefined) decision.cut = { side: r.cut, afterBytes: r.cutAfterBytes ?? 0 };
      }
    }
    this.rules = this.rules.filter((r) => r.times === undefined || r.times > 0);
    return decision;
  }
}
