// bench/lib/table.ts — owns how every benchmark lays out its result rows: an aligned text table for
// the terminal and a Markdown table for docs/benchmarks.md (first column left, the rest right, the last left).

/** Rows (the first the header) as columns padded to one width each, a dashed rule under the header. */
export function textTable(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: readonly string[]): string =>
    row.map((c, i) => (i === row.length - 1 ? c : i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const [header, ...body] = rows;
  return [line(header!), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** Rows (the first the header) as a Markdown table; a `|` inside a cell is escaped. */
export function markdownTable(rows: readonly string[][]): string {
  const line = (row: readonly string[]): string => `| ${row.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
  const [header, ...body] = rows;
  const align = header!.map((_, i) => (i === 0 || i === header!.length - 1 ? ':--' : '--:'));
  return [line(header!), line(align), ...body.map(line)].join('\n');
}
