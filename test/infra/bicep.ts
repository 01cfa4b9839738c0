/**
 * Offline reading of the Bicep templates: parse every `.bicep` file with tree-sitter-bicep (ECOSYSTEM.md §5.2; no
 * Bicep CLI is reachable here) and answer questions over the syntax tree, so the checks in rules.ts and the settings
 * contract test look at declarations, properties and references, not at raw text.
 *
 * tree-sitter checks syntax only: a wrong property name or type is not an error here. That is why the rules assert
 * the specific properties that matter (see rules.ts).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import Parser from 'tree-sitter';
import BicepLanguage from 'tree-sitter-bicep';

export type SyntaxNode = Parser.SyntaxNode;

export interface BicepFile {
  /** Path relative to the infra folder, with forward slashes (e.g. `modules/storage.bicep`). */
  readonly path: string;
  readonly root: SyntaxNode;
}

/** A top-level declaration of a Bicep file. */
export interface Declaration {
  readonly kind: 'param' | 'var' | 'resource' | 'module' | 'output';
  readonly name: string;
  readonly node: SyntaxNode;
  readonly file: BicepFile;
}

const DECLARATION_KINDS: Record<string, Declaration['kind']> = {
  parameter_declaration: 'param',
  variable_declaration: 'var',
  resource_declaration: 'resource',
  module_declaration: 'module',
  output_declaration: 'output',
};

let parser: Parser | undefined;

export function parseBicep(source: string): Parser.Tree {
  if (!parser) {
    parser = new Parser();
    // The grammar's own typings describe its node types, not tree-sitter's Language handle.
    parser.setLanguage(BicepLanguage as unknown as Parser.Language);
  }
  return parser.parse(source);
}

/** Every `.bicep` file under `infraDir`, parsed, sorted by path. */
export function loadBicepFiles(infraDir: string): BicepFile[] {
  return listFiles(infraDir)
    .filter((f) => f.endsWith('.bicep'))
    .map((f) => ({
      path: relative(infraDir, f).split(sep).join('/'),
      root: parseBicep(readFileSync(f, 'utf8')).rootNode,
    }))
    .sort((a, b) => a.path.localeCompare(b.path));
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = join(dir, entry);
    return statSync(full).isDirectory() ? listFiles(full) : [full];
  });
}

/** `file:line` of a node, 1-based, for messages. */
export function where(file: BicepFile, node: SyntaxNode): string {
  return `${file.path}:${node.startPosition.row + 1}`;
}

