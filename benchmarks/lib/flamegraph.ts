/**
 * A V8 CPU profile (`node --cpu-prof`'s `.cpuprofile`) as folded stacks and
 * as a static SVG flame graph (Brendan Gregg's layout: callers below
 * callees, width for time, frames merged by name along each stack), so a
 * profile can be read on GitHub or in any browser without a viewer.
 * Written here because the packages that draw flame graphs are browser
 * components or interactive HTML (0x, d3-flame-graph, speedscope); none
 * renders a `.cpuprofile` to a file.
 *
 * Left out: differential graphs, search, zoom (open the `.cpuprofile` in
 * Chrome DevTools or speedscope for those).
 */

/** The parts of V8's profile format (`Profiler.Profile` in the DevTools protocol) read here. */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }>;
  /** Microseconds, on the monotonic clock `process.hrtime` reads. */
  startTime: number;
  endTime: number;
  samples?: number[];
  /** Microseconds since the previous sample (the first: since startTime). */
  timeDeltas?: number[];
}

/** Samples taken in [fromUs, toUs] on the profile's clock. */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

/** V8's pseudo-frames: the tree's root, and the thread waiting for work (not CPU). */
const ROOT = '(root)';
const IDLE = '(idle)';

/**
 * Folded stacks: `caller;callee;...` (outermost first) to the microseconds
 * spent with that stack on top. A sample counts the time until the next one.
 * Idle samples are left out: what remains is the thread's CPU as sampled.
 */
export function foldProfile(profile: CpuProfile, window?: ProfileWindow): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stacks = new Map<number, string | undefined>();
  const stackOf = (id: number): string | undefined => {
    if (stacks.has(id)) return stacks.get(id);
    const frames: string[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const label = frameLabel(byId.get(at)!.callFrame);
      if (label === IDLE) {
        frames.length = 0;
        break;
      }
      if (label !== ROOT) frames.push(label);
    }
    const stack = frames.length === 0 ? undefined : frames.reverse().join(';');
    stacks.set(id, stack);
    return stack;
  };
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const folded = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    if (window !== undefined && (t < window.fromUs || t > window.toUs)) continue;
    const spent = Math.max(0, deltas[i + 1] ?? 0);
    const stack = stackOf(samples[i]!);
    if (stack === undefined || spent === 0) continue;
    folded.set(stack, (folded.get(stack) ?? 0) + spent);
  }
  return folded;
}

/**
 * `function file:line`, the file shortened to what names it: Baton's own
 * modules from `dist/` or `src/` (`data-plane/proxy.js`), a dependency as
 * `npm:` and its path in the package, Node's as `node:...`. V8's own frames
 * (`(program)`, `(garbage collector)`, native functions) have no file.
 */
export function frameLabel(frame: {
  functionName: string;
  url: string;
  lineNumber: number;
}): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  const label = frame.url === '' ? name : `${name} ${shortFile(frame.url)}:${frame.lineNumber + 1}`;
  // ';' separates frames in a folded stack.
  return label.replaceAll(';', ',');
}

function shortFile(url: string): string {
  if (url.startsWith('node:')) return url;
  const dep = url.lastIndexOf('/node_modules/');
  if (dep >= 0) return `npm:${url.slice(dep + '/node_modules/'.length)}`;
  const own = /\/(?:dist|src)\/(.+)$/.exec(url);
  if (own !== null) return own[1]!;
  return url.slice(url.lastIndexOf('/') + 1);
}

