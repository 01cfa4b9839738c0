/**
 * ASP.NET-style route templates, as HTTP functions use them: literal segments (matched case-insensitively),
 * `{name}`, optional `{name?}`, constrained `{name:int}` (int, long, double, decimal, bool, alpha, guid,
 * datetime, minlength(n), maxlength(n), length(n), min(n), max(n), range(a,b)), and a final catch-all `{*rest}`.
 */
import { HostStartError } from '../errors';

type Constraint = (value: string) => boolean;

type Segment =
  | { kind: 'literal'; text: string }
  | { kind: 'param'; name: string; optional: boolean; constraints: Constraint[] }
  | { kind: 'catchAll'; name: string };

export interface RouteTemplate {
  readonly template: string;
  readonly segments: readonly Segment[];
  /** Orders templates so that the most specific wins (literal < constrained < plain < optional < catch-all). */
  readonly precedence: readonly number[];
}

const constraintFactories: Record<string, (arg: string | undefined) => Constraint> = {
  int: () => (v) => /^-?\d+$/.test(v) && Math.abs(Number(v)) <= 2147483648,
  long: () => (v) => /^-?\d+$/.test(v),
  double: () => (v) => v.trim() !== '' && Number.isFinite(Number(v)),
  decimal: () => (v) => /^-?\d+(\.\d+)?$/.test(v),
  float: () => (v) => v.trim() !== '' && Number.isFinite(Number(v)),
  bool: () => (v) => /^(true|false)$/i.test(v),
  alpha: () => (v) => /^[a-z]+$/i.test(v),
  guid: () => (v) => /^[{(]?[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}[)}]?$/i.test(v),
  datetime: () => (v) => !Number.isNaN(Date.parse(v)),
  minlength: (a) => (v) => v.length >= Number(a),
  maxlength: (a) => (v) => v.length <= Number(a),
  length: (a) => {
    const [min, max] = (a ?? '').split(',').map(Number);
    return (v) => (max === undefined ? v.length === min : v.length >= (min ?? 0) && v.length <= max);
  },
  min: (a) => (v) => /^-?\d+$/.test(v) && Number(v) >= Number(a),
  max: (a) => (v) => /^-?\d+$/.test(v) && Number(v) <= Number(a),
  range: (a) => {
    const [min, max] = (a ?? '').split(',').map(Number);
    return (v) => /^-?\d+$/.test(v) && Number(v) >= (min ?? -Infinity) && Number(v) <= (max ?? Infinity);
  },
};

export function compileRouteTemplate(template: string, functionName: string): RouteTemplate {
  const trimmed = template.replace(/^\/+|\/+$/g, '');
  const parts = trimmed === '' ? [] : trimmed.split('/');
  const segments: Segment[] = [];
  const names = new Set<string>();
  parts.forEach((part, i) => {
    const fail = (why: string): never => {
      throw new HostStartError(`Function '${functionName}': route "${template}" ${why}.`);
    };
    const m = /^\{(\*{1,2})?([A-Za-z_][A-Za-z0-9_]*)((?::[a-z]+(?:\([^)]*\))?)*)(\?)?\}$/.exec(part);
    if (!m) {
      if (part.includes('{') || part.includes('}')) fail(`has an unsupported segment "${part}"`);
      if (part === '') fail('has an empty segment');
      segments.push({ kind: 'literal', text: part.toLowerCase() });
      return;
    }
    const [, star, name = '', constraintText = '', optional] = m;
    if (names.has(name.toLowerCase())) fail(`uses the parameter "${name}" twice`);
    names.add(name.toLowerCase());
    if (star) {
      if (i !== parts.length - 1) fail('has a catch-all parameter that is not the last segment');
      segments.push({ kind: 'catchAll', name });
      return;
    }
    const constraints: Constraint[] = [];
    for (const c of constraintText.match(/:[a-z]+(?:\([^)]*\))?/g) ?? []) {
      const cm = /^:([a-z]+)(?:\(([^)]*)\))?$/.exec(c);
      const factory = cm?.[1] ? constraintFactories[cm[1]] : undefined;
      if (!factory) fail(`uses the unsupported constraint "${c.slice(1)}"`);
      constraints.push(factory!(cm?.[2]));
    }
    if (optional && i !== parts.length - 1) fail('has an optional parameter that is not the last segment');
    segments.push({ kind: 'param', name, optional: Boolean(optional), constraints });
  });
  const precedence = segments.map((s) =>
    s.kind === 'literal' ? 1 : s.kind === 'catchAll' ? 5 : s.optional ? 4 : s.constraints.length > 0 ? 2 : 3,
  );
  return { template, segments, precedence };
}

/** Compares two templates: negative when `a` is more specific and should be tried first. */
export function compareRoutePrecedence(a: RouteTemplate, b: RouteTemplate): number {
  const n = Math.max(a.precedence.length, b.precedence.length);
  for (let i = 0; i < n; i++) {
    // A longer template with literal segments where the other ends is more specific.
    const pa = a.precedence[i] ?? 6;
    const pb = b.precedence[i] ?? 6;
    if (pa !== pb) return pa - pb;
  }
  return 0;
}

/**
 * Matches a request path (below the route prefix, still percent-encoded) against a template. Returns the route
 * parameters, decoded, or undefined when it does not match.
 */
export function matchRoute(route: RouteTemplate, path: string): Record<string, string> | undefined {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  const parts = trimmed === '' ? [] : trimmed.split('/');
  const params: Record<string, string> = {};
  let i = 0;
  for (const segment of route.segments) {
    if (segment.kind === 'catchAll') {
      params[segment.name] = parts.slice(i).map(safeDecode).join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined) {
      if (segment.kind === 'param' && segment.optional) return params;
      return undefined;
    }
    const value = safeDecode(part);
    if (segment.kind === 'literal') {
      if (value.toLowerCase() !== segment.text) return undefined;
    } else {
      if (!segment.constraints.every((ok) => ok(value))) return undefined;
      params[segment.name] = value;
    }
    i++;
  }
  return i === parts.length ? params : undefined;
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
