// Which names may appear in a dirtree: the rule that keeps checkouts inside their destination.

/** Why `name` cannot be a directory entry, or undefined when it can. */
export function invalidNameReason(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name === '.' || name === '..') return `name '${name}' is reserved`;
  if (name.includes('/')) return `name '${name}' contains '/'`;
  if (name.includes('\0')) return 'name contains NUL';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'name longer than 255 bytes';
  return undefined;
}

export function isValidName(name: string): boolean {
  return invalidNameReason(name) === undefined;
}

/**
 * `path/name` by concatenation, which path.join's normalization costs several times over when done
 * for each file of a tree. Only for a `name` that is one component (a dirtree name, checked when
 * decoded, or one readdir gave) and a `path` that is normalized already.
 */
export function childPath(path: string, name: string): string {
  return path.endsWith('/') ? `${path}${name}` : `${path}/${name}`;
}
