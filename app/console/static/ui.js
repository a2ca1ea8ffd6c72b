// Small building blocks of the console's pages (React without JSX: h is createElement).

export const h = React.createElement;
export const { useState, useEffect, useRef, useCallback, Fragment } = React;

export const STATUS_LABELS = {
  SAVED: "Saved",
  IN_PROGRESS: "In Progress",
  DRAFT: "Draft",
  FAILED: "Failed",
  PENDING_APPROVAL: "Pending Approval",
  PUBLISHED: "Published",
  DEPRECATED: "Deprecated",
  QUEUED: "Queued",
  BUILDING: "Building",
  SUCCEEDED: "Succeeded",
};

export function Status({ status }) {
  return h("span", { className: `status status-${status.toLowerCase()}` }, STATUS_LABELS[status] || status);
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function bytes(n) {
  if (n === null || n === undefined) return "unknown";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function link(href, text, props = {}) {
  return h("a", { href, ...props }, text);
}

// A button that shows it is working while its action runs, and its error after.
export function ActionButton({ label, busyLabel, action, className = "", disabled, title, onError }) {
  const [busy, setBusy] = useState(false);
  const mounted = useRef(true);
  useEffect(() => () => { mounted.current = false; }, []);
  async function run() {
    setBusy(true);
    try {
      await action();
    } catch (err) {
      if (onError) onError(err);
    } finally {
      if (mounted.current) setBusy(false);
    }
  }
  return h(
    "button",
    { type: "button", className: `button ${className}`, disabled: disabled || busy, onClick: run, title, "aria-busy": busy },
    busy ? h(Fragment, null, h("span", { className: "spinner", "aria-hidden": true }), busyLabel || `${label}…`) : label,
  );
}

// A message for the person: what happened or what went wrong (role=status or alert).
export function Notice({ notice, onClose }) {
  if (!notice) return null;
  const error = notice.kind === "error";
  return h(
    "div",
    { className: `notice notice-${notice.kind}`, role: error ? "alert" : "status" },
    h("span", null, notice.text),
    onClose ? h("button", { type: "button", className: "link-button", onClick: onClose, "aria-label": "Dismiss" }, "×") : null,
  );
}

// A labelled form field with its help text and the server's error for it.
export function Field({ id, label, help, error, children }) {
  return h(
    "div",
    { className: `field${error ? " field-invalid" : ""}` },
    h("label", { htmlFor: id }, label),
    children,
    help ? h("p", { className: "help", id: `${id}-help` }, help) : null,
    error ? h("p", { className: "field-error", id: `${id}-error`, role: "alert" }, error) : null,
  );
}

export function describedBy(id, help, error) {
  return [help ? `${id}-help` : null, error ? `${id}-error` : null].filter(Boolean).join(" ") || undefined;
}

export function Loading({ what }) {
  return h("p", { className: "loading", role: "status" }, h("span", { className: "spinner", "aria-hidden": true }), `Loading ${what}…`);
}

export function ErrorText({ error }) {
  if (!error) return null;
  return h("p", { className: "notice notice-error", role: "alert" }, error.message || String(error));
}

// Load data with an async function; reload() runs it again. Returns [data, error, reload].
// New deps start from nothing (no data of other deps shown meanwhile); a reload keeps what
// is shown until its answer comes.
export function useLoad(load, deps) {
  const key = JSON.stringify(deps);
  const [state, setState] = useState({ key: null, data: null, error: null });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setState({ key, data, error: null }),
      (error) => live && setState((s) => ({ key, data: s.key === key ? s.data : null, error })),
    );
    return () => { live = false; };
  }, [key, round]);
  const current = state.key === key;
  return [current ? state.data : null, current ? state.error : null, () => setRound((r) => r + 1)];
}

// A page that fails to render says so, instead of leaving the whole console blank.
export class PageBoundary extends React.Component {
  constructor(props) {
    super(props);
    this.state = { error: null };
  }

  static getDerivedStateFromError(error) {
    return { error };
  }

  render() {
    if (!this.state.error) return this.props.children;
    return h("main", null,
      h("h1", null, "This page failed"),
      h("p", { className: "notice notice-error", role: "alert" }, String(this.state.error.message || this.state.error)),
      h("p", null, h("a", { href: "#/" }, "Back to the environments")));
  }
}

export function Table({ columns, rows, empty, caption }) {
  if (!rows.length) return h("p", { className: "empty" }, empty);
  return h(
    "div",
    { className: "table-wrap" },
    h(
      "table",
      null,
      caption ? h("caption", null, caption) : null,
      h("thead", null, h("tr", null, columns.map((c) => h("th", { key: c.key, scope: "col" }, c.label)))),
      h("tbody", null, rows.map((row, i) => h("tr", { key: row.key || i }, columns.map((c) => h("td", { key: c.key, "data-label": c.label }, c.cell(row)))))),
    ),
  );
}
