// The pages every member uses: sign-in, the environment list, the creation and edit form,
// an environment's page (versions, live build log, diff, actions) and the events timeline.

import { gql, signIn, subscribe } from "./api.js";
import {
  ActionButton, ErrorText, Field, Fragment, Loading, Notice, STATUS_LABELS, Status, Table,
  bytes, describedBy, h, link, useEffect, useLoad, useRef, useState, when,
} from "./ui.js";

const ME = "{ me { username isAdmin organization } }";

// -- sign-in ----------------------------------------------------------------------------------

export function SignIn({ onSignedIn, reason }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // checked before it is kept: a refused token is never stored
      const data = await gql(ME, {}, { token: value.trim() });
      signIn(value.trim());
      onSignedIn(data.me);
    } catch (err) {
      setError(err.code === "UNAUTHENTICATED" ? "This token is not valid. Ask an admin for yours (envyard user add)." : err.message);
      setBusy(false);
    }
  }
  return h(
    "main",
    { className: "signin" },
    h("h1", null, "envyard"),
    h("p", null, "Define, build, review and publish the Python environments your notebooks and pipelines run on."),
    reason ? h("p", { className: "notice notice-error", role: "alert" }, reason) : null,
    h(
      "form",
      { onSubmit: submit, "aria-label": "Sign in" },
      h(
        Field,
        { id: "token", label: "API token", help: "Your token (ey_…) is kept in this browser tab only, until you sign out or close it.", error },
        h("input", {
          id: "token", type: "password", autoComplete: "off", required: true, value,
          onChange: (e) => setValue(e.target.value), "aria-describedby": describedBy("token", true, error), autoFocus: true,
        }),
      ),
      h("button", { type: "submit", className: "button primary", disabled: busy || !value.trim() }, busy ? "Signing in…" : "Sign in"),
    ),
  );
}

// -- the environment list ---------------------------------------------------------------------

const LIST = `query($filter: EnvironmentFilter, $first: Int!, $after: String) {
  searchEnvironments(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id shortName fullName status pythonVersion updatedAt creator { username } baseEnvironment { name } } }
  }
}`;
const PAGE_SIZE = 20;

export function EnvironmentList({ me }) {
  const [search, setSearch] = useState("");
  const [typed, setTyped] = useState("");
  const [status, setStatus] = useState("");
  const [cursors, setCursors] = useState([null]); // the cursor of each page seen, for Previous
  const after = cursors[cursors.length - 1];
  const filter = { search: search || null, status: status ? [status] : null };
  const [data, error] = useLoad(() => gql(LIST, { filter, first: PAGE_SIZE, after }), [search, status, after]);

  useEffect(() => {
    const next = typed.trim();
    if (next === search) return undefined;
    const timer = setTimeout(() => { setSearch(next); setCursors([null]); }, 250);
    return () => clearTimeout(timer);
  }, [typed]);

  const page = data && data.searchEnvironments;
  const number = cursors.length;
  return h(
    "main",
    null,
    h("div", { className: "page-head" }, h("h1", null, "Environments"), link("#/new", "New Environment", { className: "button primary" })),
    h(
      "form",
      { className: "filters", role: "search", onSubmit: (e) => e.preventDefault() },
      h(Field, { id: "search", label: "Search" },
        h("input", { id: "search", type: "search", placeholder: "Short name, full name or description", value: typed, onChange: (e) => setTyped(e.target.value) })),
      h(Field, { id: "status-filter", label: "Status" },
        h("select", { id: "status-filter", value: status, onChange: (e) => { setStatus(e.target.value); setCursors([null]); } },
          h("option", { value: "" }, "Any status"),
          ["SAVED", "IN_PROGRESS", "DRAFT", "FAILED", "PENDING_APPROVAL", "PUBLISHED", "DEPRECATED"].map((s) => h("option", { key: s, value: s }, STATUS_LABELS[s])))),
    ),
    h(ErrorText, { error }),
    !page ? (error ? null : h(Loading, { what: "environments" })) : h(
      Fragment,
      null,
      h("p", { className: "count", role: "status" }, `${page.totalCount} environment${page.totalCount === 1 ? "" : "s"}${page.totalCount > PAGE_SIZE ? `, page ${number}` : ""}`),
      h(Table, {
        caption: "Environments you can see",
        empty: search || status ? "No environment matches." : "No environment yet: create the first one.",
        rows: page.edges.map((e) => ({ key: e.node.id, ...e.node })),
        columns: [
          { key: "short", label: "Short name", cell: (r) => link(`#/environments/${r.id}`, r.shortName) },
          { key: "full", label: "Full name", cell: (r) => r.fullName },
          { key: "status", label: "Status", cell: (r) => h(Status, { status: r.status }) },
          { key: "base", label: "Base", cell: (r) => (r.baseEnvironment ? r.baseEnvironment.name : `Python ${r.pythonVersion}`) },
          { key: "creator", label: "Creator", cell: (r) => (r.creator.username === me.username ? "you" : r.creator.username) },
          { key: "updated", label: "Updated", cell: (r) => when(r.updatedAt) },
        ],
      }),
      h(
        "nav",
        { className: "pager", "aria-label": "Pages" },
        h("button", { type: "button", className: "button", disabled: number === 1, onClick: () => setCursors(cursors.slice(0, -1)) }, "Previous page"),
        h("button", { type: "button", className: "button", disabled: !page.pageInfo.hasNextPage, onClick: () => setCursors([...cursors, page.pageInfo.endCursor]) }, "Next page"),
      ),
    ),
  );
}

