// The [Install] section of a systemd unit file, read as systemd reads it: what enabling the unit links.
/** The [Install] section's settings: space-separated lists, repeated keys appended, an empty assignment resetting. */
export function parseInstallSection(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let inInstall = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) {
      inInstall = line === '[Install]';
      continue;
    }
    if (!inInstall || line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const values = line
      .slice(eq + 1)
      .trim()
      .split(/\s+/)
      .filter((v) => v !== '');
    if (values.length === 0) out.set(key, []);
    else out.set(key, [...(out.get(key) ?? []), ...values]);
  }
  return out;
}
