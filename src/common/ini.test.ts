// The shared INI parser and writer: what a config or origin line may be, the line named by each
// error (never its content), the rules a file kind adds, and the round trip.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { type IniRules, formatIni, iniValues, parseIni } from './ini.js';

const parsed = (text: string, rules?: IniRules): ReturnType<typeof parseIni> => parseIni(text, rules);

describe('parseIni', () => {
  it('reads sections, keys and values in file order with the line of each value', () => {
    const text = '# comment\n[core]\nmode = bare\n ; another\n\n[remote "a b"]\nurl=http://h/x=y\n';
    expect(parsed(text)).toEqual({
      sections: new Map([
        ['core', new Map([['mode', { value: 'bare', line: 3 }]])],
        ['remote "a b"', new Map([['url', { value: 'http://h/x=y', line: 7 }]])],
      ]),
    });
  });

  it('reads CRLF text as LF text, with trimmed keys and values and an empty value', () => {
    const lf = parseIni('[s]\nk = v\nempty=\n');
    expect(parseIni('[s]\r\n\tk =  v \r\nempty=\r\n')).toEqual(lf);
    expect('sections' in lf && iniValues(lf.sections)).toEqual(
      new Map([
        [
          's',
          new Map([
            ['k', 'v'],
            ['empty', ''],
          ]),
        ],
      ]),
    );
  });

  it('continues a section named twice', () => {
    const result = parseIni('[a]\nx=1\n[b]\ny=2\n[a]\nz=3\n');
    expect('sections' in result && [...(result.sections.get('a')?.keys() ?? [])]).toEqual(['x', 'z']);
  });

  it.each<[string, string, number, string]>([
    ['a line before any section', 'k=v\n', 1, 'expected [section] or key=value'],
    ['a line without =', '[s]\nk v\n', 2, 'expected [section] or key=value'],
    ['an empty key', '[s]\n = v\n', 2, 'expected [section] or key=value'],
    ['an unclosed header', '[s]\n[t\n', 2, 'expected [section] or key=value'],
    ['a header with text after it', '[s] x\n', 1, 'expected [section] or key=value'],
    ['an empty section name', '[]\n', 1, 'the section name is empty or holds a bracket'],
    ['a bracket in a section name', '[a]b]\n', 1, 'the section name is empty or holds a bracket'],
    ['a control character in a value', '[s]\nk=a\u001bb\n', 2, 'it contains a control character'],
    ['a tab inside a line', '[s]\nk\t=v\n', 2, 'it contains a control character'],
    ['a carriage return inside a line', '[s]\nk=a\rpinned=true\n', 2, 'it contains a control character'],
    ['a repeated key', '[s]\nk=1\n\nk=2\n', 4, "key 'k' appears twice in its section"],
    [
      'a repeated key across a repeated section',
      '[s]\nk=1\n[t]\n[s]\nk=2\n',
      5,
      "key 'k' appears twice in its section",
    ],
  ])('refuses %s, naming the line', (_, text, line, problem) => {
    expect(parseIni(text)).toEqual({ error: { line, problem } });
  });

  it('reports the first bad line, not a later one', () => {
    expect(parseIni('[s]\nbad\nk=1\nk=2\n')).toEqual({
      error: { line: 2, problem: 'expected [section] or key=value' },
    });
  });

  it('never quotes a value or a whole line in a problem', () => {
    for (const text of ['[s]\ns3cr3t\n', 's3cr3t=x\n', '[s]\nk=s3cr3t\u0007\n', '[s3cr3t\n', '[s3]cr3t]\n']) {
      const result = parseIni(text);
      expect('error' in result && result.error.problem).not.toMatch(/s3/);
    }
  });

  it("applies a file kind's noun and name rules in line order", () => {
    const rules: IniRules = {
      noun: 'group',
      sectionProblem: (name) => (name === 'bad' ? 'no bad groups' : undefined),
      keyProblem: (key) => (key.includes(' ') ? 'no spaces in keys' : undefined),
    };
    expect(parseIni('k=v\n', rules)).toEqual({ error: { line: 1, problem: 'expected [group] or key=value' } });
    expect(parseIni('[ok]\n[bad]\n', rules)).toEqual({ error: { line: 2, problem: 'no bad groups' } });
    expect(parseIni('[ok]\na b=1\n', rules)).toEqual({ error: { line: 2, problem: 'no spaces in keys' } });
    expect(parseIni('[ok]\nk=1\nk=1\n', rules)).toEqual({
      error: { line: 3, problem: "key 'k' appears twice in its group" },
    });
  });
});

describe('formatIni', () => {
  it('writes each section as a header and its lines, sections apart by an empty line', () => {
    const ini = new Map([
      ['core', new Map([['mode', 'bare']])],
      ['empty', new Map()],
    ]);
    expect(formatIni(ini)).toBe('[core]\nmode=bare\n\n[empty]\n');
  });

  const name = fc.stringMatching(/^[!-Z^-~][ -Z^-~]{0,8}[!-Z^-~]$|^[!-Z^-~]$/);
  const key = fc.stringMatching(/^[!-<>-~]([ -<>-~]{0,8}[!-<>-~])?$/).filter((k) => !/^[#;[]/.test(k));
  const value = fc.stringMatching(/^([!-~]([ -~]{0,10}[!-~])?)?$/);
  const inis = fc
    .dictionary(name, fc.dictionary(key, value))
    .map((s) => new Map(Object.entries(s).map(([n, kv]) => [n, new Map(Object.entries(kv))])));
  test.prop([inis])('writes what parseIni reads back equal', (ini) => {
    const result = parseIni(formatIni(ini));
    expect('sections' in result && iniValues(result.sections)).toEqual(ini);
  });
});
