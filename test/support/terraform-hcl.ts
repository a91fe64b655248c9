/**
 * Offline reading of the Terraform in terraform/: HCL parsed with
 * @cdktf/hcl2json (no provider can be downloaded here, so `terraform
 * validate/plan` cannot run), Terraform type constraints, and a small
 * evaluator for the string expressions the tests need (names, labels).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';

export const terraformRoot = join(import.meta.dirname, '..', '..', 'terraform');
export const moduleDirs = {
  platform: join(terraformRoot, 'modules', 'platform'),
  eventType: join(terraformRoot, 'modules', 'event-type'),
  workerGroup: join(terraformRoot, 'modules', 'worker-group'),
  customMetricsAdapter: join(terraformRoot, 'modules', 'custom-metrics-adapter'),
  example: join(terraformRoot, 'examples', 'complete'),
  exampleWorkloads: join(terraformRoot, 'examples', 'complete', 'workloads'),
};
export type ModuleKey = keyof typeof moduleDirs;

/** Every module and root, loaded. */
export async function loadAll(): Promise<Record<ModuleKey, HclConfig>> {
  const entries = await Promise.all((Object.keys(moduleDirs) as ModuleKey[]).map(async (k) => [k, await loadHcl(moduleDirs[k])] as const));
  return Object.fromEntries(entries) as Record<ModuleKey, HclConfig>;
}


export type Block = Record<string, unknown>;
export interface HclConfig {
  variable: Record<string, Block>;
  output: Record<string, Block>;
  locals: Record<string, unknown>;
  resource: Record<string, Record<string, Block>>;
  module: Record<string, Block>;
  data: Record<string, Record<string, Block>>;
  provider: Record<string, Block>;
}

export async function loadHcl(dir: string): Promise<HclConfig> {
  const config: HclConfig = { variable: {}, output: {}, locals: {}, resource: {}, module: {}, data: {}, provider: {} };
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.tf')).sort()) {
    const json = (await parse(file, readFileSync(join(dir, file), 'utf8'))) as Record<string, unknown>;
    for (const [name, blocks] of Object.entries((json.variable ?? {}) as Record<string, Block[]>)) config.variable[name] = blocks[0]!;
    for (const [name, blocks] of Object.entries((json.output ?? {}) as Record<string, Block[]>)) config.output[name] = blocks[0]!;
    for (const [name, blocks] of Object.entries((json.module ?? {}) as Record<string, Block[]>)) config.module[name] = blocks[0]!;
    for (const block of (json.locals ?? []) as Record<string, unknown>[]) Object.assign(config.locals, block);
    for (const [name, blocks] of Object.entries((json.provider ?? {}) as Record<string, Block[]>)) config.provider[name] = blocks[0]!;
    for (const [type, byName] of Object.entries((json.data ?? {}) as Record<string, Record<string, Block[]>>)) {
      config.data[type] ??= {};
      for (const [name, blocks] of Object.entries(byName)) config.data[type][name] = blocks[0]!;
    }
    for (const [type, byName] of Object.entries((json.resource ?? {}) as Record<string, Record<string, Block[]>>)) {
      config.resource[type] ??= {};
      for (const [name, blocks] of Object.entries(byName)) config.resource[type][name] = blocks[0]!;
    }
  }
  return config;
}

// ---------------------------------------------------------------------------
// Terraform type constraints: parse `object({a = string, b = optional(number, 3)})`…

export type TfType =
  | { kind: 'string' | 'number' | 'bool' | 'any' }
  | { kind: 'list' | 'set' | 'map'; element: TfType }
  | { kind: 'object'; attributes: Record<string, { type: TfType; optional: boolean }> };

