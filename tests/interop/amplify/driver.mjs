// Drives the official AWS Amplify JS v6 `events` client against an AppSync Events endpoint
// (normally the appsync-events emulator) and reports what it observes as JSON lines.
//
// Usage:
//   node driver.mjs '<scenario JSON>'
//   node driver.mjs path/to/scenario.json
//   node driver.mjs < scenario.json            (also: node driver.mjs -)
//
// Scenario:
//   {
//     "endpoint": "https://127.0.0.1:PORT/event",   // HTTP endpoint; Amplify derives wss://…/event/realtime
//     "region": "us-east-1",
//     "auth": {"mode": "apiKey", "apiKey": "da2-…"}
//           | {"mode": "iam", "accessKeyId": "…", "secretAccessKey": "…", "sessionToken": "…"}
//           | {"mode": "lambda", "authToken": "…"}
//           | {"mode": "userPool", "jwt": "<header.payload.signature>"},
//     "timeoutMs": 20000,            // overall deadline; the process exits 2 when it passes
//     "stepTimeoutMs": 8000,         // default deadline of each waiting step
//     "steps": [ … ]                 // run in order, see below
//   }
//
// Steps ("op"), each may also carry "expectError": true (the step must fail; its error is reported)
// and "timeoutMs" (overrides stepTimeoutMs):
//   {"op": "connect",     "name": "c1", "channel": "default/amp"}          events.connect(channel)
//   {"op": "subscribe",   "name": "s1", "on": "c1", "waitReady": true}     channel.subscribe(observer)
//   {"op": "ready",       "sub": "s1"}                                      await subscription.ready
//   {"op": "publish",     "on": "c1", "events": [{…}, …]}                  channel.publish(events) over WebSocket
//   {"op": "post",        "channel": "default/a/b", "events": [{…}]}       events.post(...) over HTTP
//   {"op": "receive",     "sub": "s1", "count": 2}                          wait for N events, report them
//   {"op": "unsubscribe", "sub": "s1", "waitAck": true}                     subscription.unsubscribe()
//   {"op": "assertNoEvents", "sub": "s1"}                                   no event beyond those received
//   {"op": "waitFrame",   "type": "unsubscribe_success", "id": "…"}        wait for a server frame
//   {"op": "close",       "on": "c1"}                                       channel.close()
//   {"op": "closeAll"}                                                      events.closeAll()
//   {"op": "frames"}                                                        report the frame transcript
//
// Output: one JSON object per line on stdout: {"step": i, "op": …, "ok": true|false, …}, then a
// final {"op": "done", "ok": …}. Everything Amplify logs goes to stderr. Exit status: 0 when every
// step behaved as expected, 1 on the first unexpected result (later steps are skipped and the frame
// transcript is dumped to stderr), 2 when the overall deadline passes, 3 for a bad scenario.
//
// TLS: the endpoint's CA is trusted through NODE_EXTRA_CA_CERTS (honoured by both `ws` and fetch).

import { readFileSync, writeSync } from 'node:fs';
import { Buffer } from 'node:buffer';

// Only JSON result lines go to stdout; Amplify's ConsoleLogger and anything else go to stderr.
for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => console.error(...args);
}

function emit(obj) {
  writeSync(1, `${JSON.stringify(obj)}\n`);
}

function fail(code, obj) {
  emit({ op: 'done', ok: false, ...obj });
  dumpFrames();
  process.exit(code);
}

