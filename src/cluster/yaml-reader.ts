/**
 * A typed, position-aware cursor over one YAML document.
 *
 * The decoders read the YAML syntax tree rather than `toJS()` output so that every error can
 * name the line of the offending field. A `Field` is a node (or the absence of one) plus its
 * path and line; its accessors return `undefined` when the field is absent, and also when it
 * has the wrong type, in which case they have already reported why. Decoders therefore never
 * check types themselves and never throw.
 *
 * YAML dialect: 1.1, as kubectl reads it (sigs.k8s.io/yaml on go-yaml v2): `yes`/`no`/`on`/`off`
 * are booleans and `<<` merge keys work. Two 1.1 features that go-yaml does not give to
 * Kubernetes are turned off: timestamps (go-yaml hands them over as strings) and base-60
 * numbers (`1:20`).
 */

import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  visit,
  type Document,
  type Node as YamlNode,
  type Scalar,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { pathIndex, pathKey } from './diagnostics.js';

/** Receives the problems found while reading one document. */
export interface Sink {
  error(line: number | undefined, path: string, reason: string): void;
  warn(line: number | undefined, path: string, reason: string): void;
}

export interface YamlDocument {
  /** 1-based, counting empty documents too, as a reader counts `---` separators. */
  readonly index: number;
  /** Line of the document's first node. */
  readonly line: number;
  /** Parser errors; a document with any is not read further. */
  readonly syntaxErrors: readonly { readonly line: number; readonly reason: string }[];
  /** `undefined` for a document with no content (blank, comments only, `---` alone). */
  root(sink: Sink): Field | undefined;
}

type Resolved = Scalar | YAMLMap | YAMLSeq;

/** Merge keys may nest (a merged map that merges another); bounded so a cycle cannot hang us. */
const MAX_MERGE_DEPTH = 16;
/** Passed to `toJS` for opaque values, against exponential alias expansion ("billion laughs"). */
const MAX_ALIAS_COUNT = 100;
const MAX_SHOWN_CHARS = 60;

const PARSE_OPTIONS = {
  version: '1.1',
  merge: true,
  prettyErrors: false,
  uniqueKeys: true,
  customTags: (tags) =>
    tags.filter((t) =>
      typeof t === 'string' ? !['timestamp', 'intTime', 'floatTime'].includes(t) : t.tag !== 'tag:yaml.org,2002:timestamp' && t.format !== 'TIME',
    ),
} satisfies Parameters<typeof parseAllDocuments>[1];

export function parseYamlStream(text: string): YamlDocument[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { ...PARSE_OPTIONS, lineCounter: lines });
  // An empty stream is a special object rather than an empty array of documents.
  if (!Array.isArray(docs)) return [];
  const lineOf = (offset: number): number => lines.linePos(offset).line;
  return docs.map((doc, i): YamlDocument => {
    const contents = doc.contents;
    const start = contents?.range?.[0] ?? doc.range[0];
    const syntaxErrors = doc.errors.map((e) => ({ line: lineOf(e.pos[0]), reason: `YAML syntax: ${firstLine(e.message)}` }));
    // The yaml library leaves an alias to an unknown anchor for toJS to trip over; go-yaml (and
    // so kubectl) refuses the document, and so do we, wherever the alias is.
    visit(doc, {
      Alias(_, alias) {
        if (alias.resolve(doc) === undefined) {
          syntaxErrors.push({ line: lineOf(alias.range?.[0] ?? start), reason: `YAML syntax: unknown alias *${alias.source}` });
        }
      },
    });
    const empty = contents === null || (isScalar(contents) && contents.value === null);
    return {
      index: i + 1,
      line: lineOf(start),
      syntaxErrors,
      root: (sink) => (empty ? undefined : Field.root({ doc, lineOf, sink }, contents, lineOf(start))),
    };
  });
}

/**
 * Each document's plain value (undefined for an empty one), as kubectl turns YAML into the
 * JSON it stores; read with the same dialect as parseYamlStream. For a stream that
 * parseYamlStream read without errors.
 */
export function documentValues(text: string): unknown[] {
  const docs = parseAllDocuments(text, PARSE_OPTIONS);
  if (!Array.isArray(docs)) return [];
  return docs.map((doc) => (doc.contents === null ? undefined : doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown));
}

function firstLine(text: string): string {
  const nl = text.indexOf('\n');
  return nl < 0 ? text : text.slice(0, nl);
}

