/**
 * V8 tuning for a node process, imported before anything else so that it applies to the
 * forwarding path from its first frame.
 *
 * V8 optimises a function once it has run enough bytecode (the interrupt budget, 66 KiB
 * by default) a few times over. A node forwarding a ping every 10 ms never gets there: its
 * pipeline ran in the interpreter and baseline code for minutes, at 100+ µs per frame on
 * a cold cache where optimised code takes a fraction of that. A budget 16x smaller gets
 * the pipeline optimised within the first few hundred frames; the cost is more, smaller
 * compile jobs early on, on V8's background thread.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--interrupt-budget=4096');