function errorText(err) {
  if (err === undefined || err === null) return String(err);
  if (typeof err === 'string') return err;
  // rxjs observer errors from Amplify are {errors: [GraphQLError-ish]}.
  if (Array.isArray(err.errors)) {
    return err.errors.map((e) => e?.message ?? JSON.stringify(e)).join('; ');
  }
  if (err instanceof Error) {
    const name = err.name && err.name !== 'Error' ? `${err.name}: ` : '';
    // api-rest's RestApiError (events.post) keeps the HTTP response; its name/message are
    // often just "UnknownError: Unknown error", so the status and body carry the information.
    const response = err.response;
    const http = response?.statusCode ? ` (HTTP ${response.statusCode}: ${response.body ?? ''})` : '';
    return `${name}${err.message}${http}`;
  }
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Scenario input

function readScenario() {
  const arg = process.argv[2];
  let text;
  if (arg === undefined || arg === '-') {
    text = readFileSync(0, 'utf8');
  } else if (arg.trimStart().startsWith('{')) {
    text = arg;
  } else {
    text = readFileSync(arg, 'utf8');
  }
  return JSON.parse(text);
}

let scenario;
try {
  scenario = readScenario();
  if (!scenario || typeof scenario.endpoint !== 'string' || !Array.isArray(scenario.steps)) {
    throw new Error('scenario needs "endpoint" (string) and "steps" (array)');
  }
} catch (err) {
  emit({ op: 'done', ok: false, error: `bad scenario: ${errorText(err)}` });
  process.exit(3);
}

const overallTimeoutMs = scenario.timeoutMs ?? 20000;
const defaultStepTimeoutMs = scenario.stepTimeoutMs ?? 8000;

setTimeout(() => {
  fail(2, { error: `driver timed out after ${overallTimeoutMs} ms` });
}, overallTimeoutMs);

process.on('unhandledRejection', (reason) => {
  console.error('unhandled rejection:', reason);
});

// ---------------------------------------------------------------------------------------------
// Frame tap: a `ws` subclass that records every frame, so results can be matched against the wire
// and a failing run shows exactly what the server sent. Node 20 has no global WebSocket, and
// Amplify reads `globalThis.WebSocket` when it opens a socket, so this must be set before use.

const { default: WS } = await import('ws');

const frames = [];
const frameWaiters = new Set();

function decodeHeaderProtocol(protocol) {
  try {
    const b64 = protocol.slice('header-'.length).replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
}

function record(entry) {
  const stamped = { t: Date.now(), ...entry };
  frames.push(stamped);
  for (const waiter of [...frameWaiters]) waiter(stamped);
}

class TapWebSocket extends WS {
  constructor(url, protocols, options) {
    super(url, protocols, options);
    const offered = Array.isArray(protocols) ? protocols : protocols ? [protocols] : [];
    record({
      dir: 'upgrade',
      url: String(url),
      protocols: offered.map((p) => (p.startsWith('header-') ? 'header-…' : p)),
      header: offered.filter((p) => p.startsWith('header-')).map(decodeHeaderProtocol)[0],
    });
    this.addEventListener('open', () => record({ dir: 'open', protocol: this.protocol }));
    this.addEventListener('message', (ev) => {
      const raw = typeof ev.data === 'string' ? ev.data : `<binary ${ev.data?.length ?? '?'} bytes>`;
      let parsed;
      try {
        parsed = JSON.parse(raw);
      } catch {
        parsed = undefined;
      }
      record({ dir: 'in', raw, msg: parsed });
    });
    this.addEventListener('close', (ev) => record({ dir: 'close', code: ev.code, reason: ev.reason }));
    this.addEventListener('error', (ev) => record({ dir: 'error', error: errorText(ev.error ?? ev.message) }));
  }

  send(data, ...rest) {
    record({ dir: 'out', raw: String(data) });
    return super.send(data, ...rest);
  }
}

globalThis.WebSocket = TapWebSocket;

function dumpFrames() {
  for (const f of frames) console.error(`frame ${JSON.stringify(f)}`);
}

function inboundFrames() {
  return frames.filter((f) => f.dir === 'in' && f.msg);
}

function frameMatches(f, type, id) {
  return f.dir === 'in' && f.msg && f.msg.type === type && (id === undefined || f.msg.id === id);
}

function waitFrame(type, id, timeoutMs, since = 0) {
  const existing = frames.slice(since).find((f) => frameMatches(f, type, id));
  if (existing) return Promise.resolve(existing);
  return new Promise((resolve, reject) => {
    const waiter = (f) => {
      if (frameMatches(f, type, id)) {
        frameWaiters.delete(waiter);
        clearTimeout(timer);
        resolve(f);
      }
    };
    const timer = setTimeout(() => {
      frameWaiters.delete(waiter);
      reject(new Error(`no ${type} frame${id ? ` for id ${id}` : ''} within ${timeoutMs} ms`));
    }, timeoutMs);
    frameWaiters.add(waiter);
  });
}

// ---------------------------------------------------------------------------------------------
// Amplify configuration per auth mode

const { Amplify } = await import('aws-amplify');
const { events } = await import('aws-amplify/data');

function jwtToken(jwt) {
  // Amplify's JWT shape: {toString(), payload}. The emulator, not Amplify, validates the token.
  let payload = {};
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    payload = JSON.parse(Buffer.from(part, 'base64').toString('utf8'));
  } catch {
    payload = {};
  }
  return { payload, toString: () => jwt };
}

function configure() {
  const auth = scenario.auth ?? { mode: 'apiKey', apiKey: scenario.apiKey };
  const eventsConfig = {
    endpoint: scenario.endpoint,
    region: scenario.region ?? 'us-east-1',
    defaultAuthMode: auth.mode,
  };
  const libraryOptions = {};
  // Options passed to events.connect / events.post (Amplify has no config field for authToken).
  let callOptions = {};
  switch (auth.mode) {
    case 'apiKey':
      eventsConfig.apiKey = auth.apiKey;
      break;
    case 'iam':
      libraryOptions.Auth = {
        credentialsProvider: {
          getCredentialsAndIdentityId: async () => ({
            credentials: {
              accessKeyId: auth.accessKeyId,
              secretAccessKey: auth.secretAccessKey,
              ...(auth.sessionToken ? { sessionToken: auth.sessionToken } : {}),
            },
          }),
          clearCredentialsAndIdentityId: () => {},
        },
      };
      break;
    case 'lambda':
      callOptions = { authMode: 'lambda', authToken: auth.authToken };
      break;
    case 'userPool':
    case 'oidc':
      libraryOptions.Auth = {
        tokenProvider: {
          getTokens: async () => ({ accessToken: jwtToken(auth.jwt), idToken: jwtToken(auth.jwt) }),
        },
      };
      break;
    default:
      throw new Error(`unsupported auth mode ${JSON.stringify(auth.mode)}`);
  }
  Amplify.configure({ API: { Events: eventsConfig } }, libraryOptions);
  return callOptions;
}

// ---------------------------------------------------------------------------------------------
// Steps

const channels = new Map(); // name -> channel handle returned by events.connect
const subs = new Map(); // name -> {subscription, events[], errors[], consumed, waiters, id}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function need(map, key, kind) {
  const value = map.get(key);
  if (!value) throw new Error(`unknown ${kind} ${JSON.stringify(key)}`);
  return value;
}