interface Context {
  readonly doc: Document;
  readonly lineOf: (offset: number) => number;
  readonly sink: Sink;
}

export class Field {
  private cachedMap: FieldMap | undefined;
  private cachedList: Field[] | undefined;

  private constructor(
    private readonly ctx: Context,
    private readonly node: Resolved | undefined,
    readonly path: string,
    readonly line: number,
    /**
     * The node was an alias that does not resolve; already reported. parseYamlStream refuses such
     * documents up front, so this is a second line of defence: a Field never holds an alias.
     */
    private readonly broken = false,
  ) {}

  static root(ctx: Context, node: unknown, line: number): Field {
    return Field.of(ctx, node, '', line);
  }

  /** A field whose node is `node` (possibly an alias, possibly absent). */
  private static of(ctx: Context, node: unknown, path: string, line: number): Field {
    if (isAlias(node)) {
      const target = node.resolve(ctx.doc);
      if (target === undefined) {
        ctx.sink.error(line, path, `unknown alias *${node.source}`);
        return new Field(ctx, undefined, path, line, true);
      }
      return new Field(ctx, target, path, line);
    }
    if (isScalar(node) || isMap(node) || isSeq(node)) return new Field(ctx, node, path, line);
    return new Field(ctx, undefined, path, line);
  }

  /** Present and not null: Kubernetes treats `field:` and `field: null` as an absent field. */
  get present(): boolean {
    return this.node !== undefined && !(isScalar(this.node) && this.node.value === null);
  }

  /** What kind of node this is, without reporting anything: for fields that accept several. */
  get shape(): 'absent' | 'map' | 'list' | 'scalar' {
    if (!this.present) return 'absent';
    return isMap(this.node) ? 'map' : isSeq(this.node) ? 'list' : 'scalar';
  }

  error(reason: string): void {
    this.ctx.sink.error(this.line, this.path, reason);
  }

  warn(reason: string): void {
    this.ctx.sink.warn(this.line, this.path, reason);
  }

  /** Reports `required` when absent; returns whether the field is present. */
  require(): boolean {
    if (this.present) return true;
    if (!this.broken) this.error('required');
    return false;
  }

