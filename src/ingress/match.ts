/**
 * The proxy's lookup, compiled once per configuration: a request's Host picks a server (an
 * exact host first, then a `*.` wildcard covering exactly one more label, else the
 * catch-all), and its path picks a location as the Ingress API defines it:
 *
 * - Exact: the path, case-sensitive, nothing more (`/foo` is not `/foo/`);
 * - Prefix: by path element (`/foo` matches `/foo` and `/foo/bar`, not `/foobar`);
 * - the longest path wins, and Exact beats Prefix at equal length; a Regex location (an
 *   Ingress with use-regex or rewrite-target) is anchored at the start, case-insensitive as
 *   nginx's `~*`, and competes by the length of its pattern;
 * - every server has a root Prefix `/`, so some location always answers.
 */
import { DEFAULT_ROOT_LOCATION, type IngressProxyConfig, type LocationConfig, type ServerConfig } from './config.js';

export interface CompiledLocation {
  readonly config: LocationConfig;
  /** Set for Regex locations. */
  readonly regex?: RegExp;
}

export interface CompiledServer {
  readonly config: ServerConfig;
  /** Best first. */
  readonly locations: readonly CompiledLocation[];
}

export interface Route {
  readonly server: CompiledServer;
  readonly location: LocationConfig;
  /** The path and query to ask the backend for: the request's, or its rewrite. */
  readonly upstreamPath: string;
}

const RANK = { Exact: 0, Prefix: 1, Regex: 2 } as const;

export class IngressRouter {
  private readonly exact = new Map<string, CompiledServer>();
  /** `*.foo.com` under `foo.com`. */
  private readonly wildcard = new Map<string, CompiledServer>();
  readonly catchAll: CompiledServer;
  /** Locations left out (a regular expression that does not compile), each with why. */
  readonly problems: string[] = [];

  constructor(config: IngressProxyConfig) {
    for (const server of config.servers) {
      const compiled = this.compile(server);
      if (server.host.startsWith('*.')) this.wildcard.set(server.host.slice(2), compiled);
      else this.exact.set(server.host, compiled);
    }
    this.catchAll = this.compile(config.catchAll);
  }

  /** The server for a Host header (any case, with or without a port). */
  server(hostHeader: string | undefined): CompiledServer {
    const host = normaliseHost(hostHeader);
    if (host === '') return this.catchAll;
    const exact = this.exact.get(host);
    if (exact !== undefined) return exact;
    const dot = host.indexOf('.');
    if (dot > 0) {
      const wild = this.wildcard.get(host.slice(dot + 1));
      if (wild !== undefined) return wild;
    }
    return this.catchAll;
  }

  route(hostHeader: string | undefined, url: string): Route {
    return routeIn(this.server(hostHeader), url);
  }

  private compile(server: ServerConfig): CompiledServer {
    const locations: CompiledLocation[] = [];
    for (const config of server.locations) {
      if (config.match !== 'Regex') {
        locations.push({ config });
        continue;
      }
      try {
        locations.push({ config, regex: new RegExp(`^${config.path}`, 'i') });
      } catch (err) {
        this.problems.push(`${config.ingress}: path ${JSON.stringify(config.path)} on ${server.host} is not a regular expression: ${(err as Error).message}`);
      }
    }
    locations.sort((a, b) => b.config.path.length - a.config.path.length || RANK[a.config.match] - RANK[b.config.match]);
    return { config: server, locations };
  }
}

/** The request's location in a server; the root location when nothing longer matches. */
export function routeIn(server: CompiledServer, url: string): Route {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  for (const location of server.locations) {
    const groups = matches(location, path);
    if (groups === undefined) continue;
    const target = location.config.rewriteTarget;
    const upstreamPath = target === undefined ? url : rewrite(target, groups) + (q < 0 ? '' : url.slice(q));
    return { server, location: location.config, upstreamPath };
  }
  // Unreachable while servers.ts gives every server its root location; a hand-made config may not.
  return { server, location: DEFAULT_ROOT_LOCATION, upstreamPath: url };
}

const NO_GROUPS: readonly string[] = [];

/** The regex groups (none for Exact and Prefix) when the location takes the path. */
function matches(location: CompiledLocation, path: string): readonly (string | undefined)[] | undefined {
  const { match, path: p } = location.config;
  if (match === 'Exact') return path === p ? NO_GROUPS : undefined;
  if (match === 'Prefix') return p === '/' || path === p || (path.startsWith(p) && path.charCodeAt(p.length) === 0x2f) ? NO_GROUPS : undefined;
  return location.regex!.exec(path) ?? undefined;
}

/** `$1`...`$9` from the groups (an unmatched group is empty), as nginx's rewrite fills them; always an absolute path. */
export function rewrite(target: string, groups: readonly (string | undefined)[]): string {
  const out = target.replace(/\$(\d)/g, (_, n: string) => groups[Number(n)] ?? '');
  return out.startsWith('/') ? out : `/${out}`;
}

/** Lowercase, without a port and without a final dot: the name servers are keyed by. */
export function normaliseHost(header: string | undefined): string {
  if (header === undefined) return '';
  let host = header.trim().toLowerCase();
  // An IPv6 literal matches no server but the catch-all; its colons are not a port.
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/** The TLS server names (SNI) a server answers for: exact or one-label wildcard, as its Host. */
export function hostMatches(pattern: string, host: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === host;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === pattern.slice(2);
}
