import { describe, expect, it } from 'vitest';
import { parseMetalink, parseMirrorlist } from './mirrors.js';

const SHA256 = 'a'.repeat(64);
const SHA512 = 'b'.repeat(128);

const metalink = (urls: string, hashes = `<hash type="sha256">${SHA256}</hash>`): string => `<?xml version="1.0"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" xmlns:mm0="http://fedorahosted.org/mirrormanager">
 <files>
  <file name="repomd.xml">
   <mm0:timestamp>1700000000</mm0:timestamp>
   <verification><hash type="md5">${'c'.repeat(32)}</hash>${hashes}</verification>
   <mm0:alternates><mm0:alternate><verification><hash type="sha512">${SHA512}</hash></verification></mm0:alternate></mm0:alternates>
   <resources maxconnections="1">${urls}</resources>
  </file>
 </files>
</metalink>`;

describe('parseMetalink', () => {
  it('orders mirrors by preference, keeps document order between equals, and collects sha256/sha512 digests', async () => {
    const set = await parseMetalink(
      metalink(`
      <url protocol="https" preference="90">https://b.example/repo/repodata/repomd.xml</url>
      <url protocol="https" preference="100">https://a.example/repo/repodata/repomd.xml</url>
      <url protocol="rsync" preference="100">rsync://r.example/repo/repodata/repomd.xml</url>
      <url protocol="http" preference="90">http://c.example/repo/repodata/repomd.xml</url>
      <url protocol="http" preference="95">http://d.example/elsewhere.xml</url>`),
    );
    expect(set.mirrors).toEqual(['https://a.example/repo/', 'https://b.example/repo/', 'http://c.example/repo/']);
    expect(set.repomdDigests).toEqual([
      { type: 'sha256', value: SHA256 },
      { type: 'sha512', value: SHA512 },
    ]);
  });

  it.each([
    ['no URL', metalink(''), /lists no repomd\.xml URL/],
    ['a short hash', metalink('<url>http://a/repodata/repomd.xml</url>', '<hash type="sha256">abc</hash>'), /not hex/],
    ['not XML', 'this is <not xml', /^not a metalink/],
  ])('refuses %s', async (_what, text, message) => {
    await expect(parseMetalink(text)).rejects.toThrow(message);
  });
});

describe('parseMirrorlist', () => {
  it('reads one base URL per line, skipping comments, blanks and other schemes', async () => {
    const set = await parseMirrorlist('# list\n\nhttp://a.example/r\n  https://b.example/r/  \nftp://c.example/r/\n');
    expect(set).toEqual({ mirrors: ['http://a.example/r/', 'https://b.example/r/'], repomdDigests: [] });
  });

  it('reads a metalink served as a mirrorlist as a metalink', async () => {
    const set = await parseMirrorlist(metalink('<url>http://a.example/r/repodata/repomd.xml</url>'));
    expect(set.mirrors).toEqual(['http://a.example/r/']);
  });

  it('refuses a list without URLs', async () => {
    await expect(parseMirrorlist('# nothing\n')).rejects.toThrow(/lists no http/);
  });
});
