// The framing between a pull and its fetch helper: frames survive any split of the byte stream,
// and a length over the bound is refused from the frame head alone.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { type Frame, FrameDecoder, FrameError, FrameType, encodeFrame, encodeJsonFrame } from './fetch-frames.js';

const frameArb = fc.record({
  type: fc.integer({ min: 0, max: 255 }),
  id: fc.nat(),
  payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
});

describe('FrameDecoder', () => {
  test.prop([fc.array(frameArb, { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 })])(
    'yields the frames encoded, however the stream is cut',
    (frames, cuts) => {
      const stream = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.id, f.payload)));
      const decoder = new FrameDecoder(1000);
      const got: Frame[] = [];
      let at = 0;
      for (let i = 0; at < stream.length; i++) {
        const n = cuts[i % cuts.length] as number;
        decoder.push(stream.subarray(at, at + n), (f) => got.push({ ...f, payload: Buffer.from(f.payload) }));
        at += n;
      }
      expect(got).toEqual(frames);
      expect(decoder.idle).toBe(true);
    },
  );

  test.prop([fc.array(frameArb, { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 })])(
    'yields the same frames when every piece is read into one reused buffer',
    (frames, cuts) => {
      const stream = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.id, f.payload)));
      const decoder = new FrameDecoder(1000);
      const reused = Buffer.alloc(50);
      const got: Frame[] = [];
      let at = 0;
      for (let i = 0; at < stream.length; i++) {
        const n = Math.min(cuts[i % cuts.length] as number, stream.length - at);
        stream.copy(reused, 0, at, at + n);
        decoder.push(reused.subarray(0, n), (f) => got.push({ ...f, payload: Buffer.from(f.payload) }), true);
        // What the next read leaves behind must not matter to what is carried.
        reused.fill(0xee);
        at += n;
      }
      expect(got).toEqual(frames);
      expect(decoder.idle).toBe(true);
    },
  );

  it('refuses a frame announcing more than its bound before its payload arrives', () => {
    const head = encodeFrame(FrameType.Data, 1, Buffer.alloc(0));
    head.writeUInt32BE(1001, 5);
    expect(() => new FrameDecoder(1000).push(head, () => undefined)).toThrow(
      new FrameError('a frame announces 1001 bytes, more than the 1000 allowed'),
    );
  });

  it('waits for the rest of a cut frame, and says it is not idle meanwhile', () => {
    const frame = encodeJsonFrame(FrameType.End, 7, { fetched: 3 });
    const decoder = new FrameDecoder(1000);
    const got: Frame[] = [];
    decoder.push(frame.subarray(0, 12), (f) => got.push(f));
    expect(got).toEqual([]);
    expect(decoder.idle).toBe(false);
    decoder.push(frame.subarray(12), (f) => got.push(f));
    expect(got.map((f) => [f.type, f.id, JSON.parse(f.payload.toString())])).toEqual([
      [FrameType.End, 7, { fetched: 3 }],
    ]);
  });
});
