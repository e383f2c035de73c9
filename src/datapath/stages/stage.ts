/**
 * A stage of the forwarding path: a named function that reads and updates the frame's
 * context and returns a verdict. Stages depend on the context and the node's tables,
 * never on each other; the order they run in is written once, in ../paths.ts.
 */
import type { FrameContext, Verdict } from '../context.js';
import type { StageName } from '../recorder.js';
import type { PathTables } from '../tables.js';

export interface Stage {
  readonly name: StageName;
  run(ctx: FrameContext, t: PathTables): Verdict;
}
