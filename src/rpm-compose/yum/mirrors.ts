// Mirror lists of a yum repository: a metalink (MirrorManager's XML: mirror URLs of repomd.xml
// and the digests repomd.xml must have) or a mirrorlist (one base URL per line). Parsing only.

/** What a metalink or mirrorlist says: base URLs in preference order, and repomd.xml's allowed digests. */
export interface MirrorSet {
  /** Each ends with '/', the repository's root (where `repodata/` is). */
  readonly mirrors: readonly string[];
  /** Digests repomd.xml may have (the current one and MirrorManager's alternates); empty means unchecked. */
  readonly repomdDigests: readonly { readonly type: 'sha256' | 'sha512'; readonly value: string }[];
}

const SCHEMES = /^(https?|file):\/\//;
const withSlash = (url: string): string => (url.endsWith('/') ? url : `${url}/`);

/**
 * Parses a metalink document: `<file name="repomd.xml">`, its `<hash type="sha256|sha512">`
 * digests (weaker ones are ignored) and its `<url>`s, highest `preference` first (document order
 * between equals). A URL must end in `repodata/repomd.xml`; its base is what is kept. Throws a
 * plain Error describing the problem (the caller names the repository and the URL).
 */
export async function parseMetalink(text: string): Promise<MirrorSet> {
  const { SaxesParser } = await import('saxes');
  const parser = new SaxesParser({ xmlns: false, position: true });
  const stack: string[] = [];
  let inRepomd = false;
  let hashType: string | undefined;
  let preference = 0;
  let body = '';
  const urls: { url: string; preference: number; order: number }[] = [];
  const digests: { type: 'sha256' | 'sha512'; value: string }[] = [];
  parser.on('opentag', (tag) => {
    stack.push(tag.name);
    body = '';
    const attrs = tag.attributes as Record<string, string>;
    if (tag.name === 'file') inRepomd = attrs.name === 'repomd.xml';
    if (tag.name === 'hash') hashType = attrs.type?.toLowerCase();
    if (tag.name === 'url') preference = Number(attrs.preference ?? 0) || 0;
  });
  parser.on('text', (t) => void (body += t));
  parser.on('closetag', (tag) => {
    stack.pop();
    if (tag.name === 'file') inRepomd = false;
    if (!inRepomd) return;
    const value = body.trim();
    if (tag.name === 'hash' && (hashType === 'sha256' || hashType === 'sha512')) {
      if (!new RegExp(`^[0-9a-f]{${hashType === 'sha256' ? 64 : 128}}$`).test(value.toLowerCase()))
        throw new Error(`a ${hashType} hash of repomd.xml is not hex of the right length`);
      digests.push({ type: hashType, value: value.toLowerCase() });
    }
    if (tag.name === 'url' && SCHEMES.test(value) && value.endsWith('/repodata/repomd.xml'))
      urls.push({ url: value.slice(0, -'repodata/repomd.xml'.length), preference, order: urls.length });
  });
  try {
    parser.write(text).close();
  } catch (error) {
    throw new Error(`not a metalink: ${(error as Error).message.replace(/\.$/, '')}`);
  }
  if (urls.length === 0) throw new Error('the metalink lists no repomd.xml URL');
  urls.sort((a, b) => b.preference - a.preference || a.order - b.order);
  return { mirrors: urls.map((u) => withSlash(u.url)), repomdDigests: digests };
}

/**
 * Parses a mirrorlist: one base URL per line, `#` comments and blank lines skipped. dnf reads a
 * metalink served as a mirrorlist as a metalink, and so does this.
 */
export async function parseMirrorlist(text: string): Promise<MirrorSet> {
  if (/<metalink[\s>]/.test(text)) return parseMetalink(text);
  const mirrors = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#') && SCHEMES.test(line))
    .map(withSlash);
  if (mirrors.length === 0) throw new Error('the mirrorlist lists no http, https or file URL');
  return { mirrors, repomdDigests: [] };
}
