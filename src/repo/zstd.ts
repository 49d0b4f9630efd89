// zstd-napi, loaded on first use: importing it loads its native addon, which only archive-mode
// repositories and deltas need, not every command that opens a repository (`status`, `rollback`).
import { createRequire } from 'node:module';

type Zstd = typeof import('zstd-napi');
type ZstdBinding = typeof import('zstd-napi/binding.js');
const load = createRequire(import.meta.url);
let zstd: Zstd | undefined;
let binding: ZstdBinding | undefined;

/** The zstd-napi module (loaded once, on the first call). */
export function zstdModule(): Zstd {
  zstd ??= load('zstd-napi') as Zstd;
  return zstd;
}

/** Its low-level binding (contexts, parameters, frame headers), loaded the same way. */
export function zstdBinding(): ZstdBinding {
  binding ??= load('zstd-napi/binding.js') as ZstdBinding;
  return binding;
}