/** The time spent in each frame itself (at the top of the stack), largest first (ties by name). */
export function selfTimes(folded: ReadonlyMap<string, number>): Array<[string, number]> {
  const self = new Map<string, number>();
  for (const [stack, us] of folded) {
    const leaf = stack.slice(stack.lastIndexOf(';') + 1);
    self.set(leaf, (self.get(leaf) ?? 0) + us);
  }
  return [...self].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

export interface FlameGraphOptions {
  title: string;
  /** A second line under the title (what ran, for how long). */
  subtitle?: string;
  /** Width in pixels (default 1200). */
  width?: number;
  /** Frames narrower than this share of the total are not drawn (default 0.001). */
  minShare?: number;
}

interface Frame {
  name: string;
  us: number;
  children: Map<string, Frame>;
}

const FRAME_PX = 17;
const TOP_PX = 52;
const SIDE_PX = 10;
const CHAR_PX = 6.6;

export function flameGraphSvg(folded: ReadonlyMap<string, number>, o: FlameGraphOptions): string {
  const width = o.width ?? 1200;
  const minShare = o.minShare ?? 0.001;
  const root: Frame = { name: 'all', us: 0, children: new Map() };
  for (const [stack, us] of folded) {
    root.us += us;
    let at = root;
    for (const name of stack.split(';')) {
      let next = at.children.get(name);
      if (next === undefined) {
        next = { name, us: 0, children: new Map() };
        at.children.set(name, next);
      }
      next.us += us;
      at = next;
    }
  }
  const total = Math.max(root.us, 1);
  const perUs = (width - 2 * SIDE_PX) / total;
  const placed: Array<{ f: Frame; x: number; depth: number }> = [];
  let depthMax = 0;
  const place = (f: Frame, x: number, depth: number) => {
    if (f.us / total < minShare) return;
    placed.push({ f, x, depth });
    depthMax = Math.max(depthMax, depth);
    let cx = x;
    for (const c of [...f.children.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      place(c, cx, depth + 1);
      cx += c.us * perUs;
    }
  };
  place(root, SIDE_PX, 0);
  const height = TOP_PX + (depthMax + 1) * FRAME_PX + SIDE_PX;
  const out = [
    `<?xml version="1.0" standalone="no"?>`,
    `<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Verdana, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fafafa"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15">${xml(o.title)}</text>`,
  ];
  if (o.subtitle !== undefined)
    out.push(
      `<text x="${width / 2}" y="38" text-anchor="middle" fill="#555">${xml(o.subtitle)}</text>`,
    );
  for (const { f, x, depth } of placed) {
    const w = f.us * perUs;
    const y = height - SIDE_PX - (depth + 1) * FRAME_PX;
    const share = (100 * f.us) / total;
    const tip = `${f.name} (${(f.us / 1000).toFixed(1)} ms, ${share.toFixed(2)} %)`;
    const fits = Math.floor((w - 6) / CHAR_PX);
    const label = fits < 3 ? '' : f.name.length <= fits ? f.name : `${f.name.slice(0, fits - 2)}..`;
    out.push(
      `<g><title>${xml(tip)}</title><rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${FRAME_PX - 1}" rx="2" fill="${colour(f.name)}"/>` +
        (label === '' ? '' : `<text x="${(x + 3).toFixed(1)}" y="${y + 12}">${xml(label)}</text>`) +
        `</g>`,
    );
  }
  out.push('</svg>', '');
  return out.join('\n');
}

/** Baton's own frames warm, dependencies blue, Node's green, V8's grey (its collector red). */
function colour(name: string): string {
  const h = hash(name);
  const file = / (\S+):\d+$/.exec(name)?.[1] ?? '';
  if (name === '(garbage collector)') return 'hsl(0, 70%, 68%)';
  if (file === '') return `hsl(45, 8%, ${62 + h * 14}%)`;
  if (file.startsWith('node:')) return `hsl(${100 + h * 40}, 45%, 60%)`;
  if (file.startsWith('npm:')) return `hsl(${200 + h * 30}, 55%, 68%)`;
  return `hsl(${20 + h * 25}, 85%, 62%)`;
}

/** A stable number in [0, 1) for a name (FNV-1a), so a frame keeps its colour between graphs. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0) / 2 ** 32;
}

function xml(s: string): string {
  return s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}
