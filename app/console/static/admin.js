// Admin -> Python Environments: the review queue, a review (details, installed packages, the
// comparison with published environments, policy violations, Approve / Reject with feedback),
// and the deprecation candidates.

import { gql } from "./api.js";
import { ChangeTable, eventText } from "./pages.js";
import {
  ActionButton, ErrorText, Field, Fragment, Loading, Notice, Status, Table,
  describedBy, h, link, useLoad, useState, when,
} from "./ui.js";

const QUEUE = `query($first: Int, $after: ID) { pendingEnvironments(first: $first, after: $after) {
  id shortName fullName pythonVersion submittedAt creator { username } submittedVersion { number packages { name } policyViolations { name } }
} }`;
const PAGE = 50;

export function ReviewQueue() {
  const [cursors, setCursors] = useState([null]);
  const after = cursors[cursors.length - 1];
  const [data, error] = useLoad(() => gql(QUEUE, { first: PAGE + 1, after }), [after]);
  const rows = data ? data.pendingEnvironments.slice(0, PAGE) : [];
  const more = data && data.pendingEnvironments.length > PAGE;
  return h("main", null,
    h("h1", null, "Admin → Python Environments"),
    h("p", null, "Environments waiting for review, oldest submission first."),
    h(ErrorText, { error }),
    !data ? (error ? null : h(Loading, { what: "the review queue" })) : h(Fragment, null,
      h(Table, {
        caption: "Pending approval",
        empty: "Nothing waits for review.",
        rows: rows.map((e) => ({ key: e.id, ...e })),
        columns: [
          { key: "short", label: "Short name", cell: (e) => link(`#/admin/review/${e.id}`, e.shortName) },
          { key: "full", label: "Full name", cell: (e) => e.fullName },
          { key: "creator", label: "Creator", cell: (e) => e.creator.username },
          { key: "version", label: "Version", cell: (e) => (e.submittedVersion ? String(e.submittedVersion.number) : "") },
          { key: "packages", label: "Packages", cell: (e) => (e.submittedVersion ? String(e.submittedVersion.packages.length) : "") },
          { key: "policy", label: "Policy", cell: (e) => (e.submittedVersion && e.submittedVersion.policyViolations.length ? h("span", { className: "change change-removed" }, `${e.submittedVersion.policyViolations.length} violation(s)`) : "ok") },
          { key: "submitted", label: "Submitted", cell: (e) => when(e.submittedAt) },
        ],
      }),
      h("nav", { className: "pager", "aria-label": "Pages" },
        h("button", { type: "button", className: "button", disabled: cursors.length === 1, onClick: () => setCursors(cursors.slice(0, -1)) }, "Previous page"),
        h("button", { type: "button", className: "button", disabled: !more, onClick: () => setCursors([...cursors, rows[rows.length - 1].id]) }, "Next page"))));
}

const REVIEW = `query($id: ID!) { environment(id: $id) {
  id shortName fullName description pythonVersion baseEnvironment { name } condaLibraries pipLibraries status
  reviewFeedback submittedAt creator { username } publishedVersion { number }
  submittedVersion { id number packages { name version manager } policyViolations { name manager version rule } }
  events { id at kind versionNumber note actor { username } }
} }`;
const COMPARE = `query($v: ID!) { compareWithPublished(versionId: $v, first: 20) {
  similarity sameVersions environment { id shortName fullName } version { number }
  changes { name manager kind before after }
} }`;
const APPROVE = "mutation($id: ID!, $ack: Boolean!) { approveEnvironment(id: $id, acknowledgeViolations: $ack) { id status } }";
const REJECT = "mutation($id: ID!, $feedback: String!) { rejectEnvironment(id: $id, feedback: $feedback) { id status } }";

