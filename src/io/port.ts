/**
 * The port contract moved to src/port/port.ts, below both src/io and native-free; this name
 * stays for the modules that still import it from here.
 */
export * from '../port/port.js';