/** The first ERROR or MISSING node of a tree, if any (hasError says only that one exists). */
export function firstSyntaxError(root: SyntaxNode): SyntaxNode | undefined {
  if (root.type === 'ERROR' || root.isMissing) return root;
  for (const child of root.children) {
    if (child.hasError || child.isMissing) {
      const found = firstSyntaxError(child);
      if (found) return found;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Declarations

export function declarations(file: BicepFile, kind?: Declaration['kind']): Declaration[] {
  const out: Declaration[] = [];
  for (const node of file.root.namedChildren) {
    const k = DECLARATION_KINDS[node.type];
    const name = node.namedChildren.find((c) => c.type === 'identifier')?.text;
    if (k && name && (!kind || k === kind)) out.push({ kind: k, name, node, file });
  }
  return out;
}

export function findDeclaration(file: BicepFile, name: string): Declaration | undefined {
  return declarations(file).find((d) => d.name === name);
}

/** The decorator names (`description`, `secure`, ...) in front of a declaration, with their first argument. */
export function decorators(decl: SyntaxNode): { name: string; argument: SyntaxNode | undefined }[] {
  const previous = decl.previousNamedSibling;
  if (!previous || previous.type !== 'decorators') return [];
  return previous.namedChildren.flatMap((d) => {
    const call = d.namedChildren.find((c) => c.type === 'call_expression');
    const name = call?.namedChildren.find((c) => c.type === 'identifier')?.text;
    const args = call?.namedChildren.find((c) => c.type === 'arguments');
    return name ? [{ name, argument: args?.namedChildren[0] }] : [];
  });
}

/** The `//` comments directly above a declaration (above its decorators, if any), joined. Empty if none. */
export function leadingComment(decl: SyntaxNode): string {
  let anchor: SyntaxNode = decl;
  if (anchor.previousNamedSibling?.type === 'decorators') anchor = anchor.previousNamedSibling;
  const lines: string[] = [];
  let node = anchor.previousNamedSibling;
  let expectedRow = anchor.startPosition.row - 1;
  while (node && node.type === 'comment' && node.endPosition.row === expectedRow) {
    lines.unshift(node.text.replace(/^\/\/\s?/, ''));
    expectedRow = node.startPosition.row - 1;
    node = node.previousNamedSibling;
  }
  return lines.join(' ').trim();
}

/** The `'Type@apiVersion'` string of a resource declaration, split. */
export function resourceType(decl: SyntaxNode): { type: string; apiVersion: string } {
  const raw = decl.namedChildren.find((c) => c.type === 'string');
  const [type = '', apiVersion = ''] = (raw ? stringLiteral(raw) : '')?.split('@') ?? [];
  return { type, apiVersion };
}

/** `resource x '...' existing = {...}` refers to a resource deployed elsewhere; it sets no properties. */
export function isExisting(decl: SyntaxNode): boolean {
  return decl.children.some((c) => c.type === 'existing');
}

/** The body object of a resource or module declaration, through `if (...)` and `[for ...: ...]`. */
export function body(decl: SyntaxNode): SyntaxNode | undefined {
  let node: SyntaxNode | undefined = decl.namedChildren.find((c) =>
    ['object', 'if_statement', 'for_statement'].includes(c.type),
  );
  while (node && node.type !== 'object') {
    node = node.namedChildren.filter((c) => ['object', 'if_statement'].includes(c.type)).pop();
  }
  return node;
}

/** Every resource declaration of a file, nested ones included. */
export function allResources(file: BicepFile): Declaration[] {
  return descendants(file.root, 'resource_declaration').map((node) => ({
    kind: 'resource' as const,
    name: node.namedChildren.find((c) => c.type === 'identifier')?.text ?? '',
    node,
    file,
  }));
}

/** Non-`existing` resources of a type (without API version, case-insensitive), across files. */
export function resourcesOfType(files: readonly BicepFile[], type: string): Declaration[] {
  return files.flatMap((f) =>
    allResources(f).filter(
      (d) => !isExisting(d.node) && resourceType(d.node).type.toLowerCase() === type.toLowerCase(),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Objects and values

/** The key of an object property: an identifier, or a string without interpolation. */
export function propertyKey(property: SyntaxNode): string | undefined {
  const key = property.namedChildren[0];
  if (!key) return undefined;
  if (key.type === 'identifier' || key.type === 'compatible_identifier') return key.text;
  if (key.type === 'string') return stringLiteral(key);
  return undefined;
}

/** The value node of an object property. */
export function propertyValue(property: SyntaxNode): SyntaxNode | undefined {
  return property.namedChildren.length > 1 ? property.namedChildren[property.namedChildren.length - 1] : undefined;
}

export function properties(object: SyntaxNode): SyntaxNode[] {
  return object.namedChildren.filter((c) => c.type === 'object_property');
}

/** The value at a dotted path of nested object literals (`properties.features.disableLocalAuth`). */
export function valueAt(object: SyntaxNode | undefined, path: string): SyntaxNode | undefined {
  let node: SyntaxNode | undefined = object;
  for (const key of path.split('.')) {
    if (!node || node.type !== 'object') return undefined;
    const property = properties(node).find((p) => propertyKey(p) === key);
    node = property ? propertyValue(property) : undefined;
  }
  return node;
}

/** The text of a string literal, or undefined if it interpolates (`'${x}'`) or is not a string. */
export function stringLiteral(node: SyntaxNode): string | undefined {
  if (node.type !== 'string') return undefined;
  let text = '';
  for (const part of node.namedChildren) {
    if (part.type === 'string_content') text += part.text;
    else if (part.type === 'escape_sequence') text += unescape(part.text);
    else return undefined;
  }
  return text;
}

function unescape(sequence: string): string {
  const map: Record<string, string> = { "\\'": "'", '\\\\': '\\', '\\n': '\n', '\\r': '\r', '\\t': '\t', '\\$': '$' };
  return map[sequence] ?? sequence;
}

/** A literal as a string: `'x'` → x, `false` → false, `16` → 16; undefined for anything computed. */
export function literalText(node: SyntaxNode | undefined): string | undefined {
  if (!node) return undefined;
  if (node.type === 'string') return stringLiteral(node);
  if (node.type === 'boolean' || node.type === 'number') return node.text;
  return undefined;
}

/** Every node of the given types under `node`, including `node` itself. */
export function descendants(node: SyntaxNode, types: string | string[]): SyntaxNode[] {
  const wanted = Array.isArray(types) ? types : [types];
  const out = wanted.includes(node.type) ? [node] : [];
  return out.concat(node.descendantsOfType(wanted).filter((n) => n.id !== node.id));
}

/** The function name of a call: `listKeys(...)` → listKeys, `acct.listKeys()` → listKeys. */
export function calledName(call: SyntaxNode): string | undefined {
  const fn = call.childForFieldName('function') ?? call.namedChildren[0];
  if (!fn) return undefined;
  if (fn.type === 'identifier') return fn.text;
  if (fn.type === 'member_expression') return fn.childForFieldName('property')?.text;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Following references: identifiers to params and variables, module params to their callers, module outputs to
// their value. This is what lets a test say "CSE_ROTATION_CONCURRENCY defaults to 16" when the value travels
// main.bicep param → module param → app setting.

export type Resolved =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'expression'; readonly node: SyntaxNode; readonly file: BicepFile };

export function resolve(files: readonly BicepFile[], file: BicepFile, node: SyntaxNode, depth = 0): Resolved {
  const expression: Resolved = { kind: 'expression', node, file };
  if (depth > 20) return expression;
  const literal = literalText(node);
  if (literal !== undefined) return { kind: 'literal', value: literal };

  switch (node.type) {
    case 'string': {
      // '${a}-poison' is a literal when every interpolated expression is.
      let text = '';
      for (const part of node.namedChildren) {
        if (part.type !== 'interpolation') {
          text += part.type === 'escape_sequence' ? unescape(part.text) : part.text;
          continue;
        }
        const inner = part.namedChildren[0];
        const value = inner && resolve(files, file, inner, depth + 1);
        if (value?.kind !== 'literal') return expression;
        text += value.value;
      }
      return { kind: 'literal', value: text };
    }
    case 'parenthesized_expression': {
      const inner = node.namedChildren[0];
      return inner ? resolve(files, file, inner, depth + 1) : expression;
    }
    case 'ternary_expression': {
      const condition = node.childForFieldName('condition');
      const chosen = condition && resolve(files, file, condition, depth + 1);
      if (chosen?.kind !== 'literal' || !['true', 'false'].includes(chosen.value)) return expression;
      const branch = node.childForFieldName(chosen.value === 'true' ? 'consequence' : 'alternative');
      return branch ? resolve(files, file, branch, depth + 1) : expression;
    }
    case 'call_expression': {
      // string(x) of a literal is that literal's text (ARM would write booleans as True/False: avoided in the
      // templates, and not modelled here on purpose so such a value fails the defaults check).
      const arg = node.namedChildren.find((c) => c.type === 'arguments')?.namedChildren[0];
      if (calledName(node) === 'string' && arg) {
        const inner = resolve(files, file, arg, depth + 1);
        if (inner.kind === 'literal' && !['true', 'false'].includes(inner.value)) return inner;
      }
      return expression;
    }
    case 'identifier':
      return resolveIdentifier(files, file, node, depth) ?? expression;
    case 'member_expression':
      return resolveModuleOutput(files, file, node, depth) ?? expression;
    default:
      return expression;
  }
}

function resolveIdentifier(files: readonly BicepFile[], file: BicepFile, node: SyntaxNode, depth: number) {
  const decl = findDeclaration(file, node.text);
  if (!decl) return undefined;
  if (decl.kind === 'var') {
    const value = decl.node.namedChildren[decl.node.namedChildren.length - 1];
    return value ? resolve(files, file, value, depth + 1) : undefined;
  }
  if (decl.kind !== 'param') return undefined;
  // A value given by the caller wins over the default.
  const callers = moduleCallers(files, file);
  const given = callers.flatMap((call) => {
    const value = valueAt(body(call.node), `params.${decl.name}`);
    return value ? [resolve(files, call.file, value, depth + 1)] : [];
  });
  if (given.length === 1) return given[0];
  if (given.length > 1) return undefined; // several callers: no single value
  const defaultValue = paramDefault(decl.node);
  return defaultValue ? resolve(files, file, defaultValue, depth + 1) : undefined;
}

/** `storage.outputs.name` → the value of `output name` in the module `storage` points to. */
function resolveModuleOutput(files: readonly BicepFile[], file: BicepFile, node: SyntaxNode, depth: number) {
  const property = node.childForFieldName('property');
  const object = node.childForFieldName('object');
  if (!property || object?.type !== 'member_expression') return undefined;
  const moduleRef = object.childForFieldName('object');
  if (object.childForFieldName('property')?.text !== 'outputs' || moduleRef?.type !== 'identifier') return undefined;
  const moduleDecl = findDeclaration(file, moduleRef.text);
  const target = moduleDecl?.kind === 'module' ? moduleTarget(files, moduleDecl) : undefined;
  const output = target ? declarations(target, 'output').find((o) => o.name === property.text) : undefined;
  const value = output?.node.namedChildren[output.node.namedChildren.length - 1];
  return target && value ? resolve(files, target, value, depth + 1) : undefined;
}

/** The default value expression of a param declaration (`param x int = 16` → 16). */
export function paramDefault(decl: SyntaxNode): SyntaxNode | undefined {
  const equals = decl.children.findIndex((c) => c.type === '=');
  return equals >= 0 ? decl.children.slice(equals + 1).find((c) => c.isNamed) : undefined;
}

/** The path string of a module declaration (`'modules/storage.bicep'`). */
export function modulePath(decl: SyntaxNode): string | undefined {
  const raw = decl.namedChildren.find((c) => c.type === 'string');
  return raw ? stringLiteral(raw) : undefined;
}

/** The file a local module declaration points to, if it is one of `files`. */
export function moduleTarget(files: readonly BicepFile[], moduleDecl: Declaration): BicepFile | undefined {
  const path = modulePath(moduleDecl.node);
  if (!path) return undefined;
  const resolved = normalize(join(dirname(moduleDecl.file.path), path))
    .split(sep)
    .join('/');
  return files.find((f) => f.path === resolved);
}

/** The module declarations (in any file) that deploy `file`. */
export function moduleCallers(files: readonly BicepFile[], file: BicepFile): Declaration[] {
  return files.flatMap((f) => declarations(f, 'module').filter((m) => moduleTarget(files, m) === file));
}
