/**
 * `--since`: a point in time as `hubble observe` takes it, either relative to now as a Go
 * duration (`30s`, `5m`, `1h30m`, `1.5h`, `250ms`) or absolute as RFC 3339
 * (`2024-12-04T14:52:03Z`, fraction and offset allowed).
 */
import { parseTimestamp, timestampMicros } from './flow.js';

const UNIT_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration (time.ParseDuration's syntax, without a sign) in milliseconds, or undefined. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const m = part.exec(text);
    if (m === null) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]];
    at = part.lastIndex;
  }
  return at === 0 ? undefined : total;
}

/** `--since TEXT` as microseconds since the epoch, given the time now (ms); undefined when it is neither form. */
export function parseSince(text: string, nowMs: number): number | undefined {
  const ago = parseDuration(text);
  if (ago !== undefined) return Math.floor((nowMs - ago) * 1000);
  const at = parseTimestamp(text);
  return at === undefined ? undefined : timestampMicros(at);
}