function notifySub(state) {
  for (const waiter of [...state.waiters]) waiter();
}

function waitEvents(state, count, timeoutMs) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (state.events.length - state.consumed >= count) {
        state.waiters.delete(check);
        clearTimeout(timer);
        const taken = state.events.slice(state.consumed, state.consumed + count);
        state.consumed += count;
        resolve(taken);
      } else if (state.errors.length > 0) {
        state.waiters.delete(check);
        clearTimeout(timer);
        reject(new Error(`subscription errored: ${state.errors.join('; ')}`));
      }
    };
    const timer = setTimeout(() => {
      state.waiters.delete(check);
      const got = state.events.length - state.consumed;
      reject(new Error(`received ${got} of ${count} events within ${timeoutMs} ms`));
    }, timeoutMs);
    state.waiters.add(check);
    check();
  });
}

const handlers = {
  async connect(step, ctx) {
    const channel = await withTimeout(
      events.connect(step.channel, ctx.callOptions),
      ctx.timeoutMs,
      'connect',
    );
    channels.set(step.name ?? step.channel, channel);
    return { channel: step.channel };
  },

  async subscribe(step, ctx) {
    const channel = need(channels, step.on, 'channel');
    const state = { events: [], errors: [], consumed: 0, waiters: new Set(), id: undefined };
    state.subscription = channel.subscribe({
      next: (data) => {
        state.events.push(data?.event);
        notifySub(state);
      },
      error: (err) => {
        state.errors.push(errorText(err));
        notifySub(state);
      },
    });
    subs.set(step.name, state);
    if (step.waitReady === false) return {};
    return handlers.ready({ sub: step.name }, ctx);
  },

  async ready(step, ctx) {
    const state = need(subs, step.sub, 'subscription');
    const { subscriptionId } = await withTimeout(state.subscription.ready, ctx.timeoutMs, 'ready');
    state.id = subscriptionId;
    return { subscriptionId };
  },

  async publish(step, ctx) {
    const channel = need(channels, step.on, 'channel');
    const payload = step.events ?? step.event;
    const result = await withTimeout(channel.publish(payload), ctx.timeoutMs, 'publish');
    return { result: result ?? null };
  },

  async post(step, ctx) {
    const payload = step.events ?? step.event;
    const failed = await withTimeout(
      events.post(step.channel, payload, ctx.callOptions),
      ctx.timeoutMs,
      'post',
    );
    return { failed: failed ?? [] };
  },

  async receive(step, ctx) {
    const state = need(subs, step.sub, 'subscription');
    const received = await waitEvents(state, step.count ?? 1, ctx.timeoutMs);
    return { events: received };
  },

  async unsubscribe(step, ctx) {
    const state = need(subs, step.sub, 'subscription');
    const since = frames.length;
    state.subscription.unsubscribe();
    if (!step.waitAck) return { subscriptionId: state.id ?? null };
    const ack = await waitFrame('unsubscribe_success', state.id, ctx.timeoutMs, since);
    return { subscriptionId: state.id ?? null, ack: ack.msg };
  },

  async assertNoEvents(step) {
    const state = need(subs, step.sub, 'subscription');
    const extra = state.events.slice(state.consumed);
    // Amplify drops `data` for ids it no longer tracks, so also look at the wire.
    const lateData = state.id
      ? inboundFrames()
          .filter((f) => f.msg.type === 'data' && f.msg.id === state.id)
          .slice(state.consumed)
          .map((f) => f.msg)
      : [];
    if (extra.length > 0 || lateData.length > 0) {
      throw new Error(`unexpected events: ${JSON.stringify({ extra, lateData })}`);
    }
    return {};
  },

  async waitFrame(step, ctx) {
    const f = await waitFrame(step.type, step.id, ctx.timeoutMs);
    return { frame: f.msg };
  },

  async close(step) {
    const channel = need(channels, step.on, 'channel');
    await channel.close();
    return {};
  },

  async closeAll(_step, ctx) {
    await withTimeout(events.closeAll(), ctx.timeoutMs, 'closeAll');
    return {};
  },

  async frames() {
    return { frames };
  },
};