export function parseType(expression: string): TfType {
  const source = expression.replace(/^\$\{/, '').replace(/\}$/, '');
  const tokens = source.match(/"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_-]*|-?\d+(?:\.\d+)?|[(){}[\]=,]/g) ?? [];
  let i = 0;
  const next = (): string => {
    const t = tokens[i++];
    if (t === undefined) throw new Error(`unexpected end of type ${source}`);
    return t;
  };
  const expect_ = (t: string): void => {
    const got = next();
    if (got !== t) throw new Error(`expected '${t}' but got '${got}' in type ${source}`);
  };
  // Skips one default value (literal, object or tuple), which the checks don't need.
  const skipValue = (): void => {
    const t = next();
    if (t !== '{' && t !== '[') return;
    let depth = 1;
    while (depth > 0) {
      const u = next();
      if (u === '{' || u === '[') depth++;
      if (u === '}' || u === ']') depth--;
    }
  };
  const type = (): TfType => {
    const t = next();
    if (t === 'string' || t === 'number' || t === 'bool' || t === 'any') return { kind: t };
    if (t === 'list' || t === 'set' || t === 'map') {
      expect_('(');
      const element = type();
      expect_(')');
      return { kind: t, element };
    }
    if (t === 'object') {
      expect_('(');
      expect_('{');
      const attributes: Record<string, { type: TfType; optional: boolean }> = {};
      while (tokens[i] !== '}') {
        const name = next();
        expect_('=');
        if (tokens[i] === 'optional') {
          next();
          expect_('(');
          const inner = type();
          if (tokens[i] === ',') {
            next();
            skipValue();
          }
          expect_(')');
          attributes[name] = { type: inner, optional: true };
        } else {
          attributes[name] = { type: type(), optional: false };
        }
        if (tokens[i] === ',') next();
      }
      expect_('}');
      expect_(')');
      return { kind: 'object', attributes };
    }
    throw new Error(`unsupported type '${t}' in ${source}`);
  };
  const result = type();
  if (i !== tokens.length) throw new Error(`trailing tokens in type ${source}`);
  return result;
}

/** Problems of `value` against `type`, as Terraform would see a JSON tfvars value (no string/number coercion). */
export function typeErrors(value: unknown, type: TfType, path = 'value'): string[] {
  switch (type.kind) {
    case 'any':
      return [];
    case 'string':
      return typeof value === 'string' ? [] : [`${path}: expected string, got ${JSON.stringify(value)}`];
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? [] : [`${path}: expected number, got ${JSON.stringify(value)}`];
    case 'bool':
      return typeof value === 'boolean' ? [] : [`${path}: expected bool, got ${JSON.stringify(value)}`];
    case 'list':
    case 'set':
      return Array.isArray(value) ? value.flatMap((v, k) => typeErrors(v, type.element, `${path}[${k}]`)) : [`${path}: expected ${type.kind}`];
    case 'map':
      return isPlainObject(value) ? Object.entries(value).flatMap(([k, v]) => typeErrors(v, type.element, `${path}.${k}`)) : [`${path}: expected map`];
    case 'object': {
      if (!isPlainObject(value)) return [`${path}: expected object`];
      const errors: string[] = [];
      for (const key of Object.keys(value)) {
        if (type.attributes[key] === undefined) errors.push(`${path}.${key}: not an attribute of the type`);
      }
      for (const [key, attr] of Object.entries(type.attributes)) {
        const v = value[key];
        if (v === undefined || v === null) {
          if (!attr.optional) errors.push(`${path}.${key}: required attribute missing`);
        } else errors.push(...typeErrors(v, attr.type, `${path}.${key}`));
      }
      return errors;
    }
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------
// A small evaluator for the name expressions: string templates over local.*
// and var.*, and replace()/lower(). Anything else fails the test loudly.

export function evaluateTemplate(template: string, scope: (ref: string) => string): string {
  return template.replace(/\$\{([^}]*)\}/g, (_, expr: string) => evaluateExpression(expr.trim(), scope));
}

export function evaluateExpression(expr: string, scope: (ref: string) => string): string {
  const str = /^"((?:[^"\\]|\\.)*)"$/.exec(expr);
  if (str) return JSON.parse(`"${str[1]}"`) as string;
  if (/^(local|var)\.[A-Za-z0-9_.]+$/.test(expr)) return scope(expr);
  if (/^-?\d+$/.test(expr)) return expr;
  const call = /^(replace|lower|upper|substr)\((.*)\)$/s.exec(expr);
  if (call) {
    const args = splitArguments(call[2]!).map((a) => evaluateExpression(a, scope));
    if (call[1] === 'lower' && args.length === 1) return args[0]!.toLowerCase();
    if (call[1] === 'upper' && args.length === 1) return args[0]!.toUpperCase();
    if (call[1] === 'substr' && args.length === 3) return [...args[0]!].slice(Number(args[1]), Number(args[1]) + Number(args[2])).join('');
    if (call[1] === 'replace' && args.length === 3) {
      const [s, search, replacement] = args as [string, string, string];
      // Terraform: a search string in slashes is a regular expression (RE2; these patterns mean the same in JS).
      if (search.length > 1 && search.startsWith('/') && search.endsWith('/')) return s.replace(new RegExp(search.slice(1, -1), 'g'), replacement);
      return s.split(search).join(replacement);
    }
  }
  throw new Error(`cannot evaluate name expression: ${expr}`);
}

export function splitArguments(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let inString = false;
  let current = '';
  for (let k = 0; k < s.length; k++) {
    const c = s[k]!;
    if (inString) {
      current += c;
      if (c === '\\') current += s[++k] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      out.push(current.trim());
      current = '';
    } else current += c;
  }
  if (current.trim() !== '') out.push(current.trim());
  return out;
}

