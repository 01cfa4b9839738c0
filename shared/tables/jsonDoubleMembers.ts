/**
 * The Table service writes an Edm.Double without a type annotation, as a JSON number with a decimal point
 * (`"Price":2.0`), and an Edm.Int32 as a plain integer (`"Count":2`). JSON.parse loses that difference, so
 * @azure/data-tables reads every integral Double back as an Int32 and a read-modify-write would change the
 * property's type. This scanner recovers it from the response text: for every JSON object in document order,
 * the names of its members whose value is a number written with a fraction or an exponent.
 *
 * The input is a service response that JSON.parse has accepted (or will); the scanner only tracks strings,
 * nesting and number tokens and does not validate.
 */
export function jsonDoubleMembers(text: string): Set<string>[] {
  const objects: Set<string>[] = [];
  const stack: (
    { kind: 'object'; members: Set<string>; key: string | undefined; expectKey: boolean } | { kind: 'array' }
  )[] = [];
  let i = 0;
  const readString = (): string => {
    // at the opening quote
    let out = '';
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') {
        const start = i;
        i += text[i + 1] === 'u' ? 6 : 2;
        out += JSON.parse(`"${text.slice(start, i)}"`) as string;
      } else {
        out += text[i];
        i++;
      }
    }
    i++;
    return out;
  };
  while (i < text.length) {
    const c = text[i] as string;
    const top = stack[stack.length - 1];
    if (c === '{') {
      const members = new Set<string>();
      objects.push(members);
      stack.push({ kind: 'object', members, key: undefined, expectKey: true });
      i++;
    } else if (c === '[') {
      stack.push({ kind: 'array' });
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
    } else if (c === '"') {
      const s = readString();
      if (top?.kind === 'object' && top.expectKey) {
        top.key = s;
        top.expectKey = false;
      }
    } else if (c === ',') {
      if (top?.kind === 'object') top.expectKey = true;
      i++;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      const start = i;
      while (i < text.length && /[-+0-9.eE]/.test(text[i] as string)) i++;
      if (top?.kind === 'object' && top.key !== undefined && /[.eE]/.test(text.slice(start, i)))
        top.members.add(top.key);
    } else {
      i++;
    }
  }
  return objects;
}
