// The console's only way to the server: envyard's public GraphQL API.
// Queries and mutations go over HTTP with the token as a Bearer header; subscriptions over one
// graphql-transport-ws connection, the token in connection_init's payload. A connection that
// drops is made again (with growing pauses) and its subscriptions asked for again.

const TOKEN_KEY = "envyard.token";
// Fired when the server no longer takes the token: the console signs out.
export const SESSION_ENDED = "envyard:session-ended";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
  closeSocket();
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  closeSocket();
}

// A failed operation: its message, and per input field (extensions.field) what was wrong.
export class ApiError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join(" "));
    this.errors = errors;
    this.code = (errors[0] && errors[0].extensions && errors[0].extensions.code) || "ERROR";
    this.fields = {};
    for (const e of errors) {
      const { field, index } = e.extensions || {};
      if (!field) continue;
      // "pipLibraries[1] 'x!!1': ..." of a list's entry reads "Line 2: 'x!!1': ..." at its field
      const message = Number.isInteger(index)
        ? `Line ${index + 1}: ${e.message.replace(/^\w+\[\d+\]\s*/, "")}`
        : e.message;
      this.fields[field] = this.fields[field] ? `${this.fields[field]} ${message}` : message;
    }
  }
}

function failure(message, code) {
  return new ApiError([{ message, extensions: { code } }]);
}

// Run a query or mutation; its data, or ApiError. options.token: sign in with that token
// for this request only (sign-in checks a token before keeping it).
export async function gql(query, variables = {}, options = {}) {
  const bearer = options.token || token();
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (err) {
    throw failure(`The server cannot be reached (${err.message}).`, "NETWORK");
  }
  let body;
  try {
    body = await response.json();
  } catch (err) {
    throw failure(`The server answered ${response.status} without GraphQL.`, "HTTP");
  }
  if (body.errors && body.errors.length) {
    const error = new ApiError(body.errors);
    if (!options.token) refused(error, bearer);
    throw error;
  }
  return body.data;
}

// The server no longer takes the token this session still uses: sign out, saying so (an
// answer to an older token's request says nothing of the current one).
function refused(error, used) {
  if (error.code === "UNAUTHENTICATED" && used && used === token()) {
    signOut();
    window.dispatchEvent(new Event(SESSION_ENDED));
  }
}

// -- graphql-transport-ws -------------------------------------------------------------------

// The client's heartbeat: the server answers a ping with a pong; a connection that says
// nothing for SILENT ms (a sleeping laptop, a dead proxy) is closed and made again.
const PING_EVERY = 15000;
const SILENT = 35000;
// A connection that stayed up this long starts its next reconnection pauses from the first.
const STABLE = 10000;

const active = new Map(); // subscription id -> {query, variables, handler, sent}
let nextId = 1;
let socket = null; // {ws, token, acked, ackedAt, closing, heard, beat}
let pause = 0; // ms before the next attempt to connect again
let retryTimer = null;

function closeSocket() {
  clearTimeout(retryTimer);
  retryTimer = null;
  pause = 0;
  for (const sub of active.values()) sub.handler.error(failure("Signed out.", "CLOSED"));
  active.clear();
  if (socket) {
    socket.closing = true;
    clearInterval(socket.beat);
    socket.ws.close(1000, "signed out");
    socket = null;
  }
}

function send(state, message) {
  if (state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

function ask(state, id, sub) {
  send(state, { id, type: "subscribe", payload: { query: sub.query, variables: sub.variables } });
  sub.sent = true;
}

function connect() {
  if (socket) return socket;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  const state = {
    ws: new WebSocket(url, "graphql-transport-ws"), token: token(),
    acked: false, ackedAt: 0, closing: false, heard: Date.now(), beat: null,
  };
  const { ws } = state;
  ws.addEventListener("open", () => {
    send(state, { type: "connection_init", payload: { Authorization: `Bearer ${state.token}` } });
    state.beat = setInterval(() => {
      if (Date.now() - state.heard > SILENT) ws.close(4000, "no answer from the server");
      else if (state.acked) send(state, { type: "ping" });
    }, PING_EVERY);
  });
  ws.addEventListener("message", (event) => {
    state.heard = Date.now();
    const message = JSON.parse(event.data);
    if (message.type === "connection_ack") {
      state.acked = true;
      state.ackedAt = Date.now();
      for (const [id, sub] of active) {
        if (!sub.sent) ask(state, id, sub);
        if (sub.reconnecting) {
          sub.reconnecting = false;
          if (sub.handler.status) sub.handler.status("live");
        }
      }
      return;
    }
    if (message.type === "ping") {
      send(state, { type: "pong" });
      return;
    }
    const sub = active.get(message.id);
    if (!sub) return;
    if (message.type === "next") {
      const { data, errors } = message.payload;
      if (data) sub.handler.next(data);
      else if (errors) {
        const error = new ApiError(errors);
        refused(error, state.token);
        sub.handler.error(error);
      }
    } else if (message.type === "error") {
      active.delete(message.id);
      const error = new ApiError(message.payload);
      refused(error, state.token);
      sub.handler.error(error);
    } else if (message.type === "complete") {
      active.delete(message.id);
      sub.handler.complete();
    }
  });
  ws.addEventListener("close", (event) => {
    clearInterval(state.beat);
    if (socket === state) socket = null;
    if (state.closing) return;
    if (event.code >= 4400 && event.code < 4500) {
      // the server refused this connection (4401: no valid token): asking again changes nothing
      const error = failure(`The live connection was refused (${event.code}${event.reason ? `: ${event.reason}` : ""}).`, "CLOSED");
      for (const sub of active.values()) sub.handler.error(error);
      active.clear();
      return;
    }
    if (!active.size) return; // the next subscription connects again
    for (const sub of active.values()) {
      sub.sent = false;
      sub.reconnecting = true;
      if (sub.handler.status) sub.handler.status("reconnecting");
    }
    if (state.acked && Date.now() - state.ackedAt > STABLE) pause = 0;
    pause = Math.min(pause ? pause * 2 : 500, 15000);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => { retryTimer = null; if (active.size) connect(); }, pause);
  });
  socket = state;
  return state;
}

// Subscribe; returns a function that stops the subscription.
// handler: {next(data), error(err), complete(), status?("live" | "reconnecting")}.
// After a lost connection the subscription is asked for again: a build log starts again from
// its first line (numbered: the page keeps each line once), events resume from then on.
export function subscribe(query, variables, handler) {
  const id = String(nextId++);
  const sub = { query, variables, handler, sent: false, reconnecting: false };
  active.set(id, sub);
  const state = retryTimer ? null : connect();
  if (state && state.acked) ask(state, id, sub);
  return () => {
    if (!active.delete(id)) return;
    if (sub.sent && socket && socket.acked) send(socket, { id, type: "complete" });
  };
}