  /** The value as a message shows it after "got": `"three"`, `3`, `true`, `a map`, `a list`. */
  describe(): string {
    const node = this.node;
    if (node === undefined) return 'nothing';
    if (isMap(node)) return 'a map';
    if (isSeq(node)) return 'a list';
    const value = node.value;
    if (value === null) return 'null';
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    const text = JSON.stringify(String(value));
    return text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS - 4)}..."` : text;
  }

  /** Fails with "<expected>, got <value>" and returns undefined, for one-line rejections. */
  invalid(expected: string): undefined {
    this.error(`${expected}, got ${this.describe()}`);
    return undefined;
  }

  map(): FieldMap | undefined {
    if (!this.present) return undefined;
    if (!isMap(this.node)) return this.invalid('must be a map');
    // Built once: building reports bad keys and aliases, which must not be reported twice.
    this.cachedMap ??= new FieldMap(this, this.pairs(this.node, 0));
    return this.cachedMap;
  }

  /** An item of a list that must be a map: an empty item (`- `) is an error too, unlike an absent field. */
  itemMap(): FieldMap | undefined {
    return this.present ? this.map() : this.invalid('must be a map');
  }

  /**
   * Like `map()`, but an absent field reads as an empty map, so that lookups under it still
   * yield absent fields with the right path ("spec.containers: required" without a spec).
   */
  mapOrEmpty(): FieldMap | undefined {
    if (!this.present) return this.broken ? undefined : new FieldMap(this, []);
    return this.map();
  }

  list(): Field[] | undefined {
    if (!this.present) return undefined;
    if (!isSeq(this.node)) return this.invalid('must be a list');
    const node = this.node;
    this.cachedList ??= node.items.map((item, i) => Field.of(this.ctx, item, pathIndex(this.path, i), this.lineOfNode(item)));
    return this.cachedList;
  }

  string(): string | undefined {
    const value = this.scalarValue('must be a string');
    if (value === undefined) return undefined;
    if (typeof value === 'string') return value;
    if (typeof value === 'boolean' && !/^(true|false)$/i.test(this.source())) {
      // `on`, `yes`, `n`...: the YAML 1.1 surprise; say so instead of a bare "got true".
      return this.invalid(`must be a string (YAML reads ${this.source()} as a boolean: quote it)`);
    }
    return this.invalid('must be a string');
  }

  /** The string value if there is one, reporting nothing: for labelling a document early. */
  peekString(): string | undefined {
    return isScalar(this.node) && typeof this.node.value === 'string' ? this.node.value : undefined;
  }

  /** An integer; `expected` words the failure, e.g. "must be an integer between 1 and 65535". */
  integer(expected = 'must be an integer', min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const value = this.scalarValue(expected);
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) return this.invalid(expected);
    return value;
  }

  boolean(): boolean | undefined {
    const value = this.scalarValue('must be a boolean');
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') return this.invalid('must be a boolean');
    return value;
  }

  /** A number or a string, for Kubernetes' IntOrString fields. */
  intOrString(): number | string | undefined {
    const value = this.scalarValue('must be a number or a string');
    if (value === undefined) return undefined;
    if (typeof value === 'string' || typeof value === 'number') return value;
    return this.invalid('must be a number or a string');
  }

  /** One of `allowed`, compared exactly as Kubernetes does (case matters). */
  oneOf<T extends string>(allowed: readonly T[]): T | undefined {
    const expected = `must be one of ${allowed.join(', ')}`;
    const value = this.scalarValue(expected);
    if (value === undefined) return undefined;
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    return this.invalid(expected);
  }

  /** The plain JavaScript value, for fields podwire keeps without interpreting. */
  plain(): unknown {
    if (!this.present || this.node === undefined) return undefined;
    try {
      return this.node.toJS(this.ctx.doc, { maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      this.error(`cannot be read: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  }

  /** A child that is absent, for lookups in a map that lacks the key. */
  missing(key: string): Field {
    return new Field(this.ctx, undefined, pathKey(this.path, key), this.line);
  }

  /** The scalar's value; a map or list is refused with `expected` ("must be a string"). */
  private scalarValue(expected: string): unknown {
    if (!this.present) return undefined;
    if (!isScalar(this.node)) return this.invalid(expected);
    return this.node.value;
  }

  private source(): string {
    return isScalar(this.node) && typeof this.node.source === 'string' ? this.node.source : '';
  }

  private lineOfNode(node: unknown): number {
    const range = (node as YamlNode | null)?.range;
    return range ? this.ctx.lineOf(range[0]) : this.line;
  }

  /**
   * The map's entries with `<<` merge keys applied: explicit keys win over merged ones, and an
   * earlier merged map wins over a later one, as the YAML merge-key spec says.
   */
  private pairs(map: YAMLMap, depth: number): Array<[string, Field]> {
    const explicit: Array<[string, Field]> = [];
    const merged: Array<[string, Field]> = [];
    for (const pair of map.items) {
      const key = pair.key;
      const keyLine = this.lineOfNode(key);
      if (isScalar(key) && typeof key.value === 'symbol') {
        if (depth >= MAX_MERGE_DEPTH) {
          this.ctx.sink.error(keyLine, this.path, 'merge keys nest too deeply or refer to themselves');
          continue;
        }
        const source = Field.of(this.ctx, pair.value, this.path, keyLine);
        const sources = isSeq(source.node) ? source.list() ?? [] : [source];
        for (const s of sources) {
          if (isMap(s.node)) merged.push(...this.pairs(s.node, depth + 1));
          else if (!s.broken) s.invalid('a << merge key must refer to a map');
        }
        continue;
      }
      if (!isScalar(key)) {
        this.ctx.sink.error(keyLine, this.path, 'map keys must be plain values, got a collection');
        continue;
      }
      const name = String(key.value);
      explicit.push([name, Field.of(this.ctx, pair.value, pathKey(this.path, name), keyLine)]);
    }
    const seen = new Set(explicit.map(([k]) => k));
    for (const entry of merged) {
      if (seen.has(entry[0])) continue;
      seen.add(entry[0]);
      explicit.push(entry);
    }
    return explicit;
  }
}

export class FieldMap {
  private readonly byKey: Map<string, Field>;

  constructor(
    /** The field holding this map, for errors about the map as a whole. */
    readonly field: Field,
    readonly entries: ReadonlyArray<readonly [string, Field]>,
  ) {
    this.byKey = new Map(entries);
  }

  get(key: string): Field {
    return this.byKey.get(key) ?? this.field.missing(key);
  }

  has(key: string): boolean {
    return this.get(key).present;
  }
}
