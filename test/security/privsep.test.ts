// Privilege-separated fetching: a pull run as root talks HTTP from a helper process running as an
// unprivileged user, seen from a real server on 127.0.0.1 (the peer of every request), and the
// root side believes nothing the helper sends: a helper that lies (a script speaking the protocol)
// is caught by the same checks a hostile server meets.
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Checksum, hashBytes } from '../../src/common/hash.js';
import { DEFAULT_TRANSFER_LIMITS } from '../../src/repo/fetch.js';
import { FrameType, encodeFrame, encodeJsonFrame } from '../../src/repo/fetch-frames.js';
import { FetchHelper } from '../../src/repo/fetch-privsep.js';
import { encodeFileHeader } from '../../src/repo/objects/index.js';
import { Repo } from '../../src/repo/store.js';
import { storeFetchedFile } from '../../src/repo/verify-store.js';
import { IS_ROOT, arbor, runCliAsync, sh } from '../support/cli.js';
import { type HostileServer, type PeerProcess, peerProcess, startHostileServer } from '../support/hostile.js';
import { initRepo, regularHeader } from '../support/repo-surgery.js';
import { useTempDir } from '../support/temp.js';
import { fsck, refsOf } from '../support/transfer.js';
import { pseudoRandomBytes } from '../support/tree.js';

const NOBODY = 65534;