// -- creation and edit form -------------------------------------------------------------------

const BASES = "{ baseEnvironments { name pythonVersion } }";
const CREATE = "mutation($input: EnvironmentInput!) { createEnvironment(input: $input) { id } }";
const UPDATE = "mutation($id: ID!, $input: EnvironmentUpdate!) { updateEnvironment(id: $id, input: $input) { id } }";
const BUILD = "mutation($id: ID!) { buildEnvironment(id: $id) { id number } }";
const FORM_ENV = "query($id: ID!) { environment(id: $id) { id shortName fullName description pythonVersion baseEnvironment { name } condaLibraries pipLibraries status } }";

const LIBRARY_HELP = "One per line: lib, lib=v, lib==v, lib<=v or lib>=v, each with optional [extras], e.g. pandas>=2.0 or requests[socks]==2.31.0.";

function lines(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

export function EnvironmentForm({ id, navigate }) {
  const editing = Boolean(id);
  const [bases] = useLoad(() => gql(BASES), []);
  const [existing, loadError] = useLoad(() => (editing ? gql(FORM_ENV, { id }) : Promise.resolve(null)), [id]);
  const [form, setForm] = useState({ shortName: "", fullName: "", description: "", base: "", pythonVersion: "", conda: "", pip: "" });
  const [errors, setErrors] = useState({});
  const [notice, setNotice] = useState(null);
  const [busy, setBusy] = useState(null);

  useEffect(() => {
    const env = existing && existing.environment;
    if (env) {
      setForm({
        shortName: env.shortName, fullName: env.fullName, description: env.description || "",
        base: env.baseEnvironment ? env.baseEnvironment.name : "", pythonVersion: env.pythonVersion,
        conda: env.condaLibraries.join("\n"), pip: env.pipLibraries.join("\n"),
      });
    }
  }, [existing]);
  const baseList = (bases && bases.baseEnvironments) || [];
  // a new environment needs the Python versions on offer before it can be saved
  const ready = editing || (Boolean(bases) && Boolean(form.pythonVersion || form.base));
  const versions = [...new Set(baseList.map((b) => b.pythonVersion))];
  useEffect(() => {
    if (!editing && !form.pythonVersion && versions.length) setForm((f) => ({ ...f, pythonVersion: versions[versions.length - 1] }));
  }, [bases]);

  // functional: an update never starts from an older form (the default Python version is
  // set when the base environments arrive, perhaps while the person types)
  const set = (key) => (e) => {
    const { value } = e.target;
    setForm((f) => ({ ...f, [key]: value }));
  };
  async function save(andBuild) {
    setBusy(andBuild ? "build" : "save");
    setErrors({});
    setNotice(null);
    try {
      let envId = id;
      if (editing) {
        // only what changed: the environment's history says what its creator changed
        const env = existing.environment;
        const input = {};
        if (form.fullName !== env.fullName) input.fullName = form.fullName;
        if (form.description !== (env.description || "")) input.description = form.description || null;
        if (lines(form.conda).join("\n") !== env.condaLibraries.join("\n")) input.condaLibraries = lines(form.conda);
        if (lines(form.pip).join("\n") !== env.pipLibraries.join("\n")) input.pipLibraries = lines(form.pip);
        if (Object.keys(input).length) await gql(UPDATE, { id, input });
      } else {
        const input = {
          shortName: form.shortName.trim(), fullName: form.fullName, description: form.description || null,
          condaLibraries: lines(form.conda), pipLibraries: lines(form.pip),
          ...(form.base ? { baseEnvironment: form.base } : { pythonVersion: form.pythonVersion }),
        };
        envId = (await gql(CREATE, { input })).createEnvironment.id;
      }
      if (andBuild) {
        try {
          await gql(BUILD, { id: envId });
        } catch (err) {
          navigate(`#/environments/${envId}`, { kind: "error", text: `Saved, but the build did not start: ${err.message}` });
          return;
        }
      }
      navigate(`#/environments/${envId}`, { kind: "ok", text: andBuild ? "Saved; the build is queued." : "Saved." });
    } catch (err) {
      setErrors(err.fields || {});
      setNotice({ kind: "error", text: Object.keys(err.fields || {}).length ? "Some fields need a change: see below." : err.message });
      setBusy(null);
    }
  }
  if (editing && loadError) return h("main", null, h(ErrorText, { error: loadError }));
  if (editing && !existing) return h("main", null, h(Loading, { what: "the environment" }));
  const env = existing && existing.environment;
  if (editing && !env) return h("main", null, h("p", { className: "notice notice-error", role: "alert" }, "No such environment, or you may not see it."));
  const input = (key, field, props = {}) => h(props.multiline ? "textarea" : "input", {
    id: field, value: form[key], onChange: set(key), "aria-invalid": Boolean(errors[field]),
    "aria-describedby": describedBy(field, props.help, errors[field]), ...props.attrs,
  });
  return h(
    "main",
    null,
    h("h1", null, editing ? `Edit ${env.shortName}` : "New Environment"),
    h(Notice, { notice }),
    h(
      "form",
      { className: "env-form", onSubmit: (e) => { e.preventDefault(); save(false); }, noValidate: true },
      h(Field, { id: "shortName", label: "Short name", help: editing ? "Fixed once created." : "At most 5 characters, unique in your organization; it names the environment's kernel.", error: errors.shortName },
        input("shortName", "shortName", { help: true, attrs: { maxLength: 5, required: true, disabled: editing, autoComplete: "off", spellCheck: false } })),
      h(Field, { id: "fullName", label: "Full name", error: errors.fullName },
        input("fullName", "fullName", { attrs: { required: true, maxLength: 200 } })),
      h(Field, { id: "description", label: "Description", help: "What it is for: reviewers read it.", error: errors.description },
        input("description", "description", { multiline: true, help: true, attrs: { rows: 2 } })),
      h(Field, { id: "baseEnvironment", label: "Base environment", help: editing ? "Fixed once created." : "Start from a base environment, or None and choose a Python version.", error: errors.baseEnvironment },
        h("select", { id: "baseEnvironment", value: form.base, onChange: set("base"), disabled: editing, "aria-describedby": describedBy("baseEnvironment", true, errors.baseEnvironment) },
          h("option", { value: "" }, "None"),
          baseList.map((b) => h("option", { key: b.name, value: b.name }, `${b.name} (Python ${b.pythonVersion})`)))),
      form.base ? null : h(Field, { id: "pythonVersion", label: "Python version", error: errors.pythonVersion },
        h("select", { id: "pythonVersion", value: form.pythonVersion, onChange: set("pythonVersion"), disabled: editing },
          (editing && !versions.includes(form.pythonVersion) ? [form.pythonVersion, ...versions] : versions).map((v) => h("option", { key: v, value: v }, v)))),
      h(Field, { id: "condaLibraries", label: "Conda libraries", help: LIBRARY_HELP, error: errors.condaLibraries },
        input("conda", "condaLibraries", { multiline: true, help: true, attrs: { rows: 4, spellCheck: false } })),
      h(Field, { id: "pipLibraries", label: "Pip libraries", help: LIBRARY_HELP, error: errors.pipLibraries },
        input("pip", "pipLibraries", { multiline: true, help: true, attrs: { rows: 6, spellCheck: false } })),
      h(
        "div",
        { className: "actions" },
        h("button", { type: "submit", className: "button", disabled: Boolean(busy) || !ready }, busy === "save" ? "Saving…" : "Save"),
        h("button", { type: "button", className: "button primary", disabled: Boolean(busy) || !ready, onClick: () => save(true) }, busy === "build" ? "Saving and building…" : "Save and Build"),
        link(editing ? `#/environments/${id}` : "#/", "Cancel", { className: "button subtle" }),
      ),
    ),
  );
}

// -- an environment's page ------------------------------------------------------------------------

const ENV = `query($id: ID!) { environment(id: $id) {
  id shortName fullName description pythonVersion baseEnvironment { name } condaLibraries pipLibraries
  status reviewFeedback createdAt updatedAt publishedAt submittedAt creator { username }
  activeVersion { number } publishedVersion { number } usage { activations users lastActivatedAt }
  versions { id number status revertedFrom createdAt startedAt finishedAt archived sizeBytes }
  events { id at kind versionNumber note actor { username } }
} }`;
const VERSION = `query($id: ID!) { version(id: $id) {
  id number status condaLibraries pipLibraries log revertedFrom sizeBytes archived startedAt finishedAt
  packages { name version manager }
} }`;
const LOG = "subscription($v: ID!) { buildLog(versionId: $v) { number text } }";
const DIFF = "query($a: ID!, $b: ID!) { libraryDiff(fromVersion: $a, toVersion: $b) { changes { name manager kind before after } } }";
const CANCEL = "mutation($v: ID!) { cancelBuild(versionId: $v) { id status } }";
const REVERT = "mutation($id: ID!, $n: Int!) { revertEnvironment(id: $id, version: $n) { id number } }";
const ACTIVATE = "mutation($id: ID!) { activateEnvironment(id: $id) { pythonPath image version { number } } }";
const SUBMIT = "mutation($id: ID!) { submitEnvironment(id: $id) { id status } }";

const RUNNING = new Set(["QUEUED", "BUILDING"]);

export function EnvironmentPage({ id, me, notice: initialNotice }) {
  const [data, error, reload] = useLoad(() => gql(ENV, { id }), [id]);
  const [selected, setSelected] = useState(null); // a version's id
  const [notice, setNotice] = useState(initialNotice || null);
  const [activation, setActivation] = useState(null);
  const env = data && data.environment;
  const versions = env ? [...env.versions].sort((a, b) => b.number - a.number) : [];
  const latest = versions[0];
  const current = versions.find((v) => v.id === selected) || latest;
  const running = latest && RUNNING.has(latest.status);
  // The running build is followed whichever version is shown: its end reloads the page.
  const live = useLiveLog(running ? latest : null, reload);

  // When a build starts, its version is the one shown (its log live).
  useEffect(() => { if (running) setSelected(latest.id); }, [latest && latest.id, running]);

  if (error && !env) return h("main", null, h(ErrorText, { error }));
  if (!data) return h("main", null, h(Loading, { what: "the environment" }));
  if (!env) return h("main", null, h("p", { className: "notice notice-error", role: "alert" }, "No such environment, or you may not see it."));

  const mine = env.creator.username === me.username;
  const fail = (err) => setNotice({ kind: "error", text: err.message });
  async function build() {
    const version = (await gql(BUILD, { id })).buildEnvironment;
    setNotice({ kind: "ok", text: `Build of version ${version.number} queued.` });
    setSelected(version.id);
    reload();
  }
  async function cancel() {
    await gql(CANCEL, { v: latest.id });
    setNotice({ kind: "ok", text: `Build of version ${latest.number} cancelled.` });
    reload();
  }
  async function revert(number) {
    const version = (await gql(REVERT, { id, n: number })).revertEnvironment;
    setNotice({ kind: "ok", text: `Reverting: version ${version.number} will hold version ${number}'s packages.` });
    setSelected(version.id);
    reload();
  }
  async function activate() {
    const result = (await gql(ACTIVATE, { id })).activateEnvironment;
    setActivation(result);
    setNotice({ kind: "ok", text: `Activated version ${result.version.number}.` });
  }
  async function submit() {
    await gql(SUBMIT, { id });
    setNotice({ kind: "ok", text: "Submitted for publishing: an admin will review it." });
    reload();
  }
  const canActivate = Boolean(env.activeVersion) && !["SAVED", "IN_PROGRESS", "DEPRECATED"].includes(env.status);
  const canSubmit = mine && Boolean(env.activeVersion) && ["DRAFT", "FAILED"].includes(env.status);
  return h(
    "main",
    null,
    h("div", { className: "page-head" },
      h("h1", null, env.shortName, h("span", { className: "full-name" }, env.fullName)),
      h(Status, { status: env.status })),
    h(Notice, { notice, onClose: () => setNotice(null) }),
    h(ErrorText, { error }),
    env.reviewFeedback && env.status === "DRAFT"
      ? h("div", { className: "notice notice-warning", role: "note" }, h("strong", null, "Rejected by the reviewer: "), env.reviewFeedback)
      : null,
    h("dl", { className: "facts" },
      fact("Base", env.baseEnvironment ? env.baseEnvironment.name : `None (Python ${env.pythonVersion})`),
      fact("Creator", env.creator.username),
      fact("Created", when(env.createdAt)),
      fact("Updated", when(env.updatedAt)),
      env.publishedVersion ? fact("Published", `version ${env.publishedVersion.number}, ${when(env.publishedAt)}`) : null,
      env.activeVersion ? fact("Active version", String(env.activeVersion.number)) : null,
      env.usage.activations ? fact("Used", `${env.usage.activations} activation${env.usage.activations === 1 ? "" : "s"} by ${env.usage.users} ${env.usage.users === 1 ? "person" : "people"}, last ${when(env.usage.lastActivatedAt)}`) : null,
      env.description ? fact("Description", env.description) : null),
    h("div", { className: "toolbar", role: "toolbar", "aria-label": "Environment actions" },
      mine ? link(`#/environments/${id}/edit`, "Edit", { className: "button" }) : null,
      mine ? h(ActionButton, { label: "Build", busyLabel: "Queueing…", className: "primary", action: build, onError: fail, disabled: running || env.status === "PENDING_APPROVAL" }) : null,
      mine && running ? h(ActionButton, { label: "Cancel build", busyLabel: "Cancelling…", className: "danger", action: cancel, onError: fail }) : null,
      h(ActionButton, { label: "Activate", busyLabel: "Activating…", action: activate, onError: fail, disabled: !canActivate, title: canActivate ? undefined : "Activation needs a successful build, not while Saved or In Progress." }),
      mine ? h(ActionButton, { label: "Submit for Publish", busyLabel: "Submitting…", action: submit, onError: fail, disabled: !canSubmit }) : null),
    activation ? h("div", { className: "activation", role: "status" },
      h("p", null, `Version ${activation.version.number} is active.`),
      activation.pythonPath ? h("p", null, "Python: ", h("code", null, activation.pythonPath)) : null,
      activation.image ? h("p", null, "Image: ", h("code", null, activation.image)) : null) : null,
    h("section", { className: "libraries", "aria-labelledby": "requested" },
      h("h2", { id: "requested" }, "Requested libraries"),
      h(LibraryLists, { conda: env.condaLibraries, pip: env.pipLibraries })),
    versions.length
      ? h(Versions, { shortName: env.shortName, versions, current, live, onSelect: setSelected, onRevert: mine ? revert : null, onError: fail })
      : h("p", { className: "empty" }, "Not built yet: Build makes version 1."),
    h(Timeline, { events: env.events }),
  );
}

function fact(term, value) {
  return h(Fragment, { key: term }, h("dt", null, term), h("dd", null, value));
}

function LibraryLists({ conda, pip }) {
  const list = (items) => (items.length ? h("ul", { className: "chips" }, items.map((l) => h("li", { key: l }, h("code", null, l)))) : h("p", { className: "empty" }, "none"));
  return h("div", { className: "two-columns" },
    h("div", null, h("h3", null, "Conda"), list(conda)),
    h("div", null, h("h3", null, "Pip"), list(pip)));
}

function versionLabel(v) {
  const revert = v.revertedFrom ? `, revert to ${v.revertedFrom}` : "";
  return `Version ${v.number}: ${STATUS_LABELS[v.status]}${revert}`;
}

function Versions({ shortName, versions, current, live, onSelect, onRevert, onError }) {
  const [detail, error] = useLoad(() => gql(VERSION, { id: current.id }), [current.id, current.status]);
  const [against, setAgainst] = useState("");
  const [revertTo, setRevertTo] = useState("");
  useEffect(() => setAgainst(""), [current.id]); // a comparison is of the version shown
  const version = detail && detail.version;
  const succeeded = versions.filter((v) => v.status === "SUCCEEDED");
  return h(
    "section",
    { className: "versions", "aria-labelledby": "versions-title" },
    h("h2", { id: "versions-title" }, "Versions"),
    h("div", { className: "version-bar" },
      h(Field, { id: "version-select", label: "Version" },
        h("select", { id: "version-select", value: current.id, onChange: (e) => onSelect(e.target.value) },
          versions.map((v) => h("option", { key: v.id, value: v.id }, versionLabel(v))))),
      onRevert && succeeded.length > 1 ? h("div", { className: "inline-form" },
        h(Field, { id: "revert-select", label: "Revert to" },
          h("select", { id: "revert-select", value: revertTo, onChange: (e) => setRevertTo(e.target.value) },
            h("option", { value: "" }, "choose a version"),
            succeeded.map((v) => h("option", { key: v.id, value: String(v.number) }, `Version ${v.number}`)))),
        h(ActionButton, { label: "Revert", busyLabel: "Reverting…", disabled: !revertTo, action: () => onRevert(Number(revertTo)), onError })) : null),
    h("dl", { className: "facts" },
      fact("Status", h(Status, { status: current.status })),
      fact("Created", when(current.createdAt)),
      current.startedAt ? fact("Started", when(current.startedAt)) : null,
      current.finishedAt ? fact("Finished", when(current.finishedAt)) : null,
      current.status === "SUCCEEDED" ? fact("Size", current.archived ? "archived (a revert rebuilds it from its lock file)" : bytes(current.sizeBytes)) : null),
    h(ErrorText, { error }),
    // live while the page knows the build runs; once it knows it ended, the stored log (written
    // with the end), never a live one cut short
    h(BuildLog, { version: current, stored: version ? version.log : null, live: RUNNING.has(current.status) && live.versionId === current.id ? live : null }),
    version && version.status === "SUCCEEDED" ? h(Downloads, { shortName, version, onError }) : null,
    version ? h(Fragment, null,
      h("h3", null, `Libraries requested in version ${version.number}`),
      h(LibraryLists, { conda: version.condaLibraries, pip: version.pipLibraries }),
      h(Table, {
        caption: `Installed packages of version ${version.number}`,
        empty: current.status === "SUCCEEDED" ? "No packages." : "Installed packages appear once the build succeeds.",
        rows: version.packages.map((p) => ({ key: `${p.manager}:${p.name}`, ...p })),
        columns: [
          { key: "name", label: "Package", cell: (p) => p.name },
          { key: "version", label: "Version", cell: (p) => p.version },
          { key: "manager", label: "Manager", cell: (p) => p.manager.toLowerCase() },
        ],
      })) : null,
    succeeded.length > 1 && current.status === "SUCCEEDED" ? h("div", { className: "diff" },
      h(Field, { id: "diff-select", label: `Compare version ${current.number} with` },
        h("select", { id: "diff-select", value: against, onChange: (e) => setAgainst(e.target.value) },
          h("option", { value: "" }, "choose a version"),
          succeeded.filter((v) => v.id !== current.id).map((v) => h("option", { key: v.id, value: v.id }, `Version ${v.number}`)))),
      against && versions.some((v) => v.id === against) ? h(Diff, { from: against, to: current.id, fromNumber: versions.find((v) => v.id === against).number, toNumber: current.number }) : null) : null,
  );
}

const LOCKFILE = "query($id: ID!, $format: LockFormat!) { version(id: $id) { lockfile(format: $format) } }";
// What a version installed, as a file to recreate it: (format, file name ending, label).
const LOCK_FORMATS = [
  ["LOCK", ".lock", "Lock file"],
  ["REQUIREMENTS_TXT", "-requirements.txt", "requirements.txt"],
  ["ENVIRONMENT_YML", "-environment.yml", "environment.yml"],
];

function Downloads({ shortName, version, onError }) {
  async function download(format, ending) {
    const text = (await gql(LOCKFILE, { id: version.id, format })).version.lockfile;
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    const anchor = document.createElement("a");
    anchor.href = url;
    anchor.download = `${shortName}-v${version.number}${ending}`;
    document.body.appendChild(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
  return h("div", { className: "toolbar", role: "group", "aria-label": `Download version ${version.number}` },
    h("span", null, `Recreate version ${version.number} elsewhere:`),
    LOCK_FORMATS.map(([format, ending, label]) => h(ActionButton, { key: format, label, busyLabel: "Preparing…", action: () => download(format, ending), onError })));
}

export function Diff({ from, to, fromNumber, toNumber }) {
  const [data, error] = useLoad(() => gql(DIFF, { a: from, b: to }), [from, to]);
  if (error) return h(ErrorText, { error });
  if (!data) return h(Loading, { what: "the differences" });
  return h(ChangeTable, { changes: data.libraryDiff.changes, caption: `From version ${fromNumber} to version ${toNumber}`, empty: "The same packages at the same versions." });
}

export function ChangeTable({ changes, caption, empty }) {
  return h(Table, {
    caption, empty,
    rows: changes.map((c) => ({ key: `${c.manager}:${c.name}`, ...c })),
    columns: [
      { key: "name", label: "Package", cell: (c) => c.name },
      { key: "manager", label: "Manager", cell: (c) => c.manager.toLowerCase() },
      { key: "kind", label: "Change", cell: (c) => h("span", { className: `change change-${c.kind.toLowerCase()}` }, c.kind.toLowerCase()) },
      { key: "before", label: "Before", cell: (c) => c.before || "" },
      { key: "after", label: "After", cell: (c) => c.after || "" },
    ],
  });
}

// A running build's log, followed from its first line (however late the page joins) to its
// end. onChange is called when its first line comes (a queued build started), at its end,
// and when following failed (the page learns whether it still runs: if so, it is followed
// again 2 s later). A rebuild of a failed version has its id but a new creation time: a new
// build, followed anew.
function useLiveLog(version, onChange) {
  const [log, setLog] = useState({ versionId: null, lines: [], state: "idle" });
  const [retry, setRetry] = useState(0);
  const versionId = version ? version.id : null;
  const build = version ? `${version.id}@${version.createdAt}` : null;
  useEffect(() => {
    if (!versionId) return undefined;
    const seen = new Map(); // line number -> text: a replay after a reconnection repeats lines
    let pending = null;
    let failed = false;
    let again = null;
    const flush = () => {
      pending = null;
      const lines = [...seen.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
      setLog((l) => ({ ...l, versionId, lines }));
    };
    setLog({ versionId, lines: [], state: "connecting" });
    const stop = subscribe(LOG, { v: versionId }, {
      next: (data) => {
        if (!seen.size) onChange();
        seen.set(data.buildLog.number, data.buildLog.text);
        if (!pending) pending = requestAnimationFrame(flush);
        setLog((l) => (l.state === "live" ? l : { ...l, state: "live" }));
      },
      status: (status) => setLog((l) => ({ ...l, state: status === "live" ? (seen.size ? "live" : "connecting") : "reconnecting" })),
      error: (err) => {
        failed = true;
        setLog((l) => ({ ...l, state: "error", error: err.message }));
        onChange();
        again = setTimeout(() => setRetry((r) => r + 1), 2000);
      },
      complete: () => {
        if (pending) cancelAnimationFrame(pending);
        flush();
        if (failed) return; // not the build's end: the stream's
        setLog((l) => ({ ...l, state: "ended" }));
        onChange();
      },
    });
    return () => {
      stop();
      clearTimeout(again);
      if (pending) cancelAnimationFrame(pending);
    };
  }, [build, retry]);
  return log;
}

// A version's build log: the live one while its build runs (kept at the tail unless the
// reader scrolled up), else as stored.
function BuildLog({ version, stored, live }) {
  const box = useRef(null);
  const follow = useRef(true);
  useEffect(() => {
    if (box.current && follow.current) box.current.scrollTop = box.current.scrollHeight;
  });
  const lines = live ? live.lines : stored === null ? [] : stored.split("\n");
  let label = "Build log";
  if (live) {
    label = {
      connecting: version.status === "QUEUED" ? "Queued: waiting for a builder…" : "Connecting to the build log…",
      live: "Building: following the log live",
      reconnecting: "Connection lost: reconnecting…",
      ended: "Build ended",
      error: `Log unavailable (${live.error})`,
    }[live.state] || label;
  } else if (stored === null) {
    label = "Loading the build log…";
  }
  const following = live && !["ended", "error"].includes(live.state);
  return h(
    "div",
    { className: "log-panel" },
    h("div", { className: "log-head" },
      following ? h("span", { className: "spinner", "aria-hidden": true }) : null,
      h("h3", { id: "log-title", "aria-live": "polite" }, label), // its state, announced
      h("span", { className: "log-count" }, `${lines.length} lines`)),
    h("pre", {
      className: "log", ref: box, tabIndex: 0, "aria-labelledby": "log-title",
      onScroll: (e) => { const el = e.target; follow.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 4; },
    }, lines.join("\n")),
  );
}

const EVENT_TEXT = {
  CREATED: "created it", UPDATED: "changed it", BUILD_QUEUED: "queued a build", BUILD_SUCCEEDED: "build succeeded",
  BUILD_FAILED: "build failed", BUILD_CANCELLED: "cancelled a build", REVERTED: "reverted", SUBMITTED: "submitted it for publishing",
  APPROVED: "approved it", REJECTED: "rejected it", DEPRECATED: "deprecated it", ACTIVATED: "activated it",
  ARCHIVED: "archived a version", RESTORED: "restored a version",
};

export function eventText(e) {
  const who = e.actor ? e.actor.username : "envyard";
  const version = e.versionNumber ? ` (version ${e.versionNumber})` : "";
  return `${who} ${EVENT_TEXT[e.kind] || e.kind.toLowerCase()}${version}${e.note ? `: ${e.note}` : ""}`;
}

function Timeline({ events }) {
  return h("section", { className: "timeline", "aria-labelledby": "timeline-title" },
    h("h2", { id: "timeline-title" }, "History"),
    events.length ? h("ol", null, [...events].reverse().map((e) => h("li", { key: e.id },
      h("time", { dateTime: e.at }, when(e.at)), " ", eventText(e)))) : h("p", { className: "empty" }, "Nothing yet."));
}

// -- events of the organization --------------------------------------------------------------------

const EVENTS = "query { events(first: 100) { id at kind versionNumber note actor { username } environment { id shortName } } }";
const EVENTS_LIVE = "subscription { environmentEvents { id at kind versionNumber note actor { username } environment { id shortName } } }";

export function EventsPage() {
  const [data, error, reload] = useLoad(() => gql(EVENTS), []);
  const [fresh, setFresh] = useState([]);
  const [paused, setPaused] = useState(null);
  useEffect(() => subscribe(EVENTS_LIVE, {}, {
    next: (d) => setFresh((f) => [d.environmentEvents, ...f]),
    status: (status) => {
      if (status === "reconnecting") setPaused("Live updates paused: the connection dropped; reconnecting…");
      else { setPaused(null); setFresh([]); reload(); } // what happened meanwhile
    },
    error: (err) => setPaused(`Live updates stopped (${err.message}); reload the page.`),
    complete: () => {},
  }), []);
  const seen = new Set();
  const all = [...fresh, ...((data && data.events) || [])].filter((e) => !seen.has(e.id) && seen.add(e.id));
  return h("main", null,
    h("h1", null, "Events"),
    h("p", null, "What happened to the environments you can see, newest first; new events appear as they happen."),
    paused ? h("p", { className: "notice notice-warning", role: "status" }, paused) : null,
    h(ErrorText, { error }),
    !data ? h(Loading, { what: "events" }) : h("ol", { className: "timeline" }, all.map((e) => h("li", { key: e.id },
      h("time", { dateTime: e.at }, when(e.at)), " ", link(`#/environments/${e.environment.id}`, e.environment.shortName), ": ", eventText(e)))));
}
