// The console's shell: who is signed in, the navigation, and which page the address names
// (#/..., so that every page has a link and the server serves one page at /).

import { DeprecationPage, PolicyPage, ReviewPage, ReviewQueue } from "./admin.js";
import { SESSION_ENDED, gql, signOut, token } from "./api.js";
import { EnvironmentForm, EnvironmentList, EnvironmentPage, EventsPage, SignIn } from "./pages.js";
import { ErrorText, Loading, Notice, PageBoundary, h, link, useEffect, useRef, useState } from "./ui.js";

function route(hash) {
  try {
    return match(hash);
  } catch (err) { // an address with a broken %-escape
    return { page: "missing" };
  }
}

function match(hash) {
  const path = hash.replace(/^#/, "") || "/";
  const patterns = [
    [/^\/$/, () => ({ page: "list" })],
    [/^\/new$/, () => ({ page: "new" })],
    [/^\/environments\/([^/]+)$/, (m) => ({ page: "env", id: decodeURIComponent(m[1]) })],
    [/^\/environments\/([^/]+)\/edit$/, (m) => ({ page: "edit", id: decodeURIComponent(m[1]) })],
    [/^\/events$/, () => ({ page: "events" })],
    [/^\/admin$/, () => ({ page: "queue" })],
    [/^\/admin\/review\/([^/]+)$/, (m) => ({ page: "review", id: decodeURIComponent(m[1]) })],
    [/^\/admin\/deprecation$/, () => ({ page: "deprecation" })],
    [/^\/admin\/policy$/, () => ({ page: "policy" })],
  ];
  for (const [pattern, make] of patterns) {
    const match = path.match(pattern);
    if (match) return make(match);
  }
  return { page: "missing" };
}

function App() {
  const [me, setMe] = useState(null);
  const [checking, setChecking] = useState(Boolean(token()));
  const [problem, setProblem] = useState(null);
  const [where, setWhere] = useState(route(location.hash));
  const [flash, setFlash] = useState(null); // a notice carried to the page it names
  const [ended, setEnded] = useState(null); // why the session ended, for the sign-in page
  const first = useRef(true);

  useEffect(() => {
    const changed = () => {
      setWhere(route(location.hash));
      // shown once, on the page it was carried to
      setFlash((f) => (f && f.hash === location.hash ? f : null));
      window.scrollTo(0, 0);
    };
    const sessionEnded = () => {
      setMe(null);
      setFlash(null);
      setEnded("Your session ended: the server no longer takes that token. Sign in again.");
    };
    addEventListener("hashchange", changed);
    addEventListener(SESSION_ENDED, sessionEnded);
    return () => {
      removeEventListener("hashchange", changed);
      removeEventListener(SESSION_ENDED, sessionEnded);
    };
  }, []);
  useEffect(() => {
    // a keyboard or screen reader user starts at the new page, not at the link they used
    if (first.current) first.current = false;
    else document.getElementById("content")?.focus({ preventScroll: true });
  }, [where]);
  useEffect(() => {
    if (!token()) return;
    gql("{ me { username isAdmin organization } }").then(
      (data) => { setMe(data.me); setChecking(false); },
      (err) => {
        if (err.code === "UNAUTHENTICATED") signOut();
        else setProblem(err);
        setChecking(false);
      },
    );
  }, []);

  if (checking) return h(Loading, { what: "your account" });
  if (problem) {
    return h("main", null, h(ErrorText, { error: problem }),
      h("button", { type: "button", className: "button", onClick: () => location.reload() }, "Try again"),
      " ",
      h("button", { type: "button", className: "button subtle", onClick: () => { signOut(); setProblem(null); } }, "Sign in with another token"));
  }
  if (!me) return h(SignIn, { onSignedIn: (user) => { setEnded(null); setMe(user); }, reason: ended });

  function navigate(hash, notice) {
    setFlash(notice ? { ...notice, hash } : null);
    location.hash = hash;
  }
  const notice = flash && flash.hash === location.hash ? flash : null;
  const key = `${where.page}:${where.id || ""}`;
  let page;
  switch (where.page) {
    case "list": page = h(EnvironmentList, { me }); break;
    case "new": page = h(EnvironmentForm, { navigate }); break;
    case "edit": page = h(EnvironmentForm, { id: where.id, navigate }); break;
    case "env": page = h(EnvironmentPage, { id: where.id, me, notice, key: `${key}:${notice ? notice.text : ""}` }); break;
    case "events": page = h(EventsPage, null); break;
    case "queue": page = me.isAdmin ? h(QueuePage, { notice }) : forbidden(); break;
    case "review": page = me.isAdmin ? h(ReviewPage, { id: where.id, navigate }) : forbidden(); break;
    case "deprecation": page = me.isAdmin ? h(DeprecationPage, null) : forbidden(); break;
    case "policy": page = me.isAdmin ? h(PolicyPage, null) : forbidden(); break;
    default: page = h("main", null, h("h1", { tabIndex: -1 }, "Not found"), h("p", null, link("#/", "Back to the environments")));
  }
  const nav = [
    ["#/", "Environments", ["list", "env", "edit"]],
    ["#/new", "New Environment", ["new"]],
    ["#/events", "Events", ["events"]],
    ...(me.isAdmin ? [["#/admin", "Admin → Python Environments", ["queue", "review"]], ["#/admin/policy", "Policy", ["policy"]], ["#/admin/deprecation", "Deprecation", ["deprecation"]]] : []),
  ];
  return h(
    "div",
    { className: "shell" },
    h("a", { className: "skip", href: "#content", onClick: (e) => { e.preventDefault(); document.getElementById("content").focus(); } }, "Skip to content"),
    h("header", { className: "top" },
      h("a", { className: "brand", href: "#/" }, "envyard"),
      h("nav", { "aria-label": "Main" }, h("ul", null, nav.map(([href, text, pages]) => h("li", { key: href },
        h("a", { href, "aria-current": pages.includes(where.page) ? "page" : undefined }, text))))),
      h("div", { className: "who" },
        h("span", null, `${me.username} · ${me.organization}${me.isAdmin ? " · admin" : ""}`),
        h("button", { type: "button", className: "link-button", onClick: () => { signOut(); setFlash(null); setMe(null); } }, "Sign out"))),
    h("div", { id: "content", tabIndex: -1 }, h(PageBoundary, { key }, page)),
  );
}

function QueuePage({ notice }) {
  return h("div", null, h(Notice, { notice }), h(ReviewQueue, null));
}

function forbidden() {
  return h("main", null, h("h1", { tabIndex: -1 }, "Admins only"), h("p", null, "This page is for your organization's admins."));
}

ReactDOM.createRoot(document.getElementById("root")).render(h(App));
