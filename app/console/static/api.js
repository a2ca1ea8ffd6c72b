// The console's only way to the server: envyard's public GraphQL API.
// Queries and mutations go over HTTP with the token as a Bearer header; subscriptions over one
// graphql-transport-ws connection, the token in connection_init's payload.

const TOKEN_KEY = "envyard.token";

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
      const field = e.extensions && e.extensions.field;
      if (field) this.fields[field] = this.fields[field] ? `${this.fields[field]} ${e.message}` : e.message;
    }
  }
}

export async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        ...(token() ? { Authorization: `Bearer ${token()}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (err) {
    throw new ApiError([{ message: `The server cannot be reached (${err.message}).`, extensions: { code: "NETWORK" } }]);
  }
  let body;
  try {
    body = await response.json();
  } catch (err) {
    throw new ApiError([{ message: `The server answered ${response.status} without GraphQL.`, extensions: { code: "HTTP" } }]);
  }
  if (body.errors && body.errors.length) throw new ApiError(body.errors);
  return body.data;
}

// -- graphql-transport-ws -------------------------------------------------------------------

let socket = null; // {ws, ready: Promise, handlers: Map, nextId}

function closeSocket() {
  if (socket) {
    const old = socket;
    socket = null;
    old.ws.close(1000, "signed out");
  }
}

function connect() {
  if (socket) return socket;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  const ws = new WebSocket(url, "graphql-transport-ws");
  const state = { ws, handlers: new Map(), nextId: 1 };
  state.ready = new Promise((resolve, reject) => {
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token()}` } }));
    });
    ws.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connection_ack") resolve();
      else if (message.type === "ping") ws.send(JSON.stringify({ type: "pong" }));
      else {
        const handler = state.handlers.get(message.id);
        if (!handler) return;
        if (message.type === "next") {
          if (message.payload.errors) handler.error(new ApiError(message.payload.errors));
          else handler.next(message.payload.data);
        } else if (message.type === "error") {
          state.handlers.delete(message.id);
          handler.error(new ApiError(message.payload));
        } else if (message.type === "complete") {
          state.handlers.delete(message.id);
          handler.complete();
        }
      }
    });
    ws.addEventListener("close", (event) => {
      if (socket === state) socket = null;
      const error = new ApiError([{ message: `The live connection closed (${event.code}${event.reason ? `: ${event.reason}` : ""}).`, extensions: { code: "CLOSED" } }]);
      reject(error);
      for (const handler of state.handlers.values()) handler.error(error);
      state.handlers.clear();
    });
  });
  state.ready.catch(() => {});
  socket = state;
  return state;
}

// Subscribe; returns a function that stops the subscription. handler: {next, error, complete}.
export function subscribe(query, variables, handler) {
  const state = connect();
  const id = String(state.nextId++);
  let stopped = false;
  state.handlers.set(id, handler);
  state.ready.then(
    () => {
      if (!stopped && state.ws.readyState === WebSocket.OPEN) {
        state.ws.send(JSON.stringify({ id, type: "subscribe", payload: { query, variables } }));
      }
    },
    (err) => handler.error(err),
  );
  return () => {
    stopped = true;
    if (state.handlers.delete(id) && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify({ id, type: "complete" }));
    }
  };
}
