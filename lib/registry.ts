import type { XlatorClass } from './xlator.js';

const registry = new Map<string, XlatorClass>();

/** Makes a translator type available to volfiles, e.g. registerXlator('cluster/distribute', Distribute). */
export function registerXlator(type: string, cls: XlatorClass): void {
  registry.set(type, cls);
}

export function lookupXlator(type: string): XlatorClass | undefined {
  return registry.get(type);
}

export function knownXlatorTypes(): string[] {
  return [...registry.keys()].sort();
}
