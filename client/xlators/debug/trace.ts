import { registerXlator } from '../../../lib/registry.js';
import { setTracing, type TraceConfig } from '../../../lib/trace.js';
import { Xlator } from '../../../lib/xlator.js';

/**
 * debug/trace: owns `diagnostics.trace` and `diagnostics.trace-endpoint`. volgen puts it on
 * top of the client graph while diagnostics.trace is on, and writes the same two into the
 * bricks' protocol/server (`trace`, `trace-endpoint`), which a brick can apply without a
 * restart. Its presence switches the process's tracing on (lib/trace.ts); the spans
 * themselves are made by the FUSE bridge (the root of each request) and by every
 * translator's fops (lib/xlator.ts call()). It handles no fop: off, it is not in the graph.
 */
export class Trace extends Xlator {
  static override readonly description = 'Records each FUSE request as a trace of OpenTelemetry spans (a span per fop per translator, continued in the bricks), exported to Zipkin or a JSON-lines file';
  static readonly volumeSwitch = {
    key: 'diagnostics.trace',
    default: false,
    description: 'Record every FUSE request of the mounts as a trace: a span per fop per translator, over the wire and down the bricks to storage/posix, to diagnostics.trace-endpoint or a JSON-lines file beside each process\'s log; mounts and running bricks apply it at once (on/off, default off; docs/operations.md)',
  } as const;

  static override readonly options = {
    endpoint: {
      type: 'string', default: '',
      description: 'Zipkin v2 URL the spans are sent to (http://HOST:9411/api/v2/spans); empty: NAME.spans.jsonl beside the process\'s log NAME.log',
      volume: { key: 'diagnostics.trace-endpoint', description: 'Where mounts and bricks send their spans while diagnostics.trace is on: a Zipkin v2 URL (http://HOST:9411/api/v2/spans); empty (the default): a JSON-lines file of Zipkin spans beside each process\'s log' },
    },
  } as const;

  override async init(): Promise<void> {
    await setTracing(this, this.config());
  }

  override reconfigure(options: Record<string, string>): void {
    super.reconfigure(options);
    void setTracing(this, this.config());
  }

  override async fini(): Promise<void> {
    await setTracing(this, undefined);
  }

  private config(): TraceConfig {
    return { service: 'brickfs-mount', endpoint: this.optString('endpoint') };
  }

  override statedump(): Record<string, unknown> {
    return { endpoint: this.optString('endpoint') || 'file' };
  }
}

registerXlator('debug/trace', Trace);
