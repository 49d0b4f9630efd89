// The compose module's public surface for cli/: today the RPM reader.
export * from './rpm/index.js';
