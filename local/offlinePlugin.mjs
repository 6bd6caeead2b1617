// A local Serverless Framework plugin for `serverless offline`: before serverless-offline starts, it starts
// DynamoDB Local and the in-process queue consumer. serverless-offline runs the handlers in this same
// process (useInProcess), so handlers and consumer share one in-memory queue: the services singleton is
// kept on globalThis under a registered symbol, which every copy of the modules finds.
//
// It also points serverless-offline at the TypeScript sources instead of the esbuild artifacts the cloud
// gets: serverless-offline unpacks an artifact and loads a fresh copy of it for every concurrent
// invocation, which under load costs seconds; the sources are loaded once, through tsx.
//
// And it puts serverless-offline's Lambda invoke endpoint on a Unix socket (see local/offline.ts): whatever
// --lambdaPort or the configuration say, it listens on no TCP port. Without API keys, it refuses to go on if
// serverless-offline listens beyond loopback, however the host was given (HOST, --host).
import { register } from 'tsx/esm/api';

export default class LocalRuntimePlugin {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    // The command line's options, which serverless-offline reads too: they take precedence over the rest.
    this.options = options;
    this.log = log ?? console;
    this.hooks = {
      'before:offline:start:init': () => this.start(),
      'before:offline:start:ready': () => this.checkListening(),
      'before:offline:start:end': () => this.stop(),
    };
  }

  async start() {
    for (const fn of Object.values(this.serverless.service.functions ?? {})) delete fn.package?.artifact;
    register();
    const { startOfflineRuntime } = await import('./offline.ts');
    this.runtime = await startOfflineRuntime();
    this.options.lambdaPort = this.runtime.invokeSocket;
    this.log.notice(
      `Order service: DynamoDB at ${this.runtime.endpoint}, in-process consumer running, ` +
        `Lambda invoke endpoint on the Unix socket ${this.runtime.invokeSocket}`,
    );
  }

  /**
   * Stops here, with the runtime, if serverless-offline listens beyond loopback while no API keys are
   * configured. It exits as serverless-offline does when a server cannot start: its servers and schedules
   * would keep the process alive after a thrown error.
   */
  async checkListening() {
    try {
      // Where the API really listens: serverless-offline's own line repeats the port it was given, even 0.
      for (const { address, family, port } of this.runtime.checkListening()) {
        this.log.notice(`Order service API listening on http://${family === 'IPv6' ? `[${address}]` : address}:${port}`);
      }
    } catch (error) {
      await this.stop();
      this.log.error(error.message);
      process.exit(1);
    }
  }

  async stop() {
    await this.runtime?.stop();
  }
}