describe.skipIf(!IS_ROOT)('a pull run as root', () => {
  const tmp = useTempDir('arbor-privsep-');
  let host: HostileServer;
  let clients = 0;
  /** The client process behind each request, in arrival order. */
  const peers: (PeerProcess | null)[] = [];

  beforeAll(async () => {
    const tree = join(tmp.path, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(tree, `f${i}`), pseudoRandomBytes(100 + i * 300, i));
    // Over the 2 MiB the root side keeps in memory: this one goes through a staging file.
    writeFileSync(join(tree, 'sub/big'), pseudoRandomBytes(3 * 1024 * 1024 + 7, 99));
    const server = initRepo(join(tmp.path, 'server'), 'archive');
    arbor('commit', '--repo', server, '-b', 'os/main', '--tree', `dir=${tree}`);
    arbor('summary', '--repo', server, '--update');
    host = await startHostileServer(server, (req) => {
      peers.push(peerProcess(req.socket));
      return false;
    });
  });
  afterAll(async () => {
    await host?.stop();
  });

  /** A fresh client whose config's [core] section also holds `core` lines. */
  const client = (mode: 'bare-user' | 'archive' | 'bare', core: string[] = []): string => {
    const repo = initRepo(join(tmp.path, `client-${clients++}`), mode);
    const config = readConfig(repo).replace('[core]\n', `[core]\n${core.map((l) => `${l}\n`).join('')}`);
    writeFileSync(join(repo, 'config'), config);
    arbor('remote', 'add', '--repo', repo, 'origin', host.url, '--no-sign-verify');
    return repo;
  };
  const readConfig = (repo: string): string => readFileSync(join(repo, 'config'), 'utf8');
  const pull = async (repo: string): Promise<PeerProcess[]> => {
    peers.length = 0;
    const r = await runCliAsync(['pull', '--repo', repo, 'origin', 'os/main']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(refsOf(repo)).toHaveProperty(['origin:os/main']);
    expect(fsck(repo).exitCode).toBe(0);
    expect(peers.length).toBeGreaterThan(20);
    expect(peers).not.toContain(null);
    return peers as PeerProcess[];
  };

  it.each(['bare-user', 'archive', 'bare'] as const)(
    'fetches from a helper running as nobody with no groups or capabilities (%s client)',
    async (mode) => {
      const repo = client(mode);
      const seen = await pull(repo);
      for (const p of seen)
        expect(p).toMatchObject({ uid: NOBODY, gid: NOBODY, groups: [], capEff: '0000000000000000' });
      // One helper for the whole pull, and not the arbor process itself.
      expect(new Set(seen.map((p) => p.pid)).size).toBe(1);
      // It wrote nothing: no file in the repository belongs to it.
      expect(sh(`find '${repo}' -uid ${NOBODY} -o -gid ${NOBODY}`)).toBe('');
    },
  );

  it('runs the helper as fetch-user and fetch-group when the config names them', async () => {
    const seen = await pull(client('bare-user', ['fetch-user=daemon', `fetch-group=${NOBODY}`]));
    for (const p of seen) expect(p).toMatchObject({ uid: 1, gid: NOBODY, groups: [] });
  });

  it('fetches in-process, as root, with fetch-privsep=false', async () => {
    const seen = await pull(client('bare-user', ['fetch-privsep=false']));
    for (const p of seen) expect(p.uid).toBe(0);
  });

  it.each([
    ['fetch-user=root', 2, 'E_CONFIG_INVALID', 'would run as uid 0'],
    ['fetch-user=no-such-user-here', 1, 'E_FETCH_USER_UNKNOWN', "user 'no-such-user-here' does not exist"],
    ['fetch-privsep=maybe', 2, 'E_CONFIG_INVALID', 'fetch-privsep=maybe'],
  ])('refuses %s before fetching anything', async (line, exitCode, code, mention) => {
    const repo = client('bare-user', [line]);
    peers.length = 0;
    const r = await runCliAsync(['pull', '--repo', repo, 'origin', 'os/main']);
    expect(r.stderr).toContain(`error[${code}]`);
    expect(r.stderr).toContain(mention);
    expect(r.exitCode).toBe(exitCode);
    expect(peers).toEqual([]);
  });
});

describe('a fetch helper that lies', () => {
  const tmp = useTempDir('arbor-lying-helper-');
  let scripts = 0;
  let repo: Repo;

  beforeAll(() => {
    repo = Repo.init(join(tmp.path, 'repo'), 'bare-user');
    // The script must be readable by whoever runs it; the helper here runs as this process.
    chmodSync(tmp.path, 0o755);
  });
  afterAll(() => repo?.close());

  const object = (size: number): { header: Buffer; content: Buffer; checksum: Checksum } => {
    const header = encodeFileHeader(regularHeader(size));
    const content = pseudoRandomBytes(size, size);
    return { header, content, checksum: hashBytes(header, content) };
  };

  /**
   * A helper speaking the protocol that answers every request with `frames` (the request's id
   * filled in), then exits with status 7 when `die`.
   */
  const helperScript = (frames: Buffer[], die = false): string => {
    const path = join(tmp.path, `helper-${scripts++}.mjs`);
    writeFileSync(
      path,
      `const frames = ${JSON.stringify(frames.map((f) => f.toString('base64')))}.map((b) => Buffer.from(b, 'base64'));
let input = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  input = Buffer.concat([input, chunk]);
  while (input.length >= 9 && input.length >= 9 + input.readUInt32BE(5)) {
    const type = input[0];
    const id = input.readUInt32BE(1);
    input = input.subarray(9 + input.readUInt32BE(5));
    if (type === ${FrameType.Init}) continue;
    for (const f of frames) {
      const out = Buffer.from(f);
      if (out.readUInt32BE(1) === 0) out.writeUInt32BE(id, 1);
      process.stdout.write(out);
    }
    ${die ? "process.stderr.write('helper gave up\\n'); process.exit(7);" : ''}
  }
});
`,
    );
    return path;
  };
  const data = (bytes: Buffer): Buffer[] => {
    const out: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += 100_000)
      out.push(encodeFrame(FrameType.Data, 0, bytes.subarray(at, at + 100_000)));
    return out;
  };
  const end = (fetched = 1): Buffer => encodeJsonFrame(FrameType.End, 0, { fetched });
  const begin = (): Buffer => encodeFrame(FrameType.Begin, 0);
  /** Only the head of a frame announcing `length` payload bytes. */
  const frameHead = (type: number, length: number): Buffer => {
    const head = Buffer.alloc(9);
    head.writeUInt8(type, 0);
    head.writeUInt32BE(length, 5);
    return head;
  };
  const objectFrames = (header: Buffer, content: Buffer): Buffer[] => [
    begin(),
    encodeFrame(FrameType.Header, 0, header),
    ...data(content),
    end(),
  ];

  /** Asks a helper running `script` for object `checksum` of `size` bytes and stores what it sends. */
  const fetchAndStore = async (script: string, checksum: Checksum, size: number): Promise<void> => {
    const helper = new FetchHelper(
      { url: 'http://127.0.0.1:9/', concurrency: 1, limits: DEFAULT_TRANSFER_LIMITS },
      null,
      script,
    );
    const tx = repo.beginTransaction();
    const staging = tx.staging;
    try {
      let spills = 0;
      const fetched = await helper.fileObject(checksum, 'objects/x.filez', size, size + 2048, () =>
        join(tx.staging, `fetch-${spills++}`),
      );
      storeFetchedFile(tx, checksum, fetched, size, 'the helper');
      tx.commit([]);
    } finally {
      // Nothing the helper sent is left behind in staging, whatever happened.
      if (existsSync(staging)) expect(readdirSync(staging).filter((n) => n.startsWith('fetch-'))).toEqual([]);
      tx.abort();
      helper.close();
    }
  };

  it.each([
    ['in memory', 5000],
    ['through a staging file', 3 * 1024 * 1024 + 1],
  ])('stores an honest object sent %s, after a retry voided the first attempt', async (_how, size) => {
    const { header, content, checksum } = object(size);
    const half = data(content.subarray(0, size >> 1));
    const script = helperScript([
      begin(),
      encodeFrame(FrameType.Header, 0, header),
      ...half,
      ...objectFrames(header, content),
    ]);
    await fetchAndStore(script, checksum, size);
    expect(repo.hasObject(checksum, 'file')).toBe(true);
    expect(repo.loadFile(checksum).content.equals(content)).toBe(true);
  });

  it.each([
    ['in memory', 5001],
    ['through a staging file', 3 * 1024 * 1024 + 3],
  ])('rejects content that does not hash to the name, sent %s, with E_PULL_CORRUPT', async (_how, size) => {
    const { header, content, checksum } = object(size);
    const forged = Buffer.from(content);
    forged[size - 1] = (forged[size - 1] as number) ^ 1;
    await expect(fetchAndStore(helperScript(objectFrames(header, forged)), checksum, size)).rejects.toMatchObject({
      code: 'E_PULL_CORRUPT',
      exit: 3,
      message: expect.stringContaining(`file ${checksum} from the helper hashes to`),
    });
    expect(repo.hasObject(checksum, 'file')).toBe(false);
  });

  it('rejects more content than the dirtree records with E_OBJECT_TOO_LARGE, before storing a byte', async () => {
    const { header, content, checksum } = object(5000);
    const script = helperScript(objectFrames(header, Buffer.concat([content, Buffer.alloc(10)])));
    await expect(fetchAndStore(script, checksum, 5000)).rejects.toMatchObject({
      code: 'E_OBJECT_TOO_LARGE',
      message: expect.stringContaining('the fetch helper sent more than the 5000 content bytes its dirtree records'),
    });
  });

  it('rejects less content than the dirtree records with E_PULL_CORRUPT', async () => {
    const { header, content, checksum } = object(5000);
    await expect(
      fetchAndStore(helperScript(objectFrames(header, content.subarray(1))), checksum, 5000),
    ).rejects.toMatchObject({ code: 'E_PULL_CORRUPT', message: expect.stringContaining('holds 4999 content bytes') });
  });

  it('rejects an object split at the wrong place (right bytes, wrong header) with E_PULL_CORRUPT', async () => {
    const { header, content, checksum } = object(5002);
    const whole = Buffer.concat([header, content]);
    // The same bytes, hashing right, but the "header" is one byte longer and the content one shorter.
    const frames = objectFrames(whole.subarray(0, header.length + 1), whole.subarray(header.length + 1));
    await expect(fetchAndStore(helperScript(frames), checksum, 5001)).rejects.toMatchObject({
      code: 'E_PULL_CORRUPT',
      message: expect.stringContaining('has a header that does not decode'),
    });
  });

  it('rejects a body longer than its bound with E_OBJECT_TOO_LARGE', async () => {
    const helper = new FetchHelper(
      { url: 'http://127.0.0.1:9/', concurrency: 1, limits: DEFAULT_TRANSFER_LIMITS },
      null,
      helperScript([begin(), ...data(Buffer.alloc(1001)), end()]),
    );
    try {
      await expect(helper.get('objects/ab/cd.dirtree', { maxBytes: 1000 })).rejects.toMatchObject({
        code: 'E_OBJECT_TOO_LARGE',
        message: expect.stringContaining('more than the 1000 bytes allowed'),
      });
    } finally {
      helper.close();
    }
  });

  it.each([
    [
      'announces a frame over 1 MiB',
      [begin(), frameHead(FrameType.Data, 1024 * 1024 + 1)],
      'a frame announces 1048577 bytes',
    ],
    [
      'answers a request that is not pending',
      [encodeJsonFrame(FrameType.End, 999, { fetched: 0 })],
      'request 999, which is not pending',
    ],
    ['sends content before a header', [begin(), ...data(Buffer.alloc(10))], 'content before a header'],
  ])('fails every request with E_FETCH_HELPER_FAILED when it %s', async (_what, frames, mention) => {
    const { checksum } = object(5000);
    await expect(fetchAndStore(helperScript(frames), checksum, 5000)).rejects.toMatchObject({
      code: 'E_FETCH_HELPER_FAILED',
      message: expect.stringContaining(mention),
    });
  });

  it('fails with E_FETCH_HELPER_FAILED, quoting its stderr, when it dies mid-request', async () => {
    const { header, content, checksum } = object(5000);
    const script = helperScript(
      [begin(), encodeFrame(FrameType.Header, 0, header), ...data(content.subarray(0, 100))],
      true,
    );
    await expect(fetchAndStore(script, checksum, 5000)).rejects.toMatchObject({
      code: 'E_FETCH_HELPER_FAILED',
      message: expect.stringMatching(/exited \(status 7\): helper gave up/),
    });
  });
});