export function ReviewPage({ id, navigate }) {
  const [data, error, reload] = useLoad(() => gql(REVIEW, { id }), [id]);
  const [feedback, setFeedback] = useState("");
  const [ack, setAck] = useState(false);
  const [fieldError, setFieldError] = useState(null);
  const [notice, setNotice] = useState(null);
  const env = data && data.environment;
  if (error && !env) return h("main", null, h(ErrorText, { error }));
  if (!data) return h("main", null, h(Loading, { what: "the review" }));
  if (!env) return h("main", null, h("p", { className: "notice notice-error", role: "alert" }, "No such environment, or it is not yours to review."));
  const version = env.submittedVersion;
  const violations = version ? version.policyViolations : [];
  const pending = env.status === "PENDING_APPROVAL";
  const fail = (err) => {
    setFieldError(err.fields && err.fields.feedback ? err.fields.feedback : null);
    setNotice({ kind: "error", text: err.message });
  };
  async function approve() {
    await gql(APPROVE, { id, ack });
    navigate("#/admin", { kind: "ok", text: `${env.shortName} is published.` });
  }
  async function reject() {
    if (!feedback.trim()) {
      setFieldError("Say what the creator should change.");
      return;
    }
    await gql(REJECT, { id, feedback: feedback.trim() });
    navigate("#/admin", { kind: "ok", text: `${env.shortName} went back to its creator with your feedback.` });
  }
  return h("main", null,
    h("div", { className: "page-head" },
      h("h1", null, `Review ${env.shortName}`, h("span", { className: "full-name" }, env.fullName)),
      h(Status, { status: env.status })),
    h(Notice, { notice, onClose: () => setNotice(null) }),
    h("dl", { className: "facts" },
      h("dt", null, "Base"), h("dd", null, env.baseEnvironment ? env.baseEnvironment.name : `None (Python ${env.pythonVersion})`),
      h("dt", null, "Creator"), h("dd", null, env.creator.username),
      h("dt", null, "Submitted"), h("dd", null, `${version ? `version ${version.number}, ` : ""}${when(env.submittedAt)}`),
      env.publishedVersion ? h(Fragment, null, h("dt", null, "Published now"), h("dd", null, `version ${env.publishedVersion.number}`)) : null,
      h("dt", null, "Description"), h("dd", null, env.description || "none given"),
      h("dt", null, "Requested"), h("dd", null, [...env.condaLibraries.map((l) => `conda ${l}`), ...env.pipLibraries.map((l) => `pip ${l}`)].join(", ") || "nothing")),
    violations.length ? h("section", { className: "notice notice-warning", "aria-labelledby": "violations-title" },
      h("h2", { id: "violations-title" }, `Policy violations (${violations.length})`),
      h("ul", null, violations.map((v) => h("li", { key: `${v.manager}:${v.name}` }, `${v.manager.toLowerCase()} ${v.name} ${v.version} matches the blocked rule `, h("code", null, v.rule))))) : null,
    version ? h(Table, {
      caption: `Installed libraries and versions (version ${version.number})`,
      empty: "No packages.",
      rows: version.packages.map((p) => ({ key: `${p.manager}:${p.name}`, ...p })),
      columns: [
        { key: "name", label: "Package", cell: (p) => p.name },
        { key: "version", label: "Version", cell: (p) => p.version },
        { key: "manager", label: "Manager", cell: (p) => p.manager.toLowerCase() },
      ],
    }) : null,
    version ? h(Comparison, { versionId: version.id }) : null,
    pending ? h("section", { className: "decision", "aria-labelledby": "decision-title" },
      h("h2", { id: "decision-title" }, "Decision"),
      violations.length ? h("label", { className: "checkbox" },
        h("input", { type: "checkbox", checked: ack, onChange: (e) => setAck(e.target.checked) }),
        " I have read the policy violations and approve anyway") : null,
      h(Field, { id: "feedback", label: "Feedback for the creator (needed to reject)", error: fieldError },
        h("textarea", { id: "feedback", rows: 3, value: feedback, onChange: (e) => setFeedback(e.target.value), "aria-invalid": Boolean(fieldError), "aria-describedby": describedBy("feedback", false, fieldError) })),
      h("div", { className: "actions" },
        h(ActionButton, { label: "Approve", busyLabel: "Approving…", className: "primary", action: approve, onError: fail, disabled: violations.length > 0 && !ack }),
        h(ActionButton, { label: "Reject", busyLabel: "Rejecting…", className: "danger", action: reject, onError: fail }))) : h("p", { className: "empty" }, "It is not waiting for review."),
    h("section", { className: "timeline", "aria-labelledby": "history-title" },
      h("h2", { id: "history-title" }, "History"),
      h("ol", null, [...env.events].reverse().map((e) => h("li", { key: e.id }, h("time", { dateTime: e.at }, when(e.at)), " ", eventText(e))))),
    h("button", { type: "button", className: "link-button", onClick: reload }, "Reload"));
}

function Comparison({ versionId }) {
  const [data, error] = useLoad(() => gql(COMPARE, { v: versionId }), [versionId]);
  const [open, setOpen] = useState(null);
  if (error) return h(ErrorText, { error });
  if (!data) return h(Loading, { what: "the comparison with published environments" });
  const rows = data.compareWithPublished;
  return h("section", { className: "comparison", "aria-labelledby": "compare-title" },
    h("h2", { id: "compare-title" }, "Compared with published environments"),
    rows.length ? h(Table, {
      caption: "Most similar first",
      empty: "",
      rows: rows.map((c) => ({ key: c.environment.id, ...c })),
      columns: [
        { key: "env", label: "Published environment", cell: (c) => link(`#/environments/${c.environment.id}`, `${c.environment.shortName} (${c.environment.fullName})`) },
        { key: "version", label: "Version", cell: (c) => String(c.version.number) },
        { key: "similarity", label: "Similarity", cell: (c) => `${Math.round(c.similarity * 100)}%` },
        { key: "same", label: "Same versions", cell: (c) => String(c.sameVersions) },
        { key: "changes", label: "Differences", cell: (c) => h("button", { type: "button", className: "link-button", "aria-expanded": open === c.environment.id, onClick: () => setOpen(open === c.environment.id ? null : c.environment.id) }, `${c.changes.length} change(s)`) },
      ],
    }) : h("p", { className: "empty" }, "No published environment to compare with."),
    open ? h(ChangeTable, {
      changes: rows.find((c) => c.environment.id === open).changes,
      caption: `From ${rows.find((c) => c.environment.id === open).environment.shortName} to this version`,
      empty: "The same packages at the same versions.",
    }) : null);
}

