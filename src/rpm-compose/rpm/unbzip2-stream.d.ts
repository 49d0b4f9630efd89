// Types for unbzip2-stream 1.4.3, which ships none: a classic (through) stream of decompressed bytes.
declare module 'unbzip2-stream' {
  interface Bunzip2Stream {
    write(chunk: Buffer): boolean;
    end(): void;
    on(event: 'data', listener: (data: Buffer) => void): this;
    on(event: 'error', listener: (error: unknown) => void): this;
    on(event: 'end', listener: () => void): this;
  }
  export default function unbzip2Stream(): Bunzip2Stream;
}
