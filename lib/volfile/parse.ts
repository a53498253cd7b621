import { VolfileSyntaxError } from '../errors.js';

/** One `volume ... end-volume` block as written. */
export interface VolumeDecl {
  name: string;
  type: string;
  options: Record<string, string>;
  /** Line of each option, for errors found later (unknown option, bad value). */
  optionLines: Record<string, number>;
  subvolumes: string[];
  line: number;
  typeLine: number;
  subvolumesLine: number;
}

/**
 * Parses GlusterFS volfile syntax: `volume NAME`, `type T`, `option KEY VALUE`,
 * `subvolumes A B`, `end-volume`; `#` starts a comment. Names must be defined before
 * they are used as subvolumes, so a cycle cannot be written.
 */
export function parseVolfile(text: string, file = 'volfile'): VolumeDecl[] {
  const decls: VolumeDecl[] = [];
  const defined = new Set<string>();
  let cur: VolumeDecl | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.replace(/#.*$/, '').trim();
    if (!line) continue;
    const words = line.split(/\s+/);
    const kw = words[0]!;
    const fail = (msg: string): never => { throw new VolfileSyntaxError(lineNo, msg, file); };
    switch (kw) {
      case 'volume':
        if (cur) fail(`"volume" inside volume "${cur.name}" (missing end-volume?)`);
        if (words.length !== 2) fail('expected "volume NAME"');
        if (defined.has(words[1]!)) fail(`volume "${words[1]}" is defined twice`);
        cur = { name: words[1]!, type: '', options: {}, optionLines: {}, subvolumes: [], line: lineNo, typeLine: 0, subvolumesLine: 0 };
        break;
      case 'type':
        if (!cur) fail('"type" outside a volume');
        if (words.length !== 2) fail('expected "type CATEGORY/NAME"');
        if (cur!.type) fail(`volume "${cur!.name}" has two types`);
        cur!.type = words[1]!;
        cur!.typeLine = lineNo;
        break;
      case 'option': {
        if (!cur) fail('"option" outside a volume');
        if (words.length < 3) fail('expected "option KEY VALUE"');
        const key = words[1]!;
        if (key in cur!.options) fail(`option "${key}" given twice`);
        cur!.options[key] = words.slice(2).join(' ');
        cur!.optionLines[key] = lineNo;
        break;
      }
      case 'subvolumes':
        if (!cur) fail('"subvolumes" outside a volume');
        if (words.length < 2) fail('expected "subvolumes NAME..."');
        for (const sv of words.slice(1)) {
          if (sv === cur!.name) fail(`volume "${sv}" cannot be its own subvolume`);
          if (!defined.has(sv)) fail(`subvolume "${sv}" is not defined above (define before use)`);
          if (cur!.subvolumes.includes(sv)) fail(`subvolume "${sv}" listed twice`);
        }
        cur!.subvolumes.push(...words.slice(1));
        cur!.subvolumesLine = lineNo;
        break;
      case 'end-volume':
        if (!cur) fail('"end-volume" without "volume"');
        if (!cur!.type) fail(`volume "${cur!.name}" has no type`);
        defined.add(cur!.name);
        decls.push(cur!);
        cur = undefined;
        break;
      default:
        fail(`unknown keyword "${kw}" (expected volume, type, option, subvolumes or end-volume)`);
    }
  }
  if (cur) throw new VolfileSyntaxError(cur.line, `volume "${cur.name}" is not closed with end-volume`, file);
  if (decls.length === 0) throw new VolfileSyntaxError(1, 'no volume defined', file);
  return decls;
}

/** Writes declarations back in volfile syntax (management generates volfiles with this). */
export function formatVolfile(decls: Array<Pick<VolumeDecl, 'name' | 'type' | 'options' | 'subvolumes'>>): string {
  const out: string[] = [];
  for (const d of decls) {
    out.push(`volume ${d.name}`, `    type ${d.type}`);
    for (const [k, v] of Object.entries(d.options)) out.push(`    option ${k} ${v}`);
    if (d.subvolumes.length) out.push(`    subvolumes ${d.subvolumes.join(' ')}`);
    out.push('end-volume', '');
  }
  return out.join('\n');
}
