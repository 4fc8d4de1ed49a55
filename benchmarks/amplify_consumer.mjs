// The Amplify JS consumer of benchmarks/amplify_consumer.py: subscribe with the official
// Amplify v6 `events` client and count events until N arrived, then print one JSON line:
//   {"events": N, "seconds": wall time from the subscribe call, "cpu_us": CPU µs per event}
//
// Usage: node amplify_consumer.mjs '{"amplifyDir": "...", "endpoint": "http://127.0.0.1:P/event",
//                                    "apiKey": "...", "channel": "bench/flood-small-1000", "count": 1000}'
//
// Amplify always opens wss://; the benchmark server speaks plain ws:// (as our client does in
// the same run), so the WebSocket class Amplify uses rewrites the scheme and nothing else.
// Amplify itself JSON.parses every event before calling `next`.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const args = JSON.parse(process.argv[2]);
const require = createRequire(join(args.amplifyDir, 'package.json'));
const WS = require('ws');

for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...a) => console.error(...a);
}

class PlainWebSocket extends WS {
  constructor(url, protocols, options) {
    super(String(url).replace(/^wss:/, 'ws:'), protocols, options);
  }
}
globalThis.WebSocket = PlainWebSocket;

const { Amplify } = require('aws-amplify');
const { events } = require('aws-amplify/data');

Amplify.configure({
  API: {
    Events: {
      endpoint: args.endpoint,
      region: 'us-east-1',
      defaultAuthMode: 'apiKey',
      apiKey: args.apiKey,
    },
  },
});

const deadline = setTimeout(() => {
  writeSync(1, `${JSON.stringify({ error: 'timed out' })}\n`);
  process.exit(2);
}, args.timeoutMs ?? 120000);

const channel = await events.connect(args.channel);
let seen = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await new Promise((resolve, reject) => {
  channel.subscribe(
    {
      next: (data) => {
        if (data.event === undefined) return;
        seen += 1;
        if (seen === args.count) resolve();
      },
      error: (err) => reject(new Error(JSON.stringify(err))),
    },
  );
});
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
clearTimeout(deadline);
writeSync(
  1,
  `${JSON.stringify({ events: seen, seconds, cpu_us: (cpu.user + cpu.system) / seen })}\n`,
);
process.exit(0);
