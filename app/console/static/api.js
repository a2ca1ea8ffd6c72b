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
    if (error.code === "UNAUTHENTICATED" && !options.token && token()) {
      signOut();
      window.dispatchEvent(new Event(SESSION_ENDED));
    }
    throw error;
  }
  return body.data;
}

// -- graphql-transport-ws -------------------------------------------------------------------

const active = new Map(); // subscription id -> {query, variables, handler, sent}
let nextId = 1;
let socket = null; // {ws, acked, closing}
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
  const state = { ws: new WebSocket(url, "graphql-transport-ws"), acked: false, closing: false };
  const { ws } = state;
  ws.addEventListener("open", () => {
    send(state, { type: "connection_init", payload: { Authorization: `Bearer ${token()}` } });
  });
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "connection_ack") {
      state.acked = true;
      pause = 0;
      for (const [id, sub] of active) {
        ask(state, id, sub);
        if (sub.handler.status) sub.handler.status("live");
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
      else if (errors) sub.handler.error(new ApiError(errors));
    } else if (message.type === "error") {
      active.delete(message.id);
      sub.handler.error(new ApiError(message.payload));
    } else if (message.type === "complete") {
      active.delete(message.id);
      sub.handler.complete();
    }
  });
  ws.addEventListener("close", (event) => {
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
      if (sub.handler.status) sub.handler.status("reconnecting");
    }
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
  const sub = { query, variables, handler, sent: false };
  active.set(id, sub);
  const state = retryTimer ? null : connect();
  if (state && state.acked) ask(state, id, sub);
  return () => {
    if (!active.delete(id)) return;
    if (sub.sent && socket && socket.acked) send(socket, { id, type: "complete" });
  };
}
