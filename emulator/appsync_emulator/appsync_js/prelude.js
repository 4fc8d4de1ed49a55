// The APPSYNC_JS runtime subset of the emulator: `util`, `runtime`, `console`, the
// `@aws-appsync/utils` module, and the `__appsync` entry points that Python calls.
//
// Followed pages (AWS AppSync Events developer guide): "Built-in utilities",
// "Runtime utilities", "Supported runtime features"; `util.time` and the id helpers
// follow the GraphQL guide's "Time helpers in util.time" and "Built-in utilities"
// (JavaScript), which the Events runtime shares.
//
// Python and JS exchange JSON text only: one string in, one string out.  A thrown
// `util.error` / `util.unauthorized` / `runtime.earlyReturn` is a marker object caught
// by `invoke`, so its fields survive; anything else thrown comes back as `crashed`.
globalThis.__appsync = (() => {
  "use strict";

  const LOG_LINES = 100;
  const LOG_CHARS = 10000;
  let nowMs = 0; // set by Python for every invocation, so tests can freeze time
  let logs = [];
  let appended = [];

  const signal = (kind, fields) => {
    throw Object.assign({ __appsyncSignal: kind }, fields);
  };

  // --- console ---------------------------------------------------------------------
  const show = (value) => {
    if (typeof value === "string") return value;
    try {
      const text = JSON.stringify(value);
      return text === undefined ? String(value) : text;
    } catch (e) {
      return String(value);
    }
  };
  const logger = (level) => (...args) => {
    if (logs.length >= LOG_LINES) return;
    logs.push({ level, text: args.map(show).join(" ").slice(0, LOG_CHARS) });
  };
  const console = {
    log: logger("info"),
    info: logger("info"),
    debug: logger("debug"),
    warn: logger("warning"),
    error: logger("error"),
  };

  // --- encoding --------------------------------------------------------------------
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const utf8 = (text) => unescape(encodeURIComponent(String(text)));
  const fromUtf8 = (bytes) => decodeURIComponent(escape(bytes));
  const base64Encode = (text) => {
    const bytes = utf8(text);
    let out = "";
    for (let i = 0; i < bytes.length; i += 3) {
      const n =
        (bytes.charCodeAt(i) << 16) |
        ((bytes.charCodeAt(i + 1) || 0) << 8) |
        (bytes.charCodeAt(i + 2) || 0);
      out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
      out += i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=";
      out += i + 2 < bytes.length ? B64[n & 63] : "=";
    }
    return out;
  };
  const base64Decode = (text) => {
    const clean = String(text).replace(/[^A-Za-z0-9+/]/g, "");
    let bytes = "";
    for (let i = 0; i < clean.length; i += 4) {
      const chunk = clean.slice(i, i + 4);
      const n = chunk
        .split("")
        .reduce((acc, ch, k) => acc | (B64.indexOf(ch) << (18 - 6 * k)), 0);
      bytes += String.fromCharCode((n >> 16) & 255);
      if (chunk.length > 2) bytes += String.fromCharCode((n >> 8) & 255);
      if (chunk.length > 3) bytes += String.fromCharCode(n & 255);
    }
    return fromUtf8(bytes);
  };
  // application/x-www-form-urlencoded, as java.net.URLEncoder: keep A-Z a-z 0-9 . - * _,
  // space becomes "+", everything else is %XX of its UTF-8 bytes.
  const urlEncode = (text) =>
    encodeURIComponent(String(text))
      .replace(/[!'()~]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())
      .replace(/%20/g, "+");
  const urlDecode = (text) => decodeURIComponent(String(text).replace(/\+/g, " "));
  const escapeJavaScript = (text) =>
    JSON.stringify(String(text)).slice(1, -1).replace(/'/g, "\\'");

  // --- ids -------------------------------------------------------------------------
  const hex = (n) =>
    Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join("");
  const autoId = () => {
    const variant = "89ab"[Math.floor(Math.random() * 4)];
    return `${hex(8)}-${hex(4)}-4${hex(3)}-${variant}${hex(3)}-${hex(12)}`;
  };
  const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const autoUlid = () => {
    let time = nowMs;
    let head = "";
    for (let i = 0; i < 10; i += 1) {
      head = CROCKFORD[time % 32] + head;
      time = Math.floor(time / 32);
    }
    const tail = Array.from({ length: 16 }, () => CROCKFORD[Math.floor(Math.random() * 32)]);
    return head + tail.join("");
  };
  const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const autoKsuid = () => {
    // 4 bytes of seconds since the KSUID epoch (2014-05-13) + 16 random bytes, base62.
    const bytes = [];
    let stamp = Math.floor(nowMs / 1000) - 1400000000;
    for (let i = 0; i < 4; i += 1) {
      bytes.unshift(stamp & 255);
      stamp = Math.floor(stamp / 256);
    }
    for (let i = 0; i < 16; i += 1) bytes.push(Math.floor(Math.random() * 256));
    let out = "";
    let digits = bytes;
    while (digits.length) {
      const next = [];
      let rest = 0;
      for (const d of digits) {
        const acc = rest * 256 + d;
        const q = Math.floor(acc / 62);
        rest = acc % 62;
        if (next.length || q) next.push(q);
      }
      out = BASE62[rest] + out;
      digits = next;
    }
    return out.padStart(27, "0");
  };

  // --- time ------------------------------------------------------------------------
  // Patterns follow java.time.format.DateTimeFormatter letters, the subset handlers use:
  // y/u (year), M (month), d (day), H/h (hour), m, s, S (fraction), a (AM/PM),
  // E (day name), Z / X / x (offset), and 'quoted literals'.
  const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  const MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
  ];
  const offsetMinutes = (ms, zone) => {
    if (!zone || zone === "UTC" || zone === "Z" || zone === "GMT") return 0;
    const fixed = /^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$/.exec(zone);
    if (fixed) {
      const sign = fixed[1] === "-" ? -1 : 1;
      return sign * (Number(fixed[2]) * 60 + Number(fixed[3] || 0));
    }
    const parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric",
    }).formatToParts(new Date(ms)).forEach((p) => { parts[p.type] = Number(p.value); });
    const wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute,
      parts.second);
    return Math.round((wall - Math.floor(ms / 1000) * 1000) / 60000);
  };
  const tokens = (pattern) => {
    const out = [];
    const re = /'([^']*)'|([A-Za-z])\2*|[^A-Za-z']+/g;
    let m = re.exec(pattern);
    while (m !== null) {
      if (m[1] !== undefined) out.push({ literal: m[1] === "" ? "'" : m[1] });
      else if (m[2] !== undefined) out.push({ letter: m[2], width: m[0].length });
      else out.push({ literal: m[0] });
      m = re.exec(pattern);
    }
    return out;
  };
  const pad = (n, width) => String(n).padStart(width, "0");
  const formatOffset = (minutes, letter, width) => {
    if (minutes === 0 && letter === "X") return "Z";
    const sign = minutes < 0 ? "-" : "+";
    const hh = pad(Math.floor(Math.abs(minutes) / 60), 2);
    const mm = pad(Math.abs(minutes) % 60, 2);
    if (letter === "Z") return width >= 4 ? `GMT${sign}${hh}:${mm}` : `${sign}${hh}${mm}`;
    if (width === 1) return `${sign}${hh}${mm === "00" ? "" : mm}`;
    return width === 2 ? `${sign}${hh}${mm}` : `${sign}${hh}:${mm}`;
  };
  const format = (ms, pattern, zone) => {
    const offset = offsetMinutes(ms, zone);
    const d = new Date(ms + offset * 60000);
    const field = {
      y: (w) => (w === 2 ? pad(d.getUTCFullYear() % 100, 2) : pad(d.getUTCFullYear(), w)),
      M: (w) => (w >= 4 ? MONTHS[d.getUTCMonth()] : w === 3
        ? MONTHS[d.getUTCMonth()].slice(0, 3) : pad(d.getUTCMonth() + 1, w)),
      d: (w) => pad(d.getUTCDate(), w),
      H: (w) => pad(d.getUTCHours(), w),
      h: (w) => pad(d.getUTCHours() % 12 || 12, w),
      m: (w) => pad(d.getUTCMinutes(), w),
      s: (w) => pad(d.getUTCSeconds(), w),
      S: (w) => pad(d.getUTCMilliseconds(), 3).slice(0, w).padEnd(w, "0"),
      a: () => (d.getUTCHours() < 12 ? "AM" : "PM"),
      E: (w) => (w >= 4 ? DAYS[d.getUTCDay()] : DAYS[d.getUTCDay()].slice(0, 3)),
      Z: (w) => formatOffset(offset, "Z", w),
      X: (w) => formatOffset(offset, "X", w),
      x: (w) => formatOffset(offset, "x", w),
    };
    field.u = field.y;
    return tokens(pattern)
      .map((t) => {
        if (t.literal !== undefined) return t.literal;
        const f = field[t.letter];
        if (f === undefined) throw new Error(`Unsupported date pattern letter '${t.letter}'`);
        return f(t.width);
      })
      .join("");
  };
  const parse = (text, pattern, zone) => {
    const v = { y: 1970, M: 1, d: 1, H: 0, m: 0, s: 0, S: 0, pm: null, offset: null };
    let pos = 0;
    const s = String(text);
    for (const t of tokens(pattern)) {
      if (t.literal !== undefined) {
        if (s.slice(pos, pos + t.literal.length) !== t.literal) {
          throw new Error(`Text '${s}' could not be parsed at index ${pos}`);
        }
        pos += t.literal.length;
      } else if ("ZXx".includes(t.letter)) {
        const m = /^(Z|[+-]\d{2}:?\d{2}|[+-]\d{2})/.exec(s.slice(pos));
        if (!m) throw new Error(`Text '${s}' could not be parsed at index ${pos}`);
        pos += m[0].length;
        v.offset = m[0] === "Z" ? 0 : offsetMinutes(0, m[0]);
      } else if (t.letter === "a") {
        v.pm = s.slice(pos, pos + 2).toUpperCase() === "PM";
        pos += 2;
      } else {
        const m = (t.width > 1 ? new RegExp(`^\\d{${t.width}}`) : /^\d+/).exec(s.slice(pos));
        if (!m) throw new Error(`Text '${s}' could not be parsed at index ${pos}`);
        pos += m[0].length;
        const key = t.letter === "u" ? "y" : t.letter === "h" ? "H" : t.letter;
        v[key] = t.letter === "S" ? Number(m[0].padEnd(3, "0").slice(0, 3)) : Number(m[0]);
      }
    }
    if (v.pm !== null) v.H = (v.H % 12) + (v.pm ? 12 : 0);
    const wall = Date.UTC(v.y, v.M - 1, v.d, v.H, v.m, v.s, v.S);
    if (v.offset !== null) return wall - v.offset * 60000;
    const guess = wall - offsetMinutes(wall, zone) * 60000;
    return wall - offsetMinutes(guess, zone) * 60000;
  };
  const time = {
    nowISO8601: () => new Date(nowMs).toISOString(),
    nowEpochSeconds: () => Math.floor(nowMs / 1000),
    nowEpochMilliSeconds: () => nowMs,
    nowFormatted: (pattern, zone) => format(nowMs, pattern, zone),
    parseFormattedToEpochMilliSeconds: (text, pattern, zone) => parse(text, pattern, zone),
    parseISO8601ToEpochMilliSeconds: (text) => {
      const ms = Date.parse(text);
      if (Number.isNaN(ms)) throw new Error(`Text '${text}' could not be parsed`);
      return ms;
    },
    epochMilliSecondsToSeconds: (ms) => Math.floor(ms / 1000),
    epochMilliSecondsToISO8601: (ms) => new Date(ms).toISOString(),
    epochMilliSecondsToFormatted: (ms, pattern, zone) => format(ms, pattern, zone),
  };

  // --- util, runtime ---------------------------------------------------------------
  const util = Object.freeze({
    error: (message, errorType, data, errorInfo) =>
      signal("error", { message: show(message), errorType, data, errorInfo }),
    appendError: (message, errorType, data, errorInfo) => {
      appended.push({ message: show(message), errorType, data, errorInfo });
    },
    unauthorized: () => signal("unauthorized", {}),
    autoId,
    autoUlid,
    autoKsuid,
    base64Encode,
    base64Decode,
    urlEncode,
    urlDecode,
    escapeJavaScript,
    time: Object.freeze(time),
  });
  const runtime = Object.freeze({
    earlyReturn: (value) => signal("earlyReturn", { value: value === undefined ? null : value }),
  });
  const extensions = Object.freeze({});
  const modules = { "@aws-appsync/utils": { util, runtime, extensions } };
  const require = (name) => {
    if (!Object.hasOwn(modules, name)) {
      throw new Error(`Cannot find module '${name}': the emulator provides only @aws-appsync/utils`);
    }
    return modules[name];
  };

  // --- entry points ----------------------------------------------------------------
  const handlers = {};

  // A `{request, response}` handler: there is no data source in the emulator, so the
  // request function's return value becomes ctx.result, as AWS's NONE data source does.
  const runObject = (handler, ctx) => {
    let request;
    try {
      request = handler.request(ctx);
    } catch (e) {
      if (e && e.__appsyncSignal === "earlyReturn") return e.value;
      throw e;
    }
    ctx.result = request === undefined ? null : request;
    return typeof handler.response === "function" ? handler.response(ctx) : ctx.result;
  };

  const run = (handler, name, ctx) => {
    if (typeof handler === "function") return { ok: handler(ctx) };
    if (handler && typeof handler === "object" && typeof handler.request === "function") {
      return { ok: runObject(handler, ctx) };
    }
    return { malformed: `${name} must be a function or an object with request() and response()` };
  };

  return {
    load(id, factory) {
      handlers[id] = factory(require, util, runtime, extensions, console);
    },
    unload(id) {
      delete handlers[id];
    },
    invoke(id, name, ctxJson, now) {
      nowMs = now;
      logs = [];
      appended = [];
      const handler = handlers[id] ? handlers[id][name] : undefined;
      let reply;
      if (handler === undefined || handler === null) {
        reply = { missing: true };
      } else {
        const ctx = JSON.parse(ctxJson);
        ctx.channel = ctx.info.channel.path;
        ctx.channelNamespace = ctx.info.channelNamespace;
        ctx.operation = ctx.info.operation;
        try {
          reply = run(handler, name, ctx);
          if ("ok" in reply && reply.ok === undefined) reply.ok = null;
        } catch (e) {
          if (e && e.__appsyncSignal === "earlyReturn") reply = { ok: e.value };
          else if (e && e.__appsyncSignal) reply = { raised: e };
          else reply = { crashed: String((e && e.stack) || e) };
        }
      }
      reply.logs = logs;
      reply.appended = appended;
      try {
        return JSON.stringify(reply);
      } catch (e) {
        return JSON.stringify({ malformed: `${name} returned a value that is not JSON: ${e}`, logs });
      }
    },
  };
})();
