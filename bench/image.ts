// bench/image.ts — the image benchmark (`node dist/bench/run.js --suite image`): `arbor image build`
// of tree v1 against the floor measured in the same run, `mkfs.ext4 -d` of a hardlinked checkout
// of the same commit into an image file as big as the image's root partition. Reports both walls,
// their ratio, the image size and arbor's peak RSS; writes bench/results/image-DATE.json.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fmt } from './lib/format.js';
import { median } from './lib/model.js';
import { run, timeStep, type Timing } from './lib/proc.js';
import { writeJsonResults } from './lib/report.js';

export interface ImageBenchOptions {
  v1: string;
  /** The suite works in WORK/image, emptied at the start and the end. */
  work: string;
  runs: number;
  repoRoot: string;
  arborBin: string;
}

/** The part of `image build --json` the suite reads. */
interface ImageJson {
  size: number;
  partitions: { name: string; size: number }[];
  /** Wall seconds of each step of the build. */
  stepSeconds: Record<string, number>;
}

interface ImagePass {
  image: Timing;
  imageSteps: Record<string, number>;
  floor: Timing;
}

/** What the issue asks of an image build: at most this many times the floor. */
const TARGET_RATIO = 1.5;

function log(message: string): void {
  process.stderr.write(`[bench image] ${message}\n`);
}

/** Runs the suite; returns the median ratio image/floor. */
export async function runImageSuite(o: ImageBenchOptions): Promise<{ ratio: number }> {
  const base = join(o.work, 'image');
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const arbor = (...args: string[]): string[] => ['node', o.arborBin, ...args];
  try {
    const repo = join(base, 'repo');
    await run(arbor('init', '--repo', repo, '--mode', 'bare-user'));
    const commit = (
      await run(
        arbor('commit', '--repo', repo, '-b', 'bench', '-s', 'v1', '--tree', `dir=${o.v1}`).concat([
          '--owner-uid',
          '0',
          '--owner-gid',
          '0',
        ]),
      )
    ).trim();
    const passes: ImagePass[] = [];
    let image: ImageJson | null = null;
    for (let i = 0; i < o.runs; i++) {
      const disk = join(base, 'disk.img');
      const json = join(base, 'image.json');
      rmSync(disk, { force: true });
      const imageTiming = await timeStep(log, `image build (run ${i + 1})`, [
        'sh',
        '-c',
        `node "$1" image build --repo "$2" bench -o "$3" --json > "$4"`,
        'sh',
        o.arborBin,
        repo,
        disk,
        json,
      ]);
      image = JSON.parse(readFileSync(json, 'utf8')) as ImageJson;
      rmSync(disk);
      const rootBytes = image?.partitions.find((p) => p.name === 'root')?.size ?? 0;
      // The floor: the same commit checked out by hardlinks, then mkfs.ext4 -d into a file of the root's size.
      const checkout = join(base, 'checkout');
      rmSync(checkout, { recursive: true, force: true });
      await run(arbor('checkout', '--repo', repo, '--user-mode', 'bench', checkout));
      const floorImage = join(base, 'floor.img');
      rmSync(floorImage, { force: true });
      await run(['truncate', '-s', String(rootBytes), floorImage]);
      const floorTiming = await timeStep(log, `floor mkfs.ext4 -d (run ${i + 1})`, [
        'mkfs.ext4',
        '-q',
        '-F',
        '-d',
        checkout,
        floorImage,
      ]);
      rmSync(floorImage);
      rmSync(checkout, { recursive: true, force: true });
      passes.push({ image: imageTiming.timing, imageSteps: image.stepSeconds, floor: floorTiming.timing });
    }
    const imageWall = median(passes.map((p) => p.image.wallS));
    const floorWall = median(passes.map((p) => p.floor.wallS));
    const ratio = imageWall / floorWall;
    const rss = median(passes.map((p) => p.image.maxRssMiB));
    const text = [
      `image build of ${o.v1} (commit ${commit.slice(0, 12)}), ${o.runs} run(s), medians:`,
      `  arbor image build   ${fmt.s(imageWall)} s wall, peak RSS ${fmt.mib(rss)} MiB, image ${fmt.mib((image?.size ?? 0) / 2 ** 20)} MiB`,
      `  its steps (last run) ${Object.entries(passes.at(-1)?.imageSteps ?? {})
        .map(([step, seconds]) => `${step} ${fmt.s(seconds)} s`)
        .join(', ')}`,
      `  floor mkfs.ext4 -d  ${fmt.s(floorWall)} s wall`,
      `  ratio               ${fmt.ratio(ratio)} (target ≤ ${TARGET_RATIO}×)${ratio <= TARGET_RATIO ? '' : '  MISSED'}`,
    ].join('\n');
    process.stdout.write(`${text}\n`);
    const result = {
      date: new Date().toISOString(),
      tree: o.v1,
      commit,
      runs: passes,
      imageBytes: image?.size ?? null,
      median: { imageWallS: imageWall, floorWallS: floorWall, ratio, imageMaxRssMiB: rss },
      targetRatio: TARGET_RATIO,
    };
    const file = writeJsonResults(join(o.repoRoot, 'bench/results'), 'image', result);
    log(`results: ${relative(o.repoRoot, file)}`);
    return { ratio };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
