// Reusable memory for the content of fetched file objects on its way from the fetch helper's stream
// to a store worker and back: a pull allocates buffers for as many objects as it has in flight,
// not one per object, so its malloc heap stays at that size instead of at the high-water mark of
// garbage waiting for two isolates' collectors.

/** The smallest buffer handed out; sizes are powers of two from here. */
const SMALLEST = 4096;
/** Idle buffers kept per size: about as many as a pull has objects in flight. */
const KEPT_PER_SIZE = 16;

const idle = new Map<number, ArrayBuffer[]>();
/** Buffers of this pool, told apart from Node's shared slabs, which must never be handed over. */
const ours = new WeakSet<ArrayBuffer>();

/** The power of two (at least SMALLEST) that holds `size` bytes. */
function sizeClass(size: number): number {
  let bytes = SMALLEST;
  while (bytes < size) bytes *= 2;
  return bytes;
}

/** A view of exactly `size` bytes at the start of a reusable buffer (contents undefined). */
export function takeContentBuffer(size: number): Buffer {
  const bytes = sizeClass(size);
  let buffer = idle.get(bytes)?.pop();
  if (buffer === undefined) {
    buffer = new ArrayBuffer(bytes);
    ours.add(buffer);
  }
  return Buffer.from(buffer, 0, size);
}

/** Whether `buffer` came from takeContentBuffer (and so may travel to a worker and come back). */
export function isContentBuffer(buffer: ArrayBuffer): boolean {
  return ours.has(buffer);
}

/** Takes back a buffer of this pool that nothing refers to any more. */
export function recycleContentBuffer(buffer: ArrayBuffer): void {
  let list = idle.get(buffer.byteLength);
  if (list === undefined) {
    list = [];
    idle.set(buffer.byteLength, list);
  }
  // A buffer that came back from a worker is a new object: known again as ours.
  ours.add(buffer);
  if (list.length < KEPT_PER_SIZE) list.push(buffer);
}
