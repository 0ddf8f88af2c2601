import type { ErrorCodeInfo } from '../errors.js';

/**
 * Compares error codes with a markdown table that documents them — rows `| \`CODE\` | status | … |`
 * — and returns the problems (empty when they agree): a code missing from the table or with another
 * status, and a row naming a code that is not declared. Core and plugins use the same check:
 * `expect(checkErrorCodeDocs(errors.codes, readme)).toEqual([])`. Only rows whose code starts with
 * one of the declared codes' prefixes (`ACME_E_`) count, so a README may list other codes too.
 */
export function checkErrorCodeDocs(codes: Readonly<Record<string, ErrorCodeInfo>>, markdown: string): string[] {
  const prefixes = new Set(Object.keys(codes).map((c) => c.slice(0, c.indexOf('_E_') + 3)));
  const rows = new Map<string, number>();
  for (const m of markdown.matchAll(/^\| `([A-Z][A-Z0-9]*_E_[A-Z0-9_]+)` \| (\d{3}) \|/gm)) {
    if ([...prefixes].some((p) => m[1]!.startsWith(p))) rows.set(m[1]!, Number(m[2]));
  }
  const problems: string[] = [];
  for (const [code, info] of Object.entries(codes)) {
    const status = rows.get(code);
    if (status === undefined) problems.push(`${code} (${info.status}) is not in the table`);
    else if (status !== info.status) problems.push(`${code} is documented with status ${status}, declared ${info.status}`);
  }
  for (const code of rows.keys()) if (!(code in codes)) problems.push(`${code} is documented but not declared`);
  return problems;
}