const CANDIDATES = "query($days: Int!) { deprecationCandidates(unusedForDays: $days) { id shortName fullName publishedAt usage { activations users lastActivatedAt } } }";
const DEPRECATE = "mutation($id: ID!) { deprecateEnvironment(id: $id) { id status } }";

export function DeprecationPage() {
  const [days, setDays] = useState(90);
  const [data, error, reload] = useLoad(() => gql(CANDIDATES, { days }), [days]);
  const [notice, setNotice] = useState(null);
  return h("main", null,
    h("h1", null, "Deprecation candidates"),
    h("p", null, "Published environments nobody activated for a while."),
    h(Notice, { notice, onClose: () => setNotice(null) }),
    h("form", { className: "filters", onSubmit: (e) => e.preventDefault() },
      h(Field, { id: "days", label: "Unused for at least (days)" },
        h("input", { id: "days", type: "number", min: 0, max: 3650, value: days, onChange: (e) => setDays(Number(e.target.value) || 0) }))),
    h(ErrorText, { error }),
    !data ? h(Loading, { what: "candidates" }) : h(Table, {
      caption: `Unused for ${days} days or more`,
      empty: "Every published environment was used in that time.",
      rows: data.deprecationCandidates.map((e) => ({ key: e.id, ...e })),
      columns: [
        { key: "short", label: "Short name", cell: (e) => link(`#/environments/${e.id}`, e.shortName) },
        { key: "full", label: "Full name", cell: (e) => e.fullName },
        { key: "published", label: "Published", cell: (e) => when(e.publishedAt) },
        { key: "last", label: "Last activated", cell: (e) => (e.usage.lastActivatedAt ? when(e.usage.lastActivatedAt) : "never") },
        { key: "users", label: "Users", cell: (e) => String(e.usage.users) },
        {
          key: "action", label: "Action", cell: (e) => h(ActionButton, {
            label: "Deprecate", busyLabel: "Deprecating…", className: "danger",
            action: async () => { await gql(DEPRECATE, { id: e.id }); setNotice({ kind: "ok", text: `${e.shortName} is deprecated.` }); reload(); },
            onError: (err) => setNotice({ kind: "error", text: err.message }),
          }),
        },
      ],
    }));
}

const POLICY = "{ policy { blockedPackages updatedAt } }";
const SET_POLICY = "mutation($input: PolicyInput!) { setPolicy(input: $input) { blockedPackages updatedAt } }";

export function PolicyPage() {
  const [data, error] = useLoad(() => gql(POLICY), []);
  const [saved, setSaved] = useState(null); // the policy as last saved here
  const [text, setText] = useState(null);
  const [fieldError, setFieldError] = useState(null);
  const [notice, setNotice] = useState(null);
  if (error && !data) return h("main", null, h(ErrorText, { error }));
  if (!data) return h("main", null, h(Loading, { what: "the package policy" }));
  const policy = saved || data.policy;
  const value = text === null ? policy.blockedPackages.join("\n") : text;
  async function save() {
    setFieldError(null);
    const rules = value.split("\n").map((l) => l.trim()).filter(Boolean);
    try {
      const now = (await gql(SET_POLICY, { input: { blockedPackages: rules } })).setPolicy;
      setSaved(now);
      setText(now.blockedPackages.join("\n"));
      setNotice({ kind: "ok", text: `Saved: ${now.blockedPackages.length} blocked package rule(s).` });
    } catch (err) {
      setFieldError((err.fields && err.fields.blockedPackages) || null);
      setNotice({ kind: "error", text: err.message });
    }
  }
  return h("main", null,
    h("h1", null, "Package policy"),
    h("p", null, "Packages your organization does not publish. A review shows every installed package that matches a rule; approving it then needs an explicit acknowledgement."),
    h(Notice, { notice, onClose: () => setNotice(null) }),
    h("form", { className: "env-form", onSubmit: (e) => e.preventDefault() },
      h(Field, { id: "blockedPackages", label: "Blocked packages", help: "One rule per line: a package name (every version), or a name with a version specifier such as requests<2.31.", error: fieldError },
        h("textarea", { id: "blockedPackages", rows: 8, spellCheck: false, value, onChange: (e) => setText(e.target.value), "aria-invalid": Boolean(fieldError), "aria-describedby": describedBy("blockedPackages", true, fieldError) })),
      policy.updatedAt ? h("p", { className: "help" }, `Last changed ${when(policy.updatedAt)}.`) : null,
      h("div", { className: "actions" }, h(ActionButton, { label: "Save policy", busyLabel: "Saving…", className: "primary", action: save }))));
}