function errorFrames(since) {
  return frames
    .slice(since)
    .filter((f) => f.dir === 'in' && f.msg && Array.isArray(f.msg.errors) && f.msg.errors.length > 0)
    .map((f) => f.msg);
}

function errorDetails(error, since) {
  const details = { error: errorText(error), errorFrames: errorFrames(since) };
  if (error?.response?.statusCode) details.httpStatus = error.response.statusCode;
  return details;
}

let callOptions;
try {
  callOptions = configure();
} catch (err) {
  fail(3, { error: `bad scenario: ${errorText(err)}` });
}

for (const [index, step] of scenario.steps.entries()) {
  const handler = handlers[step.op];
  if (!handler) fail(3, { step: index, error: `bad scenario: unknown op ${JSON.stringify(step.op)}` });
  const ctx = { callOptions, timeoutMs: step.timeoutMs ?? defaultStepTimeoutMs };
  const since = frames.length;
  const started = Date.now();
  let result;
  let error;
  try {
    result = await handler(step, ctx);
  } catch (err) {
    error = err;
  }
  const base = { step: index, op: step.op, ms: Date.now() - started };
  if (step.name) base.name = step.name;
  if (step.sub) base.sub = step.sub;
  if (error === undefined && !step.expectError) {
    emit({ ...base, ok: true, ...result });
  } else if (error !== undefined && step.expectError) {
    emit({ ...base, ok: true, ...errorDetails(error, since) });
  } else if (error !== undefined) {
    emit({ ...base, ok: false, ...errorDetails(error, since) });
    fail(1, { step: index, error: `step ${index} (${step.op}) failed` });
  } else {
    emit({ ...base, ok: false, error: 'expected an error but the step succeeded', ...result });
    fail(1, { step: index, error: `step ${index} (${step.op}) unexpectedly succeeded` });
  }
}

emit({ op: 'done', ok: true });
process.exit(0);
