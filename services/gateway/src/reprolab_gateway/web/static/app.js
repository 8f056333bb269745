// Reprolab portal: one small script, no framework, no build step. Each page is a server-rendered
// shell (body[data-page]); this fills it from the REST API (/api/v1) with the session cookie, so the
// portal has exactly the API's permissions. Changes send the X-Reprolab-CSRF header (double submit).
"use strict";

const API = "/api/v1";
const MANAGERS = ["admin", "instructor"];
const TERMINAL_RUN = ["succeeded", "failed", "cancelled", "timed_out"];
const TERMINAL_BUILD = ["succeeded", "failed"];

// Curated data-science packages for the editor; anything else goes in the free-text boxes.
const PY_PACKAGES = [
  ["numpy", "arrays"], ["pandas", "data frames"], ["scipy", "scientific computing"],
  ["scikit-learn", "machine learning"], ["matplotlib", "plotting"], ["seaborn", "statistical plots"],
  ["statsmodels", "statistics"], ["plotly", "interactive plots"], ["pyarrow", "Arrow/Parquet"],
  ["polars", "fast data frames"], ["xgboost", "gradient boosting"], ["lightgbm", "gradient boosting"],
  ["sympy", "symbolic maths"], ["networkx", "graphs"], ["nltk", "text"], ["requests", "HTTP"],
  ["beautifulsoup4", "HTML parsing"], ["openpyxl", "Excel files"], ["sqlalchemy", "SQL"],
  ["jupyterlab", "notebooks"], ["ipykernel", "notebook kernel"], ["tqdm", "progress bars"],
  ["joblib", "parallel jobs"], ["six", "py2/3 helpers"],
];
const R_PACKAGES = [
  ["ggplot2", "plotting"], ["dplyr", "data wrangling"], ["tidyr", "tidy data"], ["readr", "reading files"],
  ["data.table", "fast tables"], ["stringr", "strings"], ["lubridate", "dates"], ["caret", "machine learning"],
  ["randomForest", "random forests"], ["glmnet", "regularised models"], ["knitr", "reports"],
  ["rmarkdown", "R Markdown"], ["jsonlite", "JSON"], ["zoo", "time series"],
];

// --- helpers -------------------------------------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const body = document.body;
const WS = body.dataset.ws;

function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, { json, data, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (method !== "GET") init.headers["X-Reprolab-CSRF"] = cookie("reprolab_csrf");
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (data !== undefined) {
    init.body = data;
  }
  const res = await fetch(API + path, init);
  if (res.status === 401) {
    location.href = "/?next=" + encodeURIComponent(location.pathname);
    throw new ApiError(401, { detail: "signed out" });
  }
  const type = res.headers.get("content-type") || "";
  if (!res.ok) {
    const problem = type.includes("json") ? await res.json() : { detail: await res.text() };
    throw new ApiError(res.status, problem);
  }
  if (res.status === 204) return null;
  return type.includes("json") ? res.json() : res.text();
}

// el("a", {href: "/x", class: "y"}, "text", child) – text is always text, never HTML.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fill(tbody, rows, empty) {
  const table = typeof tbody === "string" ? $(tbody + " tbody") : tbody;
  const cols = table.closest("table").querySelectorAll("thead th").length;
  table.replaceChildren();
  if (!rows.length) {
    table.append(el("tr", {}, el("td", { colspan: cols }, empty)));
    return;
  }
  for (const cells of rows) table.append(el("tr", {}, cells.map((c) => el("td", {}, c))));
}

function flash(message, error = false) {
  const box = $("#flash");
  box.textContent = message;
  box.className = error ? "flash error" : "flash";
  box.setAttribute("role", error ? "alert" : "status");
  box.hidden = false;
}

// Run an async action from a form or button: disable it meanwhile and show what went wrong.
async function busy(control, action) {
  control.disabled = true;
  try {
    return await action();
  } catch (err) {
    flash(err.message, true);
    if (!(err instanceof ApiError)) console.error(err);
    return undefined;
  } finally {
    control.disabled = false;
  }
}

function onSubmit(form, action) {
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form.querySelector("button[type=submit]") || form, () => action(new FormData(form), form));
  });
}

const badge = (status) => el("span", { class: "badge " + status }, status);
const short = (digest) => (digest ? digest.replace("sha256:", "").slice(0, 12) : "");
const when = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", "").replace("Z", "") : "");

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

// A command line into argv: whitespace separates, single or double quotes group.
function splitCommand(text) {
  const out = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m;
  while ((m = re.exec(text))) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

// The registry serves only people who sign in: their username and an API token as the password.
function pullCommand(version, engine = "podman") {
  const repo = version.image_ref.slice(0, version.image_ref.lastIndexOf(":"));
  const host = repo.slice(0, repo.indexOf("/"));
  const tls = engine === "podman" ? " --tls-verify=false" : "";
  return `${engine} login${tls} ${host} -u ${body.dataset.user || "<username>"}\n` +
    `${engine} pull${tls} ${repo}@${version.image_digest}`;
}

// Server-Sent Events into a <pre role=log>; resolves with the final status from the "end" event.
function followLog(url, pre, onLine) {
  return new Promise((resolve) => {
    pre.textContent = "";
    if (pre.logSource) pre.logSource.close();  // one log at a time in a <pre>: showing another stops the last
    const source = new EventSource(url, { withCredentials: true });
    pre.logSource = source;
    source.onmessage = (event) => {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(event.data + "\n");
      if (atBottom) pre.scrollTop = pre.scrollHeight;
      if (onLine) onLine(event.data);
    };
    source.addEventListener("end", (event) => {
      source.close();
      resolve(event.data);
    });
    source.onerror = () => {
      // the stream ended without an end event (gateway restart, access lost): stop reconnecting
      if (source.readyState === EventSource.CLOSED || source.readyState === EventSource.CONNECTING) {
        source.close();
        resolve("");
      }
    };
  });
}

async function workspaceRole() {
  const ws = await api("GET", `/workspaces/${WS}`);
  const manager = MANAGERS.includes(ws.caller_role);
  $$("[data-manager]").forEach((node) => { node.hidden = !manager; });
  return { ws, manager };
}

// Upload with progress (fetch cannot report upload progress; XMLHttpRequest can).
function upload(url, file, progress, text) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", API + url);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-Reprolab-CSRF", cookie("reprolab_csrf"));
    xhr.upload.onprogress = (event) => {
      if (!event.lengthComputable) return;
      const pct = Math.round((100 * event.loaded) / event.total);
      progress.value = pct;
      text.textContent = `${pct}% (${bytes(event.loaded)} of ${bytes(event.total)})`;
    };
    xhr.onload = () => {
      let doc = {};
      try { doc = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        progress.value = 100;
        resolve(doc);
      } else {
        reject(new ApiError(xhr.status, doc));
      }
    };
    xhr.onerror = () => reject(new Error("the upload was interrupted (network error)"));
    xhr.send(file);
  });
}

const uploadCode = (file) => api("POST", `/workspaces/${WS}/code`, {
  data: file, headers: { "Content-Type": "application/octet-stream" } });

// --- pages -----------------------------------------------------------------------------------------

const pages = {};

pages.dashboard = async () => {
  const list = await api("GET", "/workspaces");
  fill("#workspaces", list.items.map((w) => [
    el("a", { href: `/w/${w.slug}` }, w.slug), w.title, w.caller_role || "—"]), "No workspaces yet: create one below.");
  onSubmit($("#create-workspace"), async (data) => {
    const made = await api("POST", "/workspaces", { json: { slug: data.get("slug"), title: data.get("title") } });
    location.href = `/w/${made.slug}`;
  });
};

// The workspace page's tables that change after an upload or a new member (drawn at load and after each).
const showDatasets = (datasets) => fill("#datasets", datasets.items.map((d) => [d.name, bytes(d.size), d.visibility,
  el("span", { class: "digest", title: d.digest }, short(d.digest)), deleteDatasetButton(d)]), "No datasets.");

// Managers delete a dataset no version uses (the API answers 409 naming the versions that do).
function deleteDatasetButton(d) {
  if ($("#upload-dataset").hidden) return "—";
  const button = el("button", { type: "button", class: "secondary", "aria-label": `Delete dataset ${d.name}` }, "Delete");
  button.addEventListener("click", () => busy(button, async () => {
    if (!confirm(`Delete dataset ${d.name}? Its bytes are removed; the activity log keeps its history.`)) return;
    await api("DELETE", `/workspaces/${WS}/datasets/${d.digest}`);
    flash(`Dataset ${d.name} deleted.`);
    await pages.workspaceRefresh();
  }));
  return button;
}
const showMembers = (members) => fill("#members", members.items.map((m) => [m.username, m.role, when(m.added_at)]),
  "No members.");
const showLabelChoices = (datasets) => $("#a-labels").replaceChildren(...datasets.items
  .filter((d) => d.visibility === "hidden").map((d) => el("option", { value: d.digest }, d.name)));

function showEnvironments(all, manager) {
  // one request for both: the archived ones go under their own heading, out of the table
  const envs = { items: all.items.filter((e) => !e.archived_at) };
  const archived = all.items.filter((e) => e.archived_at);
  $("#archived-envs").hidden = !archived.length;
  $("#archived-count").textContent = String(archived.length);
  $("#archived-list").replaceChildren(...archived.map((e) => el("li", {},
    el("a", { href: `/w/${WS}/env/${e.name}` }, e.name), ` (${e.kind === "personal" ? `${e.owner}'s fork` : "course"}, archived ${when(e.archived_at)})`)));
  fill("#environments", envs.items.map((e) => [
    el("a", { href: `/w/${WS}/env/${e.name}` }, e.name), e.kind, e.owner, `v${e.latest_version}`,
    e.latest && e.latest.image_digest ? badge("built") : el("span", { class: "hint" }, "not built")]),
  manager ? "No environments yet: create one." : "No environments yet.");
}

pages.workspace = async () => {
  const { ws, manager } = await workspaceRole();
  $("#ws-title").textContent = `${ws.title} (${ws.slug})`;
  $("#ws-role").textContent = ws.caller_role ? `you: ${ws.caller_role}` : "";
  const gone = new URLSearchParams(location.search).get("deleted");
  if (gone) flash(`Environment ${gone} deleted.`);
  const [envs, datasets, assignments] = await Promise.all([
    api("GET", `/workspaces/${WS}/environments?archived=true`), api("GET", `/workspaces/${WS}/datasets`),
    api("GET", `/workspaces/${WS}/assignments`)]);
  showEnvironments(envs, manager);
  showDatasets(datasets);
  await showQuotas(manager);
  fill("#assignments", assignments.items.map((a) => [
    el("a", { href: `/w/${WS}/assignments/${a.name}` }, a.title || a.name), `${a.environment} v${a.version}`,
    el("code", {}, a.predictions), `${a.metric} (${a.higher_is_better ? "higher" : "lower"} is better)`]),
  "No assignments.");
  if (!manager) return;
  const members = await api("GET", `/workspaces/${WS}/members`);
  showMembers(members);

  const envSelect = $("#a-env");
  envSelect.replaceChildren(...envs.items.filter((e) => e.kind === "workspace" && !e.archived_at)
    .map((e) => el("option", { value: e.name }, `${e.name} (v${e.latest_version})`)));
  showLabelChoices(datasets);

  const fileInput = $("#ds-file");
  fileInput.addEventListener("change", () => {
    if (fileInput.files[0] && !$("#ds-name").value) $("#ds-name").value = fileInput.files[0].name;
  });
  onSubmit($("#upload-dataset"), async (data, form) => {
    const file = fileInput.files[0];
    const name = data.get("name") || file.name;
    const query = new URLSearchParams({ name, visibility: data.get("visibility") });
    const made = await upload(`/workspaces/${WS}/datasets?${query}`, file, $("#ds-progress"), $("#ds-progress-text"));
    $("#ds-progress-text").textContent = `Uploaded ${made.name}: ${bytes(made.size)}, ${made.digest}`;
    flash(`Dataset ${made.name} uploaded.`);
    form.reset();
    await pages.workspaceRefresh();
  });
  onSubmit($("#import-env"), async (data, form) => {
    const query = new URLSearchParams({ name: data.get("name") });
    const made = await upload(`/workspaces/${WS}/environments/import?${query}`, $("#imp-file").files[0],
      $("#imp-progress"), $("#imp-progress-text"));
    const d = made.detected;
    const result = $("#imp-result");
    result.replaceChildren(
      el("p", {}, "Imported ", el("a", { href: `/w/${WS}/env/${made.environment.name}` }, made.environment.name),
        ` (${d.buildpack} pack, ${d.binder_dir ? d.binder_dir + "/ folder" : "repository root"}); read: `
        + (d.files.join(", ") || "no configuration file")),
      ...d.notes.map((n) => el("p", { class: "note" }, `Note: ${n}`)),
      ...(d.bit_reproducible ? [] : [el("p", { class: "note" },
        "Build steps run arbitrary commands: the image is not guaranteed bit-reproducible.")]));
    flash(`Environment ${made.environment.name} imported.`);
    form.reset();
    showEnvironments(await api("GET", `/workspaces/${WS}/environments?archived=true`), true);
    await pages.workspaceRefresh();
  });
  onSubmit($("#add-member"), async (data, form) => {
    const m = await api("POST", `/workspaces/${WS}/members`, { json: { username: data.get("username"), role: data.get("role") } });
    flash(`${m.username} added as ${m.role}.`);
    form.reset();
    await pages.workspaceRefresh();
  });
  onSubmit($("#make-invite"), async (data) => {
    const made = await api("POST", `/workspaces/${WS}/invites`, { json: { role: data.get("role"),
      expires_in_days: Number(data.get("days")), max_uses: Number(data.get("uses")) } });
    $("#invite-link-value").textContent = made.url;
    $("#invite-link").hidden = false;
    flash(`Invite link made: ${made.role}, up to ${made.max_uses} people, until ${when(made.expires_at)}.`);
  });
  onSubmit($("#create-assignment"), async (data) => {
    const code = await uploadCode($("#a-code").files[0]);
    const made = await api("POST", `/workspaces/${WS}/assignments`, { json: {
      name: data.get("name"), title: data.get("title") || "", environment: data.get("environment"),
      evaluation_code: code.digest, labels: data.get("labels"), predictions: data.get("predictions"),
      metric: data.get("metric"), higher_is_better: $("#a-higher").checked, command: splitCommand(data.get("command")),
    } });
    location.href = `/w/${WS}/assignments/${made.name}`;
  });
};

pages.workspaceRefresh = async () => {
  const [datasets, members] = await Promise.all([api("GET", `/workspaces/${WS}/datasets`),
    api("GET", `/workspaces/${WS}/members`)]);
  showDatasets(datasets);
  showMembers(members);
  showLabelChoices(datasets);
};

// --- workspace quotas (issue 17): usage against limits in words; instructors change them ----------------

const GIB = 1024 ** 3;

function quotaLines(q) {
  const { limits: l, usage: u } = q;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const going = `${plural(u.runs, "run", "runs")}, ${plural(u.sessions, "session", "sessions")}, `
    + `${plural(u.model_servers, "model server", "model servers")}`;
  return [
    l.max_concurrent_runs
      ? `At most ${l.max_concurrent_runs} runs, sessions and model servers at once: ${u.concurrent} going now (${going}).`
      : `No limit on runs at once: ${u.concurrent} going now (${going}).`,
    l.max_concurrent_runs_per_member
      ? `Each member may have ${l.max_concurrent_runs_per_member} runs and sessions going at once; you have ${u.yours}.`
      : `No limit per member; you have ${u.yours} going.`,
    l.max_storage_bytes
      ? `Storage: ${bytes(u.storage_bytes)} used of ${bytes(l.max_storage_bytes)} (datasets ${bytes(u.dataset_bytes)}, `
        + `run outputs ${bytes(u.output_bytes)}).`
      : `No storage limit: ${bytes(u.storage_bytes)} kept (datasets ${bytes(u.dataset_bytes)}, run outputs `
        + `${bytes(u.output_bytes)}).`,
  ];
}

async function showQuotas(manager) {
  const url = `/workspaces/${WS}/quotas`;
  const show = (q) => {
    $("#quota-text").replaceChildren(...quotaLines(q).map((line) => el("li", {}, line)));
    // a meter only against a limit: with none, a full bar would read as "full"
    const meter = $("#quota-storage-meter");
    meter.closest(".progress-row").hidden = !q.limits.max_storage_bytes;
    meter.max = q.limits.max_storage_bytes || 1;
    meter.value = Math.min(q.usage.storage_bytes, meter.max);
    meter.title = q.counted;
    if (!manager) return;
    $("#q-runs").value = q.limits.max_concurrent_runs;
    $("#q-member").value = q.limits.max_concurrent_runs_per_member;
    $("#q-storage").value = Number((q.limits.max_storage_bytes / GIB).toFixed(3));
  };
  try {
    show(await api("GET", url));
  } catch (err) {
    $("#quota-text").replaceChildren(el("li", {}, `Could not load the quotas: ${err.message}`));
    return;
  }
  if (!manager) return;
  onSubmit($("#quota-form"), async (data) => {
    const json = { max_concurrent_runs: Number(data.get("runs")), max_concurrent_runs_per_member: Number(data.get("member")),
      max_storage_bytes: Math.round(Number(data.get("storage")) * GIB) };
    show(await api("PUT", url, { json }));
    flash("Limits saved. They apply to what starts or is uploaded from now on.");
  });
}

// the run form says the workspace's limits to whoever starts runs (read-only; best effort)
async function runQuotaHint() {
  try {
    const q = await api("GET", `/workspaces/${WS}/quotas`);
    const l = q.limits;
    if (!l.max_concurrent_runs && !l.max_concurrent_runs_per_member && !l.max_storage_bytes) return;
    $("#run-quota").textContent = `Limits of this workspace: ${quotaLines(q).join(" ")} A run beyond them is refused; `
      + "start it again when one ends.";
  } catch (err) {
    // the form works without it
  }
}

// --- people: a workspace's members, a class list; the platform's accounts ---------------------------------

// a username with the person's name under it (one column: the tables stay narrow on a phone)
const who = (username, name) => el("span", {}, username, name ? el("small", { class: "hint person-name" }, name) : "");
const JOINED = { hand: "added by hand", csv: "class list", invite: "invite link", lms: "LMS course" };

async function showPeople() {
  const people = await api("GET", `/workspaces/${WS}/people`);
  fill("#people", people.items.map((p) => {
    const role = el("select", { "aria-label": `Role of ${p.username}`, "data-member": p.username },
      ...["student", "instructor", "admin"].map((r) => el("option", { value: r, selected: r === p.role }, r)));
    role.addEventListener("change", () => busy(role, async () => {
      try {
        const m = await api("PATCH", `/workspaces/${WS}/members/${p.username}`, { json: { role: role.value } });
        flash(`${m.username} is now ${m.role}.`);
      } finally {
        await showPeople();
      }
    }));
    const remove = el("button", { type: "button", class: "secondary", "aria-label": `Remove ${p.username}` }, "Remove");
    remove.addEventListener("click", () => busy(remove, async () => {
      if (!confirm(`Remove ${p.username} from ${WS}? Their forks and runs stay in the workspace's history.`)) return;
      await api("DELETE", `/workspaces/${WS}/members/${p.username}`);
      flash(`${p.username} removed.`);
      await showPeople();
    }));
    return [who(p.username, p.display_name), role, JOINED[p.source] || p.source, when(p.added_at), remove];
  }), "No members.");
}

pages.people = async () => {
  await showPeople();
  const form = $("#class-list");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const dryRun = !(event.submitter && event.submitter.value === "apply");
    busy(event.submitter || form, async () => {
      const file = $("#csv-file").files[0];
      const report = await api("POST", `/workspaces/${WS}/class-list`, { json: { csv: await file.text(), dry_run: dryRun } });
      const verb = report.dry_run ? "would be" : "were";
      $("#csv-summary").textContent = `${report.dry_run ? "Preview: " : ""}${report.added} ${verb} added, `
        + `${report.invited} ${report.dry_run ? "would get" : "got"} an invite link, ${report.already_members} already members, `
        + `${report.errors} line(s) with a problem.`;
      const table = $("#csv-result");
      table.hidden = false;
      fill(table.querySelector("tbody"), report.rows.map((r) => [String(r.line), r.who, r.role,
        r.action === "error" ? el("strong", {}, `problem: ${r.detail}`) : `${r.action}: ${r.detail}`,
        r.invite_url ? el("code", {}, r.invite_url) : "—"]), "Nothing in the list.");
      if (!report.dry_run) await showPeople();
    });
  });
};

const SIGN_IN = { password: "password", token: "API token", sso: "single sign-on", ldap: "directory (LDAP)", lms: "LMS" };

async function showUsers() {
  const users = await api("GET", "/users/accounts");
  const me = body.dataset.user;
  fill("#users", users.items.map((u) => {
    const change = (label, json, done) => {
      const button = el("button", { type: "button", class: "secondary", "aria-label": `${label} ${u.username}`,
        disabled: u.username === me }, label);
      button.addEventListener("click", () => busy(button, async () => {
        await api("PATCH", `/users/${u.username}`, { json });
        flash(`${u.username}: ${done}.`);
        await showUsers();
      }));
      return button;
    };
    return [who(u.username, u.display_name), u.auth.map((a) => SIGN_IN[a] || a).join(", ") || "none yet",
      el("span", {}, u.platform_admin ? "yes " : "no ", u.platform_admin
        ? change("Unmake admin", { platform_admin: false }, "no longer a platform admin")
        : change("Make admin", { platform_admin: true }, "now a platform admin")),
      el("span", {}, u.disabled ? badge("disabled") : "enabled ", u.disabled
        ? change("Enable", { disabled: false }, "enabled")
        : change("Disable", { disabled: true }, "disabled"))];
  }), "No users.");
}

pages.users = showUsers;

// --- the environment editor ------------------------------------------------------------------------

const reqName = (req) => (req.match(/^[A-Za-z0-9][A-Za-z0-9._-]*/) || [""])[0].toLowerCase().replace(/[._]/g, "-");

// The Python versions a base image has: an environment uses its base's Python (the builder refuses another
// when locking), so only those are offered. Debian bookworm (the offline default) has 3.11; python:X.Y images
// have X.Y; any other base is not known here, so every version is offered and the build says which it has.
const ANY_PYTHON = ["3.11", "3.12", "3.13"];
function pythonsOf(base) {
  const tag = /(?:^|\/)python:(\d+\.\d+)/.exec(base);
  if (tag) return { versions: [tag[1]], hint: `This base has Python ${tag[1]}.` };
  if (/bookworm/.test(base)) {
    return { versions: ["3.11"], hint: "Python 3.11 is the one this base (Debian bookworm) has. For 3.12, start from a "
      + "base image that has it, e.g. python:3.12-slim-bookworm." };
  }
  return { versions: ANY_PYTHON, hint: "The base image decides the Python version: a version it does not have is "
    + "refused when the environment is built, saying which one it has." };
}

function offerPythons(form, wanted) {
  const select = $("#e-pyver", form);
  const { versions, hint } = pythonsOf($("#e-base", form).value.trim());
  const keep = wanted || select.value;
  // a saved spec's version stays visible (marked) when its base lacks it; a choice made here does not
  const offered = wanted && !versions.includes(wanted) ? [...versions, wanted] : versions;
  select.replaceChildren(...offered.map((v) => el("option", { value: v },
    versions.includes(v) ? v : `${v} (not in this base)`)));
  select.value = offered.includes(keep) ? keep : versions[0];
  $("#e-pyver-hint", form).textContent = hint;
}

function setupEditor(form, spec) {
  const pyGrid = $("#pkgs-python .pkg-grid", form);
  const rGrid = $("#pkgs-r .pkg-grid", form);
  const box = (lang, [name, what]) => el("label", { "data-search": `${name} ${what}`.toLowerCase() },
    el("input", { type: "checkbox", name: `pkg-${lang}`, value: name }), name, el("span", { class: "sr-only" }, `, ${what}`));
  pyGrid.replaceChildren(...PY_PACKAGES.map((p) => box("python", p)));
  rGrid.replaceChildren(...R_PACKAGES.map((p) => box("r", p)));

  const extraPy = [];
  const extraR = [];
  if (spec) {
    $("#e-base", form).value = spec.base || "";
    $("#lang-python", form).checked = Boolean(spec.python);
    offerPythons(form, spec.python && spec.python.version);
    const curatedPy = new Set(PY_PACKAGES.map(([n]) => n));
    for (const req of (spec.python && spec.python.requirements) || []) {
      // A curated package is ticked even when pinned ("pandas>=2.2"); its box keeps the whole requirement.
      const box = pyGrid.querySelector(`input[value="${CSS.escape(reqName(req))}"]`);
      const plain = !/[;@\[]/.test(req);
      if (box && curatedPy.has(reqName(req)) && plain) {
        box.checked = true;
        if (req !== box.value) box.dataset.req = req;
      } else extraPy.push(req);
    }
    $("#lang-r", form).checked = Boolean(spec.r && spec.r.packages && spec.r.packages.length);
    for (const name of (spec.r && spec.r.packages) || []) {
      const box = rGrid.querySelector(`input[value="${CSS.escape(name)}"]`);
      if (box) box.checked = true;
      else extraR.push(name);
    }
    $("#e-apt", form).value = (spec.apt || []).join("\n");
  }
  $("#e-extra-py", form).value = extraPy.join("\n");
  if ($("#e-note", form)) $("#e-note", form).value = "";
  $("#e-extra-r", form).value = extraR.join("\n");

  if (!spec) offerPythons(form);
  $("#e-base", form).addEventListener("change", () => offerPythons(form));
  const search = $("#pkg-search", form);
  search.addEventListener("input", () => {
    const q = search.value.trim().toLowerCase();
    for (const label of $$(".pkg-grid label", form)) label.hidden = Boolean(q) && !label.dataset.search.includes(q);
  });
  const sync = () => {
    const py = $("#lang-python", form).checked;
    const r = $("#lang-r", form).checked;
    $("#pkgs-python", form).disabled = !py;
    $("#e-extra-py", form).disabled = !py;
    $("#e-pyver", form).disabled = !py;
    $("#pkgs-r", form).disabled = !r;
    $("#e-extra-r", form).disabled = !r;
    const s = buildSpec(form, spec);
    const n = ((s.python && s.python.requirements) || []).length + ((s.r && s.r.packages) || []).length;
    $("#e-summary", form).textContent = `${n} package${n === 1 ? "" : "s"} selected` +
      (py ? `; Python ${s.python.version}` : "") + (r ? "; R" : "") + ".";
  };
  form.addEventListener("change", sync);
  form.addEventListener("input", sync);
  sync();
}

const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);

// The spec from the editor; sections the editor does not show (files, datasets, ...) are kept from `previous`.
function buildSpec(form, previous) {
  const spec = { ...(previous || {}) };
  spec.base = $("#e-base", form).value.trim();
  delete spec.python;
  delete spec.r;
  if ($("#lang-python", form).checked) {
    const reqs = $$("input[name=pkg-python]:checked", form).map((b) => b.dataset.req || b.value);
    spec.python = { version: $("#e-pyver", form).value, requirements: [...reqs, ...lines($("#e-extra-py", form).value)] };
  }
  if ($("#lang-r", form).checked) {
    const pkgs = $$("input[name=pkg-r]:checked", form).map((b) => b.value);
    spec.r = { packages: [...pkgs, ...lines($("#e-extra-r", form).value)] };
  }
  const apt = lines($("#e-apt", form).value);
  if (apt.length) spec.apt = apt;
  else delete spec.apt;
  return spec;
}

pages.new_env = async () => {
  await workspaceRole();
  const form = $("#env-editor");
  setupEditor(form, null);
  onSubmit(form, async (data) => {
    const made = await api("POST", `/workspaces/${WS}/environments`, { json: {
      name: data.get("name"), description: data.get("description") || "", spec: buildSpec(form, null) } });
    location.href = `/w/${WS}/env/${made.name}?created=1`;
  });
};

// --- environment page: versions, lineage, rollback, build with live log, pull, fork --------------------

function lineageSvg(versions, envName) {
  const ns = "http://www.w3.org/2000/svg";
  const mk = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const sorted = [...versions].sort((a, b) => a.number - b.number);
  const external = sorted.filter((v) => v.parent && !v.parent.startsWith(`${WS}/${envName}/`));
  const gap = 110;
  const left = external.length ? 170 : 50;
  const width = Math.max(left + gap * (sorted.length - 1) + 80, 320);
  const height = 140;
  const y = 78;
  const svg = mk("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": `Lineage of ${envName}: ` + sorted.map((v) => `v${v.number}` + (v.parent ? ` from ${v.parent}` : "") +
      (v.rollback_to ? ` (rollback to v${v.rollback_to})` : "")).join(", ") });
  const x = (n) => left + gap * sorted.findIndex((v) => v.number === n);
  const defs = mk("defs", {});
  const marker = mk("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto" });
  marker.append(mk("path", { d: "M0,0 L10,5 L0,10 z", fill: "#4b5563" }));
  defs.append(marker);
  svg.append(defs);
  for (const v of sorted) {
    if (!v.parent) continue;
    const m = v.parent.match(/^(.*)\/v(\d+)$/);
    if (v.parent.startsWith(`${WS}/${envName}/`) && m) {
      svg.append(mk("line", { x1: x(Number(m[2])) + 20, y1: y, x2: x(v.number) - 21, y2: y, stroke: "#4b5563",
        "stroke-width": 2, "marker-end": "url(#arrow)" }));
    } else {
      svg.append(mk("rect", { x: 6, y: y - 16, width: left - 60, height: 32, rx: 6, fill: "#f3f4f6", stroke: "#6b7280" }));
      svg.append(mk("text", { x: 6 + (left - 60) / 2, y: y + 4, "text-anchor": "middle", "font-size": 11, fill: "#1a1f2b" },
        v.parent.length > 16 ? "…" + v.parent.slice(-15) : v.parent));
      svg.append(mk("line", { x1: left - 54, y1: y, x2: x(v.number) - 21, y2: y, stroke: "#4b5563", "stroke-width": 2,
        "stroke-dasharray": "5 4", "marker-end": "url(#arrow)" }));
    }
    if (v.rollback_to) {
      const x1 = x(v.rollback_to);
      const x2 = x(v.number);
      svg.append(mk("path", { d: `M${x2},${y - 21} C${x2 - 25},${y - 62} ${x1 + 25},${y - 62} ${x1},${y - 21}`, fill: "none",
        stroke: "#b45309", "stroke-width": 2, "stroke-dasharray": "4 3", "marker-end": "url(#arrow)" }));
      svg.append(mk("text", { x: (x1 + x2) / 2, y: y - 58, "text-anchor": "middle", "font-size": 12, fill: "#92400e" },
        `rollback to v${v.rollback_to}`));
    }
  }
  for (const v of sorted) {
    const built = Boolean(v.image_digest);
    const g = mk("g", {});
    g.append(mk("title", {}, `v${v.number} by ${v.created_by}${built ? ", built" : ", not built"}${v.note ? ": " + v.note : ""}`));
    g.append(mk("circle", { cx: x(v.number), cy: y, r: 20, fill: built ? "#1d4ed8" : "#fff", stroke: "#1d4ed8", "stroke-width": 2 }));
    g.append(mk("text", { x: x(v.number), y: y + 5, "text-anchor": "middle", "font-size": 14, "font-weight": 700,
      fill: built ? "#fff" : "#1d4ed8" }, `v${v.number}`));
    g.append(mk("text", { x: x(v.number), y: y + 38, "text-anchor": "middle", "font-size": 11, fill: "#4b5563" },
      built ? "built" : "not built"));
    svg.append(g);
  }
  return svg;
}

function packagesOf(spec) {
  const py = (spec && spec.python && spec.python.requirements) || [];
  const r = ((spec && spec.r && spec.r.packages) || []).map((p) => `R:${p}`);
  const all = [...py, ...r];
  return all.length ? all.join(", ") : "—";
}

// --- taking a built version out: downloads (image archive, Binder folder, renv.lock) and publishing ---------

// The "Take it out" section offers the built versions only; drawn again whenever the versions change.
let takeOutVersions = [];
function showTakeOut(newest) {
  takeOutVersions = newest.filter((v) => v.image_digest);
  const section = $("#take-out");
  section.hidden = !takeOutVersions.length;
  if (!takeOutVersions.length) return;
  const select = $("#out-version");
  const kept = select.value;
  select.replaceChildren(...takeOutVersions.map((v) => el("option", { value: v.number }, `v${v.number}`)));
  if (takeOutVersions.some((v) => String(v.number) === kept)) select.value = kept;
  takeOutLinks();
}

function takeOutLinks() {
  const envName = body.dataset.env;
  const v = takeOutVersions.find((x) => String(x.number) === $("#out-version").value) || takeOutVersions[0];
  const path = `${API}/workspaces/${WS}/environments/${envName}/versions/${v.number}`;
  const archive = `${envName}-v${v.number}.oci.tar`;
  $("#out-archive").href = `${path}/image.tar`;
  $("#out-archive").setAttribute("download", archive);
  $("#out-archive").textContent = `Download v${v.number} as one file`;
  $$(".out-file").forEach((node) => { node.textContent = archive; });
  $("#out-binder").href = `${path}/binder`;
  $("#out-binder").setAttribute("download", `${envName}-v${v.number}-binder.zip`);
  $("#out-binder").textContent = `Download v${v.number} as a Binder-ready folder`;
  const r = (v.spec && v.spec.r) || {};
  $("#out-renv-item").hidden = !(r.packages && r.packages.length);
  $("#out-renv").href = `${path}/renv.lock`;
  $("#out-renv").setAttribute("download", `${envName}-v${v.number}-renv.lock`);
  $("#out-digest").textContent = v.image_digest;
  $("#out-archive-status").replaceChildren();
  $("#publish-result").replaceChildren();
}

// The image file is made once per version, which takes a while and can fail: ask the API to make it first,
// say so in the page, and only then start the download (else the browser saves the error as the file).
async function downloadImageFile(event) {
  const link = event.currentTarget;
  if (link.dataset.ready === "1") { delete link.dataset.ready; return; }  // our own click below: let it go
  event.preventDefault();
  const status = $("#out-archive-status");
  const v = takeOutVersions.find((x) => String(x.number) === $("#out-version").value) || takeOutVersions[0];
  status.replaceChildren(el("p", {}, `Making the file of v${v.number}… the first time takes a minute or more.`));
  let file;
  try {
    file = await api("POST", `/workspaces/${WS}/environments/${body.dataset.env}/versions/${v.number}/image.tar/prepare`);
  } catch (err) {
    status.replaceChildren(el("p", { class: "error", role: "alert" }, `The file could not be made: ${err.message}`));
    return;
  }
  status.replaceChildren(el("p", {}, `Downloading ${file.filename} (${bytes(file.size)}).`));
  link.dataset.ready = "1";
  link.click();
}

async function setupTakeOut() {
  const envName = body.dataset.env;
  $("#out-version").addEventListener("change", takeOutLinks);
  $("#out-archive").addEventListener("click", downloadImageFile);
  $("#pub-registries").href = `/w/${WS}/registries`;
  const { manager } = await workspaceRole();
  if (!manager) return;
  onSubmit($("#publish-form"), async (data) => {
    const v = takeOutVersions.find((x) => String(x.number) === $("#out-version").value);
    const destination = data.get("destination").trim();
    const out = $("#publish-result");
    out.replaceChildren(el("p", {}, `Publishing v${v.number} to ${destination}…`));
    let result;
    try {
      result = await api("POST", `/workspaces/${WS}/environments/${envName}/versions/${v.number}/publish`,
        { json: { destination } });
    } catch (err) {
      out.replaceChildren(el("p", { class: "error", role: "alert" }, `Not published: ${err.message}`));
      return;
    }
    const same = result.digest === v.image_digest;
    out.replaceChildren(el("p", {}, el("strong", {}, `Published v${v.number} to ${result.destination}.`),
      same ? " It is the same exact copy as this platform's: the digests match." : ""),
    el("p", { class: same ? "hint" : "error" }, "Digest: ", el("code", { id: "pub-digest" }, result.digest),
      same ? "" : ` differs from this platform's copy (${v.image_digest}).`),
    el("p", { class: "hint" }, "Students get it with ", el("code", {}, `podman pull ${result.destination}`), "."));
    flash(`Published ${envName} v${v.number} to ${result.destination}.`);
  });
}

pages.environment = async () => {
  const envName = body.dataset.env;
  const base = `/workspaces/${WS}/environments/${envName}`;
  const params = new URLSearchParams(location.search);
  // The fork's suggested name, before the page waits for anything: set later, it replaced (or, typed
  // into at that moment, doubled) a name the user had begun to type.
  const forkName = $("#fork-name");
  if (!forkName.value) forkName.value = `${envName}-${body.dataset.user}`.slice(0, 63).replace(/[^a-z0-9-]/g, "-");
  if (params.get("created")) flash(`Environment ${envName} created. Build it below.`);
  if (params.get("forked")) flash(`Forked into ${envName}: you own it and can change and build it.`);
  const editForm = $("#env-editor");
  let env;

  const showPull = (v) => {
    $("#pull").hidden = !v;
    if (!v) return;
    $("#pull-version").textContent = `v${v.number}`;
    $("#pull-cmd").textContent = pullCommand(v);
    $("#pull-docker").textContent = pullCommand(v, "docker");
    $("#pull-ref2").textContent = `${v.image_ref.slice(0, v.image_ref.lastIndexOf(":"))}@${v.image_digest}`;
  };

  async function refresh() {
    env = await api("GET", base);
    const versions = (await api("GET", `${base}/versions`)).items;
    $("#env-summary").textContent = `${env.kind === "personal" ? "Personal" : "Workspace"} environment owned by ${env.owner}` +
      (env.forked_from ? `, forked from ${env.forked_from}` : "") + `; latest version v${env.latest_version}` +
      (env.description ? `. ${env.description}` : ".") + (env.can_change ? "" : " You can fork it to change it.");
    $("#lineage").replaceChildren(lineageSvg(versions, envName));
    const newest = [...versions].sort((a, b) => b.number - a.number);
    fill($("#versions tbody"), newest.map((v) => [
      el("strong", {}, `v${v.number}`), packagesOf(v.spec),
      v.rollback_to ? `rollback to v${v.rollback_to}` : (v.parent || "—"), v.created_by,
      v.image_digest ? badge("built") : el("span", { class: "hint" }, "not built"),
      [v.image_digest ? el("button", { type: "button", class: "small", "data-session": v.number,
        "aria-label": `Open version ${v.number} in JupyterLab` }, "Open in JupyterLab") : "",
      ...(env.can_change && v.number !== env.latest_version
        ? [" ", el("button", { type: "button", class: "secondary small", "data-rollback": v.number,
          "aria-label": `Roll back to version ${v.number}` }, `Roll back to v${v.number}`)] : [])]]), "No versions.");
    const opts = (sel) => $(sel).replaceChildren(...newest.map((v) => el("option", { value: v.number }, `v${v.number}`)));
    opts("#build-version");
    opts("#fork-version");
    $("#build-controls").hidden = !env.can_change;
    showPull(newest.find((v) => v.image_digest));
    showTakeOut(newest);
    showTidy();
    return versions;
  }

  // Archive / restore / delete (instructors, or a student's own fork); a 409 says what still uses it.
  const showTidy = () => {
    $("#tidy-section").hidden = !env.can_change;
    $("#tidy-state").textContent = env.archived_at
      ? `Archived on ${when(env.archived_at)}: hidden from lists and the run form; restore it to make new versions.`
      : "In use: listed and offered in the run form.";
    $("#archive-button").textContent = env.archived_at ? "Restore" : "Archive";
    $("#edit-section").hidden = !env.can_change || Boolean(env.archived_at);
  };
  $("#archive-button").addEventListener("click", (event) => busy(event.target, async () => {
    env = await api("POST", `${base}/${env.archived_at ? "restore" : "archive"}`);
    flash(env.archived_at ? `Environment ${envName} archived.` : `Environment ${envName} restored.`);
    showTidy();
  }));
  $("#delete-env-button").addEventListener("click", (event) => busy(event.target, async () => {
    if (!confirm(`Delete environment ${envName} and all its versions? This cannot be undone.`)) return;
    await api("DELETE", base);
    location.href = `/w/${WS}?deleted=${encodeURIComponent(envName)}`;
  }));

  // Build history: every build of this environment's versions, each log replayed on demand; on load the
  // newest build of the version chosen below is shown (live if it still runs), so a reload loses nothing.
  const stepOf = (line) => {
    const m = /^\s*STEP (\d+)\/(\d+)/.exec(line);
    return m ? `step ${m[1]} of ${m[2]}` : null;
  };
  const showStatus = (b, step) => $("#build-status").replaceChildren(badge(b.status), step ? ` (${step})` : "",
    b.joined ? " (shared with an identical version)" : "", b.error ? ` – ${b.error}` : "");
  async function history() {
    const builds = (await api("GET", `${base}/builds`)).items;
    fill("#builds", builds.map((b) => [el("strong", {}, `v${b.version}`), badge(b.status), b.requested_by,
      when(b.created_at), when(b.finished_at) || "—",
      // one cell (the Log column): the button and, once the build ended, the whole log as text
      el("span", {}, el("button", { type: "button", class: "secondary small", "data-build": b.id,
        "aria-label": `Show the log of the build of v${b.version} from ${when(b.created_at)}` }, "Show log"),
      ...(TERMINAL_BUILD.includes(b.status) ? [" ", el("a", { href: `${API}/builds/${b.id}/log.txt`,
        "aria-label": `Open the whole log of the build of v${b.version} as text` }, "as text")] : []))]),
    "No builds yet.");
    return builds;
  }
  async function watch(build) {
    $("#build-which").textContent = `Build of v${build.version} requested by ${build.requested_by} at ` +
      `${when(build.created_at)} (UTC).`;
    showStatus(build);
    let step = null;
    await followLog(`${API}/builds/${build.id}/logs`, $("#build-log"), (line) => {
      step = stepOf(line) || step;
      if (!TERMINAL_BUILD.includes(build.status)) showStatus({ ...build, status: "running", error: null }, step);
    });
    const done = await api("GET", `/builds/${build.id}`);
    showStatus(done, done.status === "succeeded" ? null : step);
    return done;
  }
  $("#builds").addEventListener("click", (event) => {
    const target = event.target.closest("button[data-build]");
    if (target) busy(target, async () => { watch(await api("GET", `/builds/${target.dataset.build}`)); });
  });

  const versions = await refresh();
  await setupTakeOut();
  const builds = await history();
  // ?build=<id>: the build a link asked for (a session saved as a new version links to its build)
  const shown = builds.find((b) => b.id === params.get("build")) ||
    builds.find((b) => String(b.version) === $("#build-version").value) || builds[0];
  if (shown) watch(shown).catch((err) => flash(err.message, true));

  $("#versions").addEventListener("click", (event) => {
    const open = event.target.closest("button[data-session]");
    if (open) busy(open, () => startSession(envName, Number(open.dataset.session)));
    const target = event.target.closest("button[data-rollback]");
    if (!target) return;
    busy(target, async () => {
      const n = Number(target.dataset.rollback);
      const made = await api("POST", `${base}/versions`, { json: { rollback_to: n, note: `rollback to v${n}` } });
      flash(`Created v${made.number} equal to v${n}. Build it to get its image (an identical lock reuses the image).`);
      await refresh();
      setupEditor(editForm, made.spec);
    });
  });

  $("#build-button").addEventListener("click", (event) => busy(event.target, async () => {
    const n = Number($("#build-version").value);
    $("#build-status").replaceChildren(badge("queued"));
    let build;
    try {
      build = await api("POST", `${base}/versions/${n}/builds`);
    } catch (err) {
      $("#build-status").replaceChildren(badge("failed"));
      $("#build-log").textContent = err.message;
      throw err;
    }
    history();
    build = await watch(build);
    // the registry records the image a moment after the build ends
    for (let i = 0; i < 20; i++) {
      const v = await api("GET", `${base}/versions/${n}`);
      if (v.image_digest || build.status !== "succeeded") break;
      await new Promise((r) => setTimeout(r, 500));
    }
    await refresh();
    await history();
    if (build.status === "succeeded") {
      const v = await api("GET", `${base}/versions/${n}`);
      showPull(v.image_digest ? v : null);
      flash(`Build of v${n} succeeded.`);
    } else {
      flash(`Build of v${n} failed: ${build.error || "see the log"}`, true);
    }
  }));

  onSubmit($("#fork-form"), async (data) => {
    const made = await api("POST", `${base}/fork`, { json: { name: data.get("name"), version: Number($("#fork-version").value) } });
    location.href = `/w/${made.workspace}/env/${made.name}?forked=1`;
  });

  if (env.can_change) {
    $("#edit-section").hidden = Boolean(env.archived_at);
    const latest = versions.find((v) => v.number === env.latest_version);
    setupEditor(editForm, latest ? latest.spec : null);
    onSubmit(editForm, async (data) => {
      const spec = buildSpec(editForm, (await api("GET", `${base}/versions/${env.latest_version}`)).spec);
      const made = await api("POST", `${base}/versions`, { json: { spec, note: data.get("note") || "" } });
      flash(`Saved v${made.number}. Build it to get its image.`);
      await refresh();
      $("#build-version").value = String(made.number);
      setupEditor(editForm, made.spec);
    });
  }
};

// --- runs ------------------------------------------------------------------------------------------

const scoreText = (r) => (r.assignment ? (r.score ?? r.scoring ?? "") : "");

pages.runs = async () => {
  await workspaceRole();
  runQuotaHint();
  const gone = new URLSearchParams(location.search).get("deleted");
  if (gone) flash(`Run ${gone} deleted.`);
  const [envs, datasets, assignments, runs, targets] = await Promise.all([
    api("GET", `/workspaces/${WS}/environments`), api("GET", `/workspaces/${WS}/datasets`),
    api("GET", `/workspaces/${WS}/assignments`), api("GET", `/workspaces/${WS}/runs`), api("GET", "/targets")]);
  // only the targets this platform has enabled; cloud ones say they use your saved credentials
  $("#r-target").replaceChildren(...targets.items.map((t) => el("option", { value: t.name },
    t.name === "local" ? "local (this platform's own containers)"
      : t.needs_credentials ? `${t.name} (with your saved credentials)` : t.name)));
  $("#r-target-hint").hidden = !targets.items.some((t) => t.needs_credentials);
  // your own fork first: a student runs the environment they changed, not the course's
  const me = body.dataset.user;
  const mine = (e) => e.kind === "personal" && e.owner === me;
  const ordered = [...envs.items].sort((a, b) => mine(b) - mine(a));
  $("#r-env").replaceChildren(...ordered.map((e) => el("option", { value: e.name },
    e.name + (mine(e) ? " (your fork)" : e.kind === "personal" ? ` (${e.owner}'s)` : ""))));
  const builtVersions = async (name) => (await api("GET", `/workspaces/${WS}/environments/${name}/versions`))
    .items.filter((v) => v.image_digest).sort((a, b) => b.number - a.number);
  const showVersions = async () => {
    const versions = $("#r-env").value ? await builtVersions($("#r-env").value) : [];
    $("#r-version").replaceChildren(...versions.map((v) => el("option", { value: v.number }, `v${v.number}`)));
    $("#r-version").dataset.env = $("#r-env").value;
    $("#r-version-hint").textContent = versions.length ? "Built versions only, newest first."
      : "No built version yet: build one on the environment's page first.";
  };
  // the default is the first environment (yours first) that has a built version: an unbuilt newer version
  // must not block running the built one
  for (const e of ordered) {
    if ((await builtVersions(e.name)).length) {
      $("#r-env").value = e.name;
      break;
    }
  }
  await showVersions();
  $("#r-env").addEventListener("change", () => busy($("#r-env"), showVersions));
  $("#r-assignment").append(...assignments.items.map((a) => el("option", { value: a.name }, a.title || a.name)));
  const wanted = new URLSearchParams(location.search).get("assignment");
  if (wanted) $("#r-assignment").value = wanted;
  const dsBox = $("#r-datasets");
  dsBox.replaceChildren(el("legend", {}, "Datasets (read-only under /data)"),
    ...(datasets.items.length ? datasets.items.map((d) => el("label", {},
      el("input", { type: "checkbox", name: "dataset", value: d.name }), d.name)) : [el("p", { class: "hint" }, "No datasets.")]));
  fill("#runs", [...runs.items].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || "")).map((r) => [
    el("a", { href: `/w/${WS}/runs/${r.id}` }, r.id.slice(0, 12)), `${r.environment} v${r.version}`, r.requested_by,
    r.target, badge(r.status), scoreText(r), when(r.created_at)]), "No runs yet.");
  const earlier = await runFormSources(envs);
  onSubmit($("#submit-run"), async (data) => {
    const source = $("#r-source").value;
    const program = $("#r-program").value === "notebook"
      ? { notebook: data.get("notebook").trim() } : { command: splitCommand(data.get("command")) };
    let code = {};
    if (source === "git") {
      code = { git: { url: $("#r-git-url").value.trim(), ref: $("#r-git-ref").value.trim() } };
    } else if (source === "files" || source === "folder") {
      const packed = await window.ReprolabCode.pack($(source === "files" ? "#r-files" : "#r-folder").files, source === "folder");
      code = { code: (await uploadCode(packed.blob)).digest };
    } else if (source === "archive") {
      code = { code: (await uploadCode($("#r-code").files[0])).digest };
    }
    const common = { datasets: data.getAll("dataset"), target: data.get("target"), network: $("#r-network").checked };
    const run = earlier && data.get("environment") === earlier.environment
      ? await api("POST", `/runs/${earlier.id}/rerun`, { json: {
        version: Number(data.get("version") || 0), ...code, ...program, ...common } })
      : await api("POST", `/workspaces/${WS}/runs`, { json: {
        environment: data.get("environment"), version: Number(data.get("version") || 0), ...code, ...program, ...common,
        ...(source === "again" ? { code: earlier.code_digest } : {}), assignment: data.get("assignment") || "" } });
    location.href = `/w/${WS}/runs/${run.id}`;
  });
};

// The run form's code and program choices, and "edit and re-run" (?again=<run>): the earlier run's choices
// filled in, its code kept unless another is chosen. Returns the earlier run, or null.
async function runFormSources(envs) {
  const show = (attr, value) => $$(`[data-${attr}]`).forEach((node) => {
    const on = node.dataset[attr] === value;
    node.hidden = !on;
    node.querySelectorAll("input").forEach((input) => {
      input.required = on && ["r-code", "r-files", "r-folder", "r-git-url", "r-command", "r-notebook"].includes(input.id);
    });
  });
  const source = $("#r-source");
  const program = $("#r-program");
  source.addEventListener("change", () => show("source", source.value));
  program.addEventListener("change", () => show("program", program.value));
  // one notebook picked: run it as a notebook
  $("#r-files").addEventListener("change", () => {
    const files = [...$("#r-files").files];
    const nb = files.find((f) => f.name.endsWith(".ipynb"));
    if (nb && files.length === 1) {
      program.value = "notebook";
      $("#r-notebook").value = nb.name;
      show("program", "notebook");
    }
  });
  show("source", source.value);
  show("program", program.value);
  const id = new URLSearchParams(location.search).get("again");
  if (!id) return null;
  const r = await api("GET", `/runs/${id}`);
  const from = r.source || {};
  source.prepend(el("option", { value: "again" }, `the code of run ${r.id.slice(0, 8)}`));
  source.value = "again";
  show("source", "again");
  $("#r-again-code").textContent = from.git_commit
    ? `Commit ${from.git_commit.slice(0, 12)} of ${from.git_url}, as run ${r.id.slice(0, 8)} had it.`
    : `The same files as run ${r.id.slice(0, 8)} (${r.code_digest.slice(0, 19)}…); choose another source to change them.`;
  if (envs.items.some((e) => e.name === r.environment)) {
    $("#r-env").value = r.environment;
    $("#r-env").dispatchEvent(new Event("change"));
    await new Promise((done) => setTimeout(done, 0));
    for (let i = 0; i < 50 && $("#r-version").dataset.env !== r.environment; i++) {
      await new Promise((done) => setTimeout(done, 100));
    }
    if ([...$("#r-version").options].some((o) => o.value === String(r.version))) $("#r-version").value = String(r.version);
  }
  if (from.notebook) {
    program.value = "notebook";
    $("#r-notebook").value = from.notebook;
  } else {
    $("#r-command").value = r.command.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(" ");
  }
  show("program", program.value);
  const names = new Set(r.datasets.map((d) => d.name));
  $$("#r-datasets input[name=dataset]").forEach((box) => { box.checked = names.has(box.value); });
  if ([...$("#r-target").options].some((o) => o.value === r.target)) $("#r-target").value = r.target;
  $("#r-network").checked = r.network;
  if (r.assignment) $("#r-assignment").value = r.assignment;
  $("#submit-h").textContent = `Edit and re-run ${r.id.slice(0, 8)}`;
  return r;
}

pages.run = async () => {
  const id = body.dataset.run;
  const details = async () => {
    const r = await api("GET", `/runs/${id}`);
    const rows = [["Status", badge(r.status)], ["Environment", `${r.environment} v${r.version}`],
      // plain words first; the image's exact address one click away (issue 17 item 7)
      ["Saved copy", el("details", {}, el("summary", {}, `the exact copy of ${r.environment} v${r.version} it ran in`),
        el("code", { class: "url" }, r.image))],
      ...(r.source && r.source.git_url ? [["Code", el("span", {}, el("code", {}, r.source.git_url), " at ",
        el("code", { title: r.source.git_commit }, (r.source.git_commit || "").slice(0, 12)),
        r.source.git_ref ? ` (${r.source.git_ref})` : "")]] : []),
      r.source && r.source.notebook ? ["Notebook", el("code", {}, r.source.notebook)]
        : ["Command", el("code", {}, r.command.join(" "))], ["Target", r.target],
      ["Datasets", r.datasets.map((d) => d.name).join(", ") || "—"], ["Network", r.network ? "on" : "off"],
      ["By", r.requested_by], ["Created", when(r.created_at)], ["Finished", when(r.finished_at) || "—"]];
    if (r.exit_code !== null) rows.push(["Exit code", String(r.exit_code)]);
    if (r.error) rows.push(["Error", r.error]);
    if (r.assignment) rows.push(["Assignment", el("a", { href: `/w/${WS}/assignments/${r.assignment}` }, r.assignment)]);
    $("#run-details").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    $("#run-status").replaceChildren(badge(r.status));
    $("#cancel-run").hidden = TERMINAL_RUN.includes(r.status);
    // a finished run that is no assignment's submission (the gradebook keeps those) may go, outputs and log too
    $("#delete-run").hidden = !TERMINAL_RUN.includes(r.status) || Boolean(r.assignment);
    if (r.assignment) {
      $("#score").replaceChildren(el("p", {}, "Score: ",
        r.score !== null ? el("span", { class: "score" }, r.score) : badge(r.scoring || "pending"),
        r.score_error ? ` – ${r.score_error}` : ""));
    }
    return r;
  };
  const results = async () => {
    const out = await api("GET", `/runs/${id}/outputs`);
    fill("#metrics", Object.entries(out.metrics || {}).map(([k, v]) => [k, JSON.stringify(v)]), "No metrics.json.");
    fill("#outputs", out.files.map((f) => [
      el("a", { href: `${API}/runs/${id}/outputs/${f.name.split("/").map(encodeURIComponent).join("/")}`, download: "" }, f.name),
      bytes(f.size), el("span", { class: "digest", title: f.sha256 }, short(f.sha256)),
      run.status === "succeeded" && MODEL_FILE.test(f.name) ? el("button", { type: "button", class: "secondary small",
        "data-deploy": f.name, "aria-label": `Deploy ${f.name} as a model` }, "Deploy as a model") : ""]), "No outputs.");
  };
  // "Deploy as a model": a model file of a succeeded run becomes a web service, served in the run's image
  const deployForm = $("#deploy-form");
  $("#outputs").addEventListener("click", (event) => {
    const target = event.target.closest("button[data-deploy]");
    if (!target) return;
    deployForm.dataset.artifact = target.dataset.deploy;
    $("#deploy-artifact").textContent = target.dataset.deploy;
    $("#deploy-name").value = defaultModelName(target.dataset.deploy);
    deployForm.hidden = false;
    $("#deploy-name").focus();
  });
  $("#deploy-cancel").addEventListener("click", () => { deployForm.hidden = true; });
  onSubmit(deployForm, async (data) => {
    const name = $("#deploy-name").value.trim();
    const v = await api("POST", `/workspaces/${WS}/models`, { json: { run_id: id, artifact: deployForm.dataset.artifact, name } });
    deployForm.hidden = true;
    const done = $("#deployed");
    done.replaceChildren(`Deploying ${v.artifact} as version ${v.version} of model ${v.name}: `,
      el("a", { href: modelPage(v.name) }, `follow it on the model's page`), " (it serves in about a minute).");
    done.hidden = false;
  });
  $("#cancel-run").addEventListener("click", (event) => busy(event.target, async () => {
    await api("POST", `/runs/${id}/cancel`);
    await details();
  }));
  $("#delete-run").addEventListener("click", (event) => busy(event.target, async () => {
    if (!confirm("Delete this run with its outputs and log? The activity log keeps its history.")) return;
    await api("DELETE", `/runs/${id}`);
    location.href = `/w/${WS}/runs?deleted=${encodeURIComponent(id.slice(0, 8))}`;
  }));
  let run = await details();
  ready();
  runAgainForm(run).catch((err) => flash(err.message, true));
  await followLog(`${API}/runs/${id}/logs`, $("#run-log"));
  for (let i = 0; i < 60; i++) {
    run = await details();
    if (TERMINAL_RUN.includes(run.status) && run.scoring !== "pending") break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (TERMINAL_RUN.includes(run.status)) await results();
};

// "Run again" in a built version of the run's environment (the same one first), and "Edit and re-run",
// which opens the run form with this run's choices filled in.
async function runAgainForm(r) {
  const form = $("#again-form");
  $("#edit-again").href = `/w/${WS}/runs?again=${encodeURIComponent(r.id)}`;
  let versions = [];
  try {
    versions = (await api("GET", `/workspaces/${r.workspace}/environments/${r.environment}/versions`))
      .items.filter((v) => v.image_digest).sort((a, b) => b.number - a.number);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
  }
  $("#again-version").replaceChildren(...versions.map((v) => el("option", { value: v.number },
    `v${v.number}${v.number === r.version ? " (this run's)" : ""}`)));
  if (versions.some((v) => v.number === r.version)) $("#again-version").value = String(r.version);
  form.hidden = false;
  onSubmit(form, async () => {
    const made = await api("POST", `/runs/${r.id}/rerun`, { json: { version: Number($("#again-version").value || r.version) } });
    location.href = `/w/${WS}/runs/${made.id}`;
  });
}

// datetime-local inputs are read and written as UTC (the page says so): "2026-12-04T15:00"
const toLocalInput = (iso) => (iso ? iso.replace("Z", "").replace("+00:00", "").slice(0, 16) : "");
const fromLocalInput = (value) => (value ? `${value}:00Z` : null);

pages.assignment = async () => {
  const name = body.dataset.assignment;
  const [a, ws] = await Promise.all([api("GET", `/workspaces/${WS}/assignments/${name}`),
    api("GET", `/workspaces/${WS}`)]);
  const manager = MANAGERS.includes(ws.caller_role);
  const policy = { none: "late submissions are accepted as they are",
    penalty: `late submissions lose ${a.late_penalty_percent} %`, refuse: "late submissions are refused" }[a.late_policy];
  const rows = [["Title", a.title || a.name], ["Environment", `${a.environment} v${a.version}`],
    ["Write", el("code", {}, `/outputs/${a.predictions}`)], ["Ranked by", `${a.metric}, ${a.higher_is_better ? "higher" : "lower"} is better`]];
  if (a.opens_at) rows.push(["Opens", `${when(a.opens_at)} UTC`]);
  rows.push(["Due", a.due_at ? `${when(a.due_at)} UTC (${policy})` : "no due date"]);
  rows.push(["Submissions", a.daily_limit ? `${a.daily_limit} per day (UTC)` : "no daily limit"]);
  rows.push(["Leaderboard", a.anonymous ? "anonymous: students see pseudonyms" : "named"]);
  rows.push(["Gradebook counts", `the ${a.grade_by} submission`]);
  rows.push(["Created by", a.created_by]);
  if (a.labels_name) rows.push(["Hidden labels", a.labels_name]);
  if (a.command) rows.push(["Evaluation", el("code", {}, `${a.command.join(" ")} (revision ${a.evaluation_revision})`)]);
  $("#assignment-details").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("#a-deadline").textContent = !a.due_at ? "" : a.past_due ? `The due date has passed (${when(a.due_at)} UTC).`
    : `Due ${when(a.due_at)} UTC.`;
  if (a.instructions_html) {
    // rendered by the server from Markdown with raw HTML escaped and unsafe links dropped
    $("#a-instructions").innerHTML = a.instructions_html;
    $("#a-instructions-box").hidden = false;
  }
  $("#a-starter").hidden = !a.starter_code;
  // JupyterLab in the assignment's environment with the starter code in ~/<assignment>/ (once it is open)
  const sessionButton = $("#a-session");
  sessionButton.hidden = !a.starter_code || Boolean(a.opens_at && Date.parse(a.opens_at) > Date.now());
  sessionButton.addEventListener("click", () => busy(sessionButton, () => startSession(a.environment, a.version, a.name)));
  $("#lb-metric").textContent = a.metric;
  const board = await api("GET", `/workspaces/${WS}/assignments/${name}/leaderboard`);
  $("#lb-split").textContent = board.split === "private"
    ? "Final standings: scores on the private test split (revealed at the due date)."
    : "Scores on the public test split; the private split decides the final standings after the due date.";
  fill("#leaderboard", board.rows.map((r) => [String(r.rank),
    r.you ? el("strong", {}, `${r.username} (you)`) : r.username,
    el("strong", {}, r.score + (r.late ? " (late)" : "")),
    r.run_id && (r.you || manager) ? el("a", { href: `/w/${WS}/runs/${r.run_id}` }, r.run_id.slice(0, 8)) : "",
    when(r.scored_at)]), "No scored runs yet.");

  const book = await api("GET", `/workspaces/${WS}/assignments/${name}/gradebook`);
  $("#gb-note").textContent = manager ? `Every student's ${book.grade_by} submission.`
    : "Your own row: the submission that counts and the feedback on your submissions.";
  $("#gb-csv").hidden = !manager;
  const feedbackCell = (r) => {
    const notes = r.feedback.map((f) => el("p", { class: "feedback" }, `${f.text} (${f.author})`));
    if (!manager) return el("div", {}, ...notes);
    // aria-label, not an .sr-only label: an absolutely placed label inside a table that scrolls sideways
    // is placed by the page, not the table, and widens the page on a phone
    const form = el("form", { class: "feedback-form" },
      el("input", { id: `fb-${r.run_id}`, name: "text", maxlength: "5000", required: true, placeholder: "Feedback",
        "aria-label": `Feedback for ${r.username}` }),
      el("button", { type: "submit" }, "Send"));
    onSubmit(form, async (data) => {
      await api("POST", `/workspaces/${WS}/assignments/${name}/submissions/${r.run_id}/feedback`,
        { json: { text: data.get("text") } });
      flash(`Feedback sent to ${r.username}.`);
      await pages.assignment();
    });
    return el("div", {}, ...notes, form);
  };
  fill("#gradebook", book.rows.map((r) => [r.username, el("strong", {}, r.final_score), r.public_score,
    r.private_score ?? "hidden until the due date", when(r.submitted_at),
    r.late ? `late${r.penalty_percent ? ` (−${r.penalty_percent} %)` : ""}` : "on time", String(r.submissions),
    feedbackCell(r)]), manager ? "No scored submissions yet." : "You have no scored submission yet.");

  if (manager && !$("#a-settings").dataset.wired) {
    const form = $("#a-settings");
    form.dataset.wired = "true";
    $("#a-settings-box").hidden = false;
    $("#s-opens").value = toLocalInput(a.opens_at);
    $("#s-due").value = toLocalInput(a.due_at);
    $("#s-policy").value = a.late_policy;
    $("#s-penalty").value = a.late_penalty_percent;
    $("#s-limit").value = a.daily_limit;
    $("#s-grade").value = a.grade_by;
    $("#s-anon").checked = a.anonymous;
    $("#s-ins").value = a.instructions;
    onSubmit(form, async (data) => {
      await api("PATCH", `/workspaces/${WS}/assignments/${name}`, { json: {
        opens_at: fromLocalInput(data.get("opens_at")), due_at: fromLocalInput(data.get("due_at")),
        late_policy: data.get("late_policy"), late_penalty_percent: Number(data.get("late_penalty_percent") || 0),
        daily_limit: Number(data.get("daily_limit") || 0), grade_by: data.get("grade_by"),
        anonymous: data.get("anonymous") === "on", instructions: data.get("instructions") || "" } });
      flash("Settings saved.");
      await pages.assignment();
    });
  }
};

// --- activity --------------------------------------------------------------------------------------

// What an entry is about, in words and with a link, instead of its raw subject ("runs/<uuid>"); the raw
// subject stays in the cell's title and in the filter.
function describeSubject(e) {
  const d = (e.event && e.event.details) || {};
  const [kind, id = "", , n] = (e.subject || "").split("/");
  const link = (href, text) => el("a", { href }, text);
  if (e.type === "agent.cell" && d.details_json) return describeCell(d.details_json, e.subject);
  const ofVersion = d.environment ? ` of ${d.environment}${d.version ? ` v${d.version}` : ""}` : "";
  switch (kind) {
    case "workspaces": return `workspace ${id}`;
    case "members": return `member ${d.username || id.slice(0, 8)}` +
      (d.role ? ` (${String(d.role).replace(/^ROLE_/, "").toLowerCase()})` : "");
    case "datasets": return `dataset ${d.name || short(id)}`;
    case "environments": return el("span", {}, link(`/w/${WS}/env/${id}`, n ? `${id} v${n}` : `environment ${id}`),
      takenInOrOut(e.type, d));
    case "builds": return d.environment
      ? link(`/w/${WS}/env/${d.environment}`, `build${ofVersion}`) : `build ${id.slice(0, 8)}`;
    case "runs": return link(`/w/${WS}/runs/${id}`, `run ${id.slice(0, 8)}${ofVersion}`);
    case "assignments": return link(`/w/${WS}/assignments/${id}`, `assignment ${id}`);
    case "models": return el("span", {}, link(`/w/${WS}/models/${id}`, n ? `model ${id} v${n}` : `model ${id}`),
      d.detail ? `: ${d.detail}` : "");
    case "invites": return "invite link";
    case "sessions": return link(`/w/${WS}/sessions`, `JupyterLab session${ofVersion}`);
    // anything newer: its kind in words and a short id, never a raw uuid path
    default: return id ? `${kind.replace(/s$/, "").replace(/[-_]/g, " ")} ${/^[0-9a-f-]{20,}$/.test(id) ? id.slice(0, 8) : id}`
      : e.subject;
  }
}

// Where an imported environment came from, and how a version was taken out (issue 16: every import, publish
// and download is in the log), in words.
const EXPORT_WORDS = { "oci-archive": "downloaded as one file", binder: "downloaded as a Binder-ready folder",
  "renv-lock": "renv.lock downloaded", publish: "published to" };
function takenInOrOut(type, d) {
  if (type === "environment.created" && d.imported_from) return `: imported (${d.imported_from})`;
  if (type !== "version.exported") return "";
  const words = EXPORT_WORDS[d.kind] || d.kind || "exported";
  return d.kind === "publish" ? `: ${words} ${d.destination}` : `: ${words}`;
}

// A notebook cell run in a JupyterLab session (the session layer's IPython extension records it in the agent's
// chain): its first lines, how it ended and its output digest, as plain text that wraps on a phone.
function describeCell(detailsJson, subject) {
  let c = {};
  try { c = JSON.parse(detailsJson); } catch { return subject; }
  const how = c.status === "error" ? `failed (${c.error || "error"})` : "ran";
  return `cell [${c.execution_count ?? "?"}] ${how}: ${c.preview || "(empty)"} · output ${String(c.output_sha256 || "").slice(0, 10)}`;
}

pages.activity = async () => {
  await workspaceRole();
  const form = $("#activity-filters");
  const params = new URLSearchParams(location.search);
  for (const key of ["actor", "type", "subject"]) if (params.get(key)) form.elements[key].value = params.get(key);
  let after = 0;
  const types = new Set();
  const query = () => {
    const q = new URLSearchParams({ limit: "200" });
    for (const key of ["actor", "type", "subject"]) if (form.elements[key].value.trim()) q.set(key, form.elements[key].value.trim());
    for (const key of ["since", "until"]) if (form.elements[key].value) q.set(key, new Date(form.elements[key].value + "Z").toISOString());
    return q;
  };
  const row = (e) => el("tr", {}, el("td", {}, String(e.seq)), el("td", {}, when(e.time)), el("td", {}, e.actor_name),
    el("td", {}, el("code", {}, e.type)), el("td", { title: e.subject }, describeSubject(e)), el("td", {}, el("span", { class: "digest", title: e.leaf_hash || e.hash }, (e.leaf_hash || e.hash || "").slice(0, 10))));
  async function load(reset) {
    const q = query();
    if (!reset) q.set("after", String(after));
    const page = await api("GET", `/workspaces/${WS}/activity?${q}`);
    const tbody = $("#activity tbody");
    if (reset) tbody.replaceChildren();
    for (const e of page.items) {
      tbody.append(row(e));
      types.add(e.type);
    }
    if (reset && !page.items.length) fill(tbody, [], "No activity matches these filters.");
    after = page.next_after || 0;
    $("#activity-more").hidden = !page.next_after;
    $("#activity-types").replaceChildren(...[...types].sort().map((t) => el("option", { value: t })));
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form.querySelector("button[type=submit]"), () => load(true));
  });
  form.addEventListener("reset", () => setTimeout(() => busy(form, () => load(true)), 0));
  $("#activity-more").addEventListener("click", (event) => busy(event.target, () => load(false)));
  await load(true);

  const showVerify = (r, what) => {
    const box = $("#verify-result");
    box.replaceChildren(el("p", { class: r.ok ? "flash" : "flash error" },
      r.ok ? `Verified ${what}: ${r.entries} entries` + (r.elided ? ` (${r.elided} of other people, as hashes only)` : "") +
        ` and ${r.checkpoints} signed checkpoints of ${r.workspace}; ` +
        (r.keys_known ? "signed with this platform's keys" : "signed with keys this platform does not know") +
        (r.matches_log === undefined ? "." : r.matches_log ? "; it matches this platform's log." : "; it does NOT match this platform's log.")
        : `Verification failed for ${what}` + (r.line ? ` at line ${r.line}` : "") + `: ${r.reason}`));
  };
  const verify = (data) => api("POST", "/activity/verify", { data, headers: { "Content-Type": "application/x-ndjson" } });
  $("#verify-button").addEventListener("click", (event) => busy(event.target, async () => {
    $("#verify-result").textContent = "Verifying…";
    // verified where it is kept: a check is not an export, so it adds nothing to the log
    showVerify(await api("POST", `/workspaces/${WS}/activity/verify`), "the current log");
  }));
  $("#verify-file").addEventListener("change", (event) => busy(event.target, async () => {
    const file = event.target.files[0];
    if (file) showVerify(await verify(file), file.name);
  }));
};

// --- credentials (write-only) ------------------------------------------------------------------------

// Which fields are secret (write-only, password inputs) and which are options (shown back), per vendor.
const VENDOR_FIELDS = {
  aws: [["access_key_id", "Access key ID", "secret"], ["secret_access_key", "Secret access key", "secret"],
    ["region", "Region", "option"], ["instance_type", "Instance type", "option"]],
  azure: [["client_id", "Client ID", "secret"], ["client_secret", "Client secret", "secret"],
    ["tenant_id", "Tenant ID", "option"], ["subscription_id", "Subscription ID", "option"],
    ["resource_group", "Resource group", "option"], ["location", "Location", "option"]],
  openstack: [["username", "Username", "secret"], ["password", "Password", "secret"],
    ["application_credential_id", "Application credential ID", "secret"],
    ["application_credential_secret", "Application credential secret", "secret"],
    ["auth_url", "Auth URL", "option"], ["project", "Project", "option"], ["region", "Region", "option"]],
};

pages.credentials = async () => {
  const form = $("#credential-form");
  const vendor = $("#c-vendor");
  const renderFields = () => {
    const field = ([key, label, kind]) => el("div", {}, el("label", { for: `c-${key}` }, label),
      el("input", { id: `c-${key}`, name: `${kind}.${key}`, type: kind === "secret" ? "password" : "text",
        autocomplete: kind === "secret" ? "new-password" : "off", spellcheck: "false" }));
    $("#c-secret .cols").replaceChildren(...VENDOR_FIELDS[vendor.value].filter((f) => f[2] === "secret").map(field));
    $("#c-option-fields").replaceChildren(...VENDOR_FIELDS[vendor.value].filter((f) => f[2] === "option").map(field));
  };
  vendor.addEventListener("change", renderFields);
  renderFields();
  const wsSelect = $("#c-ws");
  const list = async () => {
    const ws = wsSelect.value;
    try {
      const creds = await api("GET", `/me/credentials?workspace=${encodeURIComponent(ws)}`);
      fill("#credentials", (creds.items || []).map((c) => [c.vendor, c.workspace || ws,
        `${(c.secret_fields || []).join(", ") || "—"}` + (c.key_hint ? ` (key ${c.key_hint})` : ""),
        Object.entries(c.options || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—",
        when(c.updated_at || c.created_at),
        el("button", { type: "button", class: "danger small", "data-delete": c.vendor,
          "aria-label": `Delete ${c.vendor} credentials for ${ws}` }, "Delete")]), `None saved for ${ws}.`);
    } catch (err) {
      fill("#credentials", [], err.message);
    }
  };
  const workspaces = await api("GET", "/workspaces");
  wsSelect.replaceChildren(...workspaces.items.map((w) => el("option", { value: w.slug }, `${w.slug} – ${w.title}`)));
  const wanted = new URLSearchParams(location.search).get("workspace");
  if (wanted) wsSelect.value = wanted;
  wsSelect.addEventListener("change", () => busy(wsSelect, list));
  $("#credentials").addEventListener("click", (event) => {
    const target = event.target.closest("button[data-delete]");
    if (!target) return;
    busy(target, async () => {
      const ws = wsSelect.value;
      await api("DELETE", `/me/credentials/${target.dataset.delete}?workspace=${encodeURIComponent(ws)}`);
      flash(`Deleted ${target.dataset.delete} credentials for ${ws}.`);
      await list();
    });
  });
  await list();
  onSubmit(form, async (data) => {
    const secret = {};
    const options = {};
    for (const [key, value] of data.entries()) {
      if (key.startsWith("secret.") && value.trim()) secret[key.slice(7)] = value.trim();
      if (key.startsWith("option.") && value.trim()) options[key.slice(7)] = value.trim();
    }
    for (const line of lines(data.get("options") || "")) {
      const [k, ...rest] = line.split("=");
      if (!rest.length) throw new Error(`option "${line}" is not key=value`);
      options[k.trim()] = rest.join("=").trim();
    }
    const ws = data.get("workspace");
    await api("PUT", `/me/credentials/${vendor.value}?workspace=${encodeURIComponent(ws)}`, { json: { secret, options } });
    // write-only: the secret leaves the page and is never shown again
    $$("#c-secret input, #c-option-fields input").forEach((input) => { input.value = ""; });
    $("#c-options").value = "";
    flash(`Saved ${vendor.value} credentials for ${ws}. They cannot be shown again; save again to replace them.`);
    await list();
  });
};

// --- package indexes (write-only secrets) --------------------------------------------------------------

pages.package_indexes = async () => {
  const ws = body.dataset.ws;
  const base = `/workspaces/${encodeURIComponent(ws)}/package-indexes`;
  const list = async () => {
    try {
      const found = await api("GET", base);
      fill("#indexes", (found.items || []).map((i) => [i.name, i.kind, String(i.priority), i.url,
        i.has_secret ? `user ${i.username}` : "none",
        el("button", { type: "button", class: "danger small", "data-delete": i.name,
          "aria-label": `Delete index ${i.name}` }, "Delete")]), "No indexes: packages come from PyPI.");
    } catch (err) {
      fill("#indexes", [], err.message);
    }
  };
  $("#indexes").addEventListener("click", (event) => {
    const target = event.target.closest("button[data-delete]");
    if (!target) return;
    busy(target, async () => {
      await api("DELETE", `${base}/${encodeURIComponent(target.dataset.delete)}`);
      flash(`Deleted index ${target.dataset.delete}.`);
      await list();
    });
  });
  await list();
  onSubmit($("#index-form"), async (data) => {
    const name = data.get("name").trim();
    const json = { url: data.get("url").trim(), kind: data.get("kind"), priority: Number(data.get("priority") || 0),
      username: data.get("username").trim(), password: data.get("password"), token: data.get("token") };
    await api("PUT", `${base}/${encodeURIComponent(name)}`, { json });
    // write-only: the secret leaves the page and is never shown again
    $("#ix-password").value = "";
    $("#ix-token").value = "";
    flash(`Saved index ${name}. Its password or token cannot be shown again; save again to replace it.`);
    await list();
  });
};

// --- registries: the workspace's logins to external registries, for publishing (write-only secrets) ----------

pages.registries = async () => {
  const base = `/workspaces/${encodeURIComponent(WS)}/registry-credentials`;
  const list = async () => {
    try {
      const found = await api("GET", base);
      fill("#registries", (found.items || []).map((c) => [c.registry, c.username, c.created_by, when(c.created_at),
        el("button", { type: "button", class: "danger small", "data-delete": c.registry,
          "aria-label": `Remove the login to ${c.registry}` }, "Remove")]),
      "No logins yet: add one below to publish environments to another registry.");
    } catch (err) {
      fill("#registries", [], err.message);
    }
  };
  $("#registries").addEventListener("click", (event) => {
    const target = event.target.closest("button[data-delete]");
    if (!target) return;
    busy(target, async () => {
      if (!confirm(`Remove the workspace's login to ${target.dataset.delete}?`)) return;
      await api("DELETE", `${base}/${encodeURIComponent(target.dataset.delete)}`);
      flash(`Removed the login to ${target.dataset.delete}.`);
      await list();
    });
  });
  await list();
  onSubmit($("#registry-form"), async (data) => {
    const host = data.get("registry").trim().replace(/^https?:\/\//, "").replace(/\/+$/, "");
    const json = { username: data.get("username").trim(), password: data.get("password") };
    // write-only: the secret leaves the page before anything else can go wrong
    $("#rg-password").value = "";
    await api("PUT", `${base}/${encodeURIComponent(host)}`, { json });
    $("#registry-form").reset();
    flash(`Saved the login to ${host}. Its password cannot be shown again; save again to replace it.`);
    await list();
  });
};

// --- sessions: JupyterLab in a built version's image, opened through the gateway's /sessions/{id}/ ------

const ACTIVE_SESSION = ["starting", "running", "stopping"];

// Starting answers at once ("starting"); the sessions page follows it until JupyterLab answers. A second
// session of the same version is refused (409): the page then shows the one already there.
async function startSession(envName, version, assignment = "") {
  try {
    const s = await api("POST", `/workspaces/${WS}/sessions`,
      { json: { environment: envName, version, ...(assignment ? { assignment } : {}) } });
    location.href = `/w/${WS}/sessions?started=${encodeURIComponent(s.id)}`;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) throw err;
    location.href = `/w/${WS}/sessions?already=${encodeURIComponent(envName)}`;
  }
}

function idleText(s) {
  if (s.status !== "running" || !s.last_activity) return "—";
  const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(s.last_activity)) / 1000));
  const idle = seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min`;
  return s.idle_timeout_seconds ? `${idle} (stops after ${Math.round(s.idle_timeout_seconds / 60)} min idle)` : idle;
}

pages.sessions = async () => {
  const params = new URLSearchParams(location.search);
  const started = params.get("started");
  if (started) flash("Starting JupyterLab… The first session of a version prepares its notebook layer (about a minute).");
  if (params.get("already")) flash(`You already have a session of ${params.get("already")}: open it below or stop it first.`);
  const { manager } = await workspaceRole();
  const limits = { policy: await api("GET", `/workspaces/${WS}/session-settings`) };
  // the owner opens a session; the workspace's instructors too when its policy lets them (else the gateway says 404)
  const mayOpen = (s) => s.owner_username === body.dataset.user || (manager && limits.policy.instructors_may_open);
  let announced = false;
  const show = async () => {
    const list = (await api("GET", `/workspaces/${WS}/sessions`)).items
      .sort((a, b) => String(b.created).localeCompare(String(a.created)));
    fill("#sessions-table", list.map((s) => [
      el("span", {}, el("a", { href: `/w/${WS}/env/${s.environment}` }, s.environment), ` v${s.version}`),
      s.owner_username,
      [badge(s.status), s.error ? ` ${s.error}` : ""],
      when(s.created) || "—",
      el("span", { class: s.cull_warning ? "cull-warning" : "" }, idleText(s)),
      s.status === "running" || ACTIVE_SESSION.includes(s.status) ? [
        s.status === "running" && mayOpen(s) ? el("a", { href: `${s.url}lab`, class: "button small", target: "_blank", rel: "noopener",
          "aria-label": `Open the session of ${s.environment} v${s.version} in JupyterLab` }, "Open") : "",
        s.status === "running" && s.owner_username === body.dataset.user ? [" ", el("button", { type: "button",
          class: "secondary small", "data-save": s.id,
          "aria-label": `Save what you installed in the session of ${s.environment} v${s.version} as a new version` },
          "Save as a new version")] : "",
        " ", el("button", { type: "button", class: "danger small", "data-stop": s.id,
          "aria-label": `Stop the session of ${s.environment} v${s.version}` }, "Stop")] : ""]),
    "No sessions yet.");
    // the warning before an idle session is stopped: its files stay, but the running kernels do not
    $("#cull-warnings").replaceChildren(...list.filter((s) => s.status === "running" && s.cull_warning).map((s) =>
      el("p", { class: "flash error cull-warning", role: "alert", "data-session": s.id },
        `Your session of ${s.environment} v${s.version} has been idle and will be stopped in about ` +
        `${Math.max(1, Math.round((s.cull_in_seconds || 0) / 60))} min. Use it (run a cell) to keep it; ` +
        "your files stay in your home folder either way.")));
    const mine = started && list.find((s) => s.id === started);
    if (mine && !announced && mine.status === "running") {
      announced = true;
      flash(`JupyterLab is ready: ${mine.environment} v${mine.version}. Open it from the table.`);
    } else if (mine && !announced && mine.status === "failed") {
      announced = true;
      flash(`The session could not start: ${mine.error || "see the runner's log"}`, true);
    }
    return list;
  };
  // "Save as a new version": what was installed in the session becomes a derived version (in the student's
  // fork when they cannot change the environment) whose build starts at once; shown with a link to follow it.
  const saved = (r) => {
    const build = r.build;
    const link = el("a", { href: `/w/${WS}/env/${encodeURIComponent(r.version.environment)}` +
      (build ? `?build=${encodeURIComponent(build.id)}` : "") }, `${r.version.environment} v${r.version.number}`);
    const changes = Object.entries(r.changes).flatMap(([kind, d]) => [
      ...Object.entries(d.added || {}).map(([n, v]) => `+ ${kind} ${n} ${v}`),
      ...Object.entries(d.removed || {}).map(([n, v]) => `− ${kind} ${n} ${v}`),
      ...Object.entries(d.changed || {}).map(([n, v]) => `${kind} ${n} ${v[0]} → ${v[1]}`)]);
    $("#saved-version").replaceChildren(el("p", { class: "flash", role: "status", "data-version":
      `${r.version.environment}/v${r.version.number}` },
      "Saved as ", link, r.forked ? " (your fork)" : "", ` from ${r.source}: ${changes.join(", ")}. `,
      build ? ["Build ", badge(build.status), " ", el("a", { href: link.getAttribute("href"), "data-build": build.id },
        "follow the build")] : "Not built yet."));
    $("#saved-version").hidden = false;
  };
  $("#sessions-table").addEventListener("click", (event) => {
    const save = event.target.closest("button[data-save]");
    if (save) busy(save, async () => {
      flash("Saving what you installed as a new version…");
      saved(await api("POST", `/workspaces/${WS}/sessions/${save.dataset.save}/capture`, { json: {} }));
      flash("Saved as a new version; its build has started.");
    });
    const target = event.target.closest("button[data-stop]");
    if (target) busy(target, async () => {
      await api("DELETE", `/workspaces/${WS}/sessions/${target.dataset.stop}`);
      flash("Stopping the session; the files in your home folder stay.");
      await show();
    });
  });
  await show();
  setInterval(() => show().catch((err) => flash(err.message, true)), 3000);
  sessionLimits(manager, limits, show);
};

// The workspace's session policy in words for everyone; instructors and admins change it here.
function limitsText(p) {
  const idle = p.idle_timeout_seconds
    ? `Idle sessions stop after ${p.idle_timeout_seconds % 60 ? `${p.idle_timeout_seconds} s`
      : `${p.idle_timeout_seconds / 60} min`} (a warning comes first; the files in your home folder stay).`
    : "Idle sessions are never stopped.";
  const per = `${p.max_per_environment} session${p.max_per_environment === 1 ? "" : "s"} per student and environment.`;
  const net = p.network === "none" ? "No network inside a session: packages cannot be installed from the index."
    : "Inside a session only the package index can be reached.";
  const who = p.instructors_may_open ? "Instructors and admins of the workspace may open a student's session to help."
    : "Only its owner can open a session.";
  return `${idle} ${per} ${net} ${who} CPU and memory are the environment's own resources, as for runs.`;
}

// ``limits.policy`` is kept current for the table's Open links; ``refresh`` redraws the table.
function sessionLimits(manager, limits, refresh) {
  const url = `/workspaces/${WS}/session-settings`;
  const show = (p) => {
    limits.policy = p;
    $("#session-limits").textContent = limitsText(p);
    if (!manager) return;
    $("#ss-idle").value = Math.round(p.idle_timeout_seconds / 60);
    $("#ss-max").value = p.max_per_environment;
    $("#ss-net").value = p.network;
    $("#ss-open").checked = p.instructors_may_open;
  };
  show(limits.policy);
  onSubmit($("#session-settings-form"), async (data) => {
    const json = { idle_timeout_seconds: Number(data.get("idle")) * 60, max_per_environment: Number(data.get("max")),
      network: data.get("network"), instructors_may_open: data.get("open") === "on" };
    show(await api("PUT", url, { json }));
    flash("Saved. Running sessions follow the new idle limit at once; the other limits apply to sessions started "
      + "from now on.");
    await refresh();
  });
}

// --- models: a run's output served as a web service (issue 15) -----------------------------------------

const MODEL_FILE = /(\.joblib|\.pkl|\.pickle|\.onnx|(^|\/)score\.py)$/i;

// The model name the API would take from a file name (outputs/Iris_Model.joblib → iris-model).
function defaultModelName(artifact) {
  const parts = artifact.split("/");
  const file = parts[parts.length - 1];
  const stem = file === "score.py" && parts.length > 1 ? parts[parts.length - 2] : file.replace(/\.[^.]*$/, "");
  const name = stem.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").replace(/^[^a-z]+/, "")
    .slice(0, 63).replace(/-+$/, "");
  return name || "model";
}

const modelPage = (name) => `/w/${WS}/models/${encodeURIComponent(name)}`;
const modelState = (m) => {
  const active = m.versions.find((v) => v.version === m.active_version);
  return active ? active.state : (m.versions[m.versions.length - 1] || {}).state || "stopped";
};
const runLink = (id) => el("a", { href: `/w/${WS}/runs/${id}`, class: "mono" }, id.slice(0, 8));

pages.models = async () => {
  const list = await api("GET", `/workspaces/${WS}/models`);
  fill("#models-table", list.items.map((m) => {
    const active = m.versions.find((v) => v.version === m.active_version);
    const shown = active || m.versions[m.versions.length - 1];
    return [el("a", { href: modelPage(m.name) }, m.name),
      active ? `version ${active.version} of ${m.versions.length}` : "none",
      badge(modelState(m)), shown ? runLink(shown.run_id) : "—",
      el("code", { class: "url" }, location.origin + m.url)];
  }), "No models yet: open a finished run that saved a model file (.joblib, .pkl, .onnx or score.py) and press "
    + "“Deploy as a model” beside the file.");
};

// --- tiny SVG charts: no library; every series, band and bar carries a data- attribute to be counted ---

const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1d4ed8", "#b45309", "#047857", "#9333ea", "#be123c", "#0e7490", "#4d7c0f", "#6b7280"];

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const num = (v) => typeof v === "number" && Number.isFinite(v);
// 3 significant digits, no exponent for the numbers people read here (a p-value is said "below 0.001")
const fmt = (v) => (!num(v) ? "—" : Math.abs(v) >= 1000 || v === Math.round(v) ? String(Math.round(v * 100) / 100)
  : Math.abs(v) < 0.001 ? v.toExponential(1) : String(Number(v.toPrecision(3))));

// A chart over windows (x: their index): lines (with optional min–max bands), dashed reference lines and
// stacked bars. opts: {labels, lines: [{name, values, lo?, hi?, color}], refs: [{name, value, color}],
// stacks: [{name, values, color}] (each a share 0..1 per window), yMin?, yMax?, title}.
function chart({ labels, lines = [], refs = [], stacks = [], yMin, yMax, title, percent = false }) {
  const W = 420;
  const H = 190;
  const L = 44;
  const R = 10;
  const T = 12;
  const B = 30;
  const n = Math.max(labels.length, 1);
  const all = [...lines.flatMap((s) => [...s.values, ...(s.lo || []), ...(s.hi || [])]), ...refs.map((r) => r.value)]
    .filter(num);
  let lo = yMin ?? (all.length ? Math.min(...all) : 0);
  let hi = yMax ?? (all.length ? Math.max(...all) : 1);
  if (hi === lo) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
  const step = (W - L - R) / n;
  const x = (i) => L + step * (i + 0.5);
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const tick = (v) => (percent ? `${Math.round(v * 100)}%` : fmt(v));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, class: "chart" },
    svg("title", {}, title),
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }),
    svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }),
    [hi, (hi + lo) / 2, lo].map((v) => svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", class: "tick" }, tick(v))));
  // at most ~8 labels on the x axis, always the first and the last
  const every = Math.ceil(labels.length / 8);
  const lastLabel = labels.length - 1;
  labels.forEach((label, i) => {
    if ((i % every === 0 && i + every <= lastLabel) || i === lastLabel) {
      root.append(svg("text", { x: x(i), y: H - B + 16, "text-anchor": "middle", class: "tick" }, label));
    }
  });
  stacks.forEach((s, k) => {
    s.values.forEach((v, i) => {
      if (!num(v) || v <= 0) return;
      const below = stacks.slice(0, k).reduce((sum, o) => sum + (num(o.values[i]) ? o.values[i] : 0), 0);
      const top = y(below + v);
      root.append(svg("rect", { x: x(i) - step * 0.35, y: top, width: step * 0.7, height: Math.max(0.5, y(below) - top),
        fill: s.color, "data-bar": s.name, "data-window": labels[i] }, svg("title", {}, `${labels[i]}: ${s.name} ${tick(v)}`)));
    });
  });
  for (const r of refs) {
    if (!num(r.value)) continue;
    root.append(svg("line", { x1: L, x2: W - R, y1: y(r.value), y2: y(r.value), stroke: r.color, "stroke-width": 2,
      "stroke-dasharray": "6 4", "data-series": r.name }, svg("title", {}, `${r.name}: ${fmt(r.value)}`)));
  }
  for (const s of lines) {
    if (s.lo && s.hi) {
      const idx = s.values.map((_, i) => i).filter((i) => num(s.lo[i]) && num(s.hi[i]));
      if (idx.length) {
        const pts = [...idx.map((i) => [x(i) - (idx.length === 1 ? step * 0.2 : 0), y(s.hi[i])]),
          ...idx.slice().reverse().map((i) => [x(i) + (idx.length === 1 ? step * 0.2 : 0), y(s.lo[i])])];
        if (idx.length === 1) pts.splice(1, 0, [x(idx[0]) + step * 0.2, y(s.hi[idx[0]])]);
        if (idx.length === 1) pts.push([x(idx[0]) - step * 0.2, y(s.lo[idx[0]])]);
        root.append(svg("polygon", { points: pts.map((p) => p.join(",")).join(" "), fill: s.color, "fill-opacity": 0.15,
          "data-band": s.name }));
      }
    }
    const pts = s.values.map((v, i) => [i, v]).filter(([, v]) => num(v));
    if (!pts.length) continue;
    root.append(svg("g", { "data-series": s.name },
      svg("polyline", { points: pts.map(([i, v]) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: s.color,
        "stroke-width": 2 }),
      pts.map(([i, v]) => svg("circle", { cx: x(i), cy: y(v), r: 3.5, fill: s.color },
        svg("title", {}, `${labels[i]}: ${s.name} ${tick(v)}`)))));
  }
  return root;
}

function legend(items) {
  return el("ul", { class: "legend" }, items.map(([name, color, dashed]) =>
    el("li", {}, el("span", { class: dashed ? "swatch dashed" : "swatch", "data-color": color }), name)));
}

// the legend's swatches take their colour from script (no inline style attribute: the CSP forbids it)
function paintSwatches(root) {
  $$(".swatch", root).forEach((s) => {
    if (s.classList.contains("dashed")) s.style.borderTopColor = s.dataset.color;
    else s.style.backgroundColor = s.dataset.color;
  });
}

const hourOf = (iso) => iso.slice(11, 16);
const dayOf = (iso) => iso.slice(0, 10);
const windowLabel = (iso, window) => (window === "day" ? dayOf(iso).slice(5) : hourOf(iso));
const windowWords = (iso, window) => (window === "day" ? `the day of ${dayOf(iso)} (UTC)`
  : `the hour from ${hourOf(iso)} on ${dayOf(iso)} (UTC)`);
const TESTS = { ks: "Kolmogorov–Smirnov", chi2: "chi-squared", z: "Z-test", wasserstein: "Wasserstein distance",
  jensenshannon: "Jensen–Shannon distance" };
const testWords = (f) => (["ks", "chi2", "z"].includes(f.test)
  ? `${TESTS[f.test] || f.test} p ${num(f.score) && f.score < 0.001 ? "< 0.001" : `= ${fmt(f.score)}`} `
    + `(drift below ${fmt(f.threshold)})`
  : `${TESTS[f.test] || f.test} ${fmt(f.score)} (drift from ${fmt(f.threshold)})`);

// The banner: the most recent alerts in words, with the window's drift when the report has it.
function alertBanner(report) {
  const box = $("#model-alerts");
  const alerts = [...report.alerts].sort((a, b) => String(b.window_start).localeCompare(String(a.window_start)));
  if (!alerts.length) {
    box.replaceChildren();
    return;
  }
  const byStart = Object.fromEntries(report.windows.map((w) => [w.start, w]));
  const words = (a) => {
    const w = byStart[a.window_start];
    const d = w && w.drift;
    if (a.kind === "drift" && d) {
      const names = d.features.filter((f) => f.drifted).map((f) => f.feature).join(", ");
      return `Input drift detected in ${windowWords(a.window_start, report.window)}: ${d.drifted_count} of `
        + `${d.features.length} features drifted (${names}). The requests no longer look like the training data.`;
    }
    if (a.kind === "drift") return `Input drift detected (version ${a.version}): ${a.detail}.`;
    return `Accuracy fell (version ${a.version}): ${a.detail}.`;
  };
  const shown = alerts.slice(0, 3);
  box.replaceChildren(el("div", { class: "alert-banner" },
    shown.map((a) => el("p", { "data-alert": a.kind }, words(a))),
    alerts.length > shown.length ? el("p", {}, `… and ${alerts.length - shown.length} earlier alert(s), listed under Monitoring.`)
      : ""));
}

function renderMonitoring(report, model) {
  const box = $("#monitoring");
  const window = report.window;
  const predictUrl = `${location.origin}${model.url}/predict`;
  $("#mon-updated").textContent = report.updated ? `Report of ${when(report.updated)} UTC.` : "No report made yet.";
  const windows = report.windows || [];
  $("#mon-reference").textContent = report.reference
    ? `Compared with the training data: ${report.reference.dataset} (${report.reference.rows} rows), a dataset of the run.`
    : windows.length ? "No training data to compare with: none of the run's datasets (CSV, TSV, Parquet) has columns "
      + "that match the model's inputs, so there are statistics below but no drift." : "";
  alertBanner(report);
  if (!windows.length) {
    box.replaceChildren(el("p", { class: "empty" }, `No traffic yet: send a prediction to ${predictUrl} (“Try it” above, or `
      + "a program with an API key). Requests are summarised every few minutes"
      + (canManageModel ? "; “Check now” does it at once." : ".")));
    return;
  }
  const starts = windows.map((w) => w.start);
  const labels = starts.map((s) => windowLabel(s, window));
  const parts = [];

  // inputs: each feature's mean per window, its lowest-to-highest band, the training data's mean
  const features = report.features || [];
  parts.push(el("h3", {}, "Inputs"), el("p", { class: "hint" }, `Requests per ${window}: `
    + windows.map((w, i) => `${labels[i]} ${w.count}`).join(", ") + "."));
  const grid = el("div", { class: "charts" });
  features.forEach((f) => {
    const per = starts.map((s) => ((report.stats || {})[s] || {})[f] || {});
    const ref = (report.reference_stats || {})[f];
    const color = PALETTE[0];
    const lines = [{ name: "mean", values: per.map((p) => p.mean), lo: per.map((p) => p.min), hi: per.map((p) => p.max), color }];
    const refs = ref && num(ref.mean) ? [{ name: "training mean", value: ref.mean, color: "#6b7280" }] : [];
    const last = per[per.length - 1];
    grid.append(el("figure", { class: "chart-box", "data-feature": f },
      chart({ labels, lines, refs, title: `${f}: mean per ${window} with its lowest to highest value`
        + (refs.length ? `, beside the training data's mean ${fmt(ref.mean)}` : "") }),
      el("figcaption", {}, el("strong", {}, f), ` – last ${window}: mean ${fmt(last.mean)}, from ${fmt(last.min)} to `
        + `${fmt(last.max)}` + (num(last.missing_share) && last.missing_share > 0 ? `, ${Math.round(last.missing_share * 100)}% missing` : "")
        + (refs.length ? `; training data: mean ${fmt(ref.mean)}, from ${fmt(ref.min)} to ${fmt(ref.max)}` : ""))));
  });
  parts.push(legend([["mean of the requests", PALETTE[0]], ["lowest to highest (band)", "#bfdbfe"],
    ["mean of the training data", "#6b7280", true]]), grid);

  // drift per window
  parts.push(el("h3", {}, "Drift"));
  if (!report.reference) {
    parts.push(el("p", { class: "hint" }, "No drift without training data to compare with."));
  } else {
    const table = el("table", { class: "data", id: "drift-table" }, el("caption", { class: "sr-only" }, "Drift per window"),
      el("thead", {}, el("tr", {}, [window === "day" ? "Day (UTC)" : "Hour from (UTC)", "Requests", "Drift",
        "Features that drifted"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody"));
    fill(table.querySelector("tbody"), windows.slice().reverse().map((w) => {
      const d = w.drift;
      const at = window === "day" ? dayOf(w.start) : `${dayOf(w.start)} ${hourOf(w.start)}`;
      if (!d) return [at, String(w.count), "—", "not tested"];
      const drifted = d.features.filter((f) => f.drifted);
      return [at, String(w.count),
        d.drifted ? el("span", { class: "badge bad" }, `drifted: ${d.drifted_count} of ${d.features.length}`)
          : el("span", { class: "badge ok" }, `no drift (${d.drifted_count} of ${d.features.length})`),
        drifted.length ? el("ul", { class: "plain" }, drifted.map((f) => el("li", {}, el("strong", {}, f.feature), `: ${testWords(f)}`)))
          : "none"];
    }), "No windows.");
    parts.push(table);
  }

  // predictions: share of each class per window (stacked bars), or a regressor's distribution; accuracy
  const preds = report.predictions || [];
  parts.push(el("h3", {}, "Predictions"));
  const predCharts = el("div", { class: "charts" });
  parts.push(predCharts);
  const classes = [...new Set(preds.flatMap((p) => Object.keys(p.class_shares || {})))].sort();
  if (classes.length) {
    const pl = preds.map((p) => windowLabel(p.start, window));
    const stacks = classes.map((c, k) => ({ name: c, color: PALETTE[k % PALETTE.length],
      values: preds.map((p) => (p.class_shares || {})[c] ?? 0) }));
    predCharts.append(el("figure", { class: "chart-box", id: "class-shares" },
      chart({ labels: pl, stacks, yMin: 0, yMax: 1, percent: true, title: `Share of each predicted class per ${window}` }),
      el("figcaption", {}, `Share of each predicted class per ${window}; last ${window}: `
        + classes.map((c) => `${c} ${Math.round(((preds[preds.length - 1].class_shares || {})[c] || 0) * 100)}%`).join(", ")),
      legend(classes.map((c, k) => [`class ${c}`, PALETTE[k % PALETTE.length]]))));
  } else if (preds.some((p) => p.distribution)) {
    const pl = preds.map((p) => windowLabel(p.start, window));
    const dist = preds.map((p) => p.distribution || {});
    predCharts.append(el("figure", { class: "chart-box", id: "prediction-distribution" },
      chart({ labels: pl, lines: [{ name: "mean prediction", values: dist.map((d) => d.mean), lo: dist.map((d) => d.min),
        hi: dist.map((d) => d.max), color: PALETTE[2] }], title: `Predicted values per ${window}: mean, lowest to highest` }),
      el("figcaption", {}, `Predicted values per ${window}: mean (line), lowest to highest (band).`)));
  } else {
    parts.push(el("p", { class: "hint" }, "No predictions summarised yet."));
  }
  const labelled = preds.filter((p) => num(p.accuracy) || num(p.mae));
  if (labelled.length) {
    const pl = preds.map((p) => windowLabel(p.start, window));
    const isAcc = labelled.some((p) => num(p.accuracy));
    predCharts.append(el("figure", { class: "chart-box", id: "accuracy" },
      chart({ labels: pl, lines: [{ name: isAcc ? "accuracy" : "mean absolute error",
        values: preds.map((p) => (isAcc ? p.accuracy : p.mae)), color: PALETTE[4] }],
      ...(isAcc ? { yMin: 0, yMax: 1, percent: true } : {}),
      title: isAcc ? `Accuracy per ${window} on the true labels sent back` : `Mean absolute error per ${window}` }),
      el("figcaption", {}, (isAcc ? "Accuracy" : "Mean absolute error") + ` per ${window}, on `
        + `${labelled.reduce((s, p) => s + (p.labelled || 0), 0)} true labels sent back.`)));
  } else {
    parts.push(el("p", { class: "hint", id: "no-labels" }, "No true labels yet, so no accuracy: send them later to "
      + `${location.origin}/serve/${WS}/${model.name}/feedback as {"labels": {"<request id>": <true label>}} `
      + "(the request id is the X-Request-Id of the prediction's answer)."));
  }

  // every alert, newest first
  const alerts = [...report.alerts].sort((a, b) => String(b.created || b.window_start).localeCompare(String(a.created || a.window_start)));
  parts.push(el("h3", {}, "Alerts"), alerts.length
    ? el("ul", { id: "alert-list" }, alerts.map((a) => el("li", {}, badge(a.kind === "drift" ? "drift" : "accuracy"),
      ` version ${a.version}, ${windowWords(a.window_start, report.window)}: ${a.detail}`)))
    : el("p", { class: "hint" }, "No alerts: the inputs look like the training data."));
  box.replaceChildren(...parts);
  paintSwatches(box);
}

let canManageModel = false;

pages.model = async () => {
  const name = body.dataset.model;
  const base = `/workspaces/${WS}/models/${encodeURIComponent(name)}`;
  const runs = {};
  const runOf = async (id) => {
    if (!(id in runs)) {
      runs[id] = api("GET", `/runs/${id}`).catch(() => null);  // a student may not see an instructor's run
    }
    return runs[id];
  };
  let model = null;
  let report = null;

  const showModel = async () => {
    const ws = await api("GET", `/workspaces/${WS}`);
    model = await api("GET", base);
    canManageModel = MANAGERS.includes(ws.caller_role) || model.versions.some((v) => v.created_by === body.dataset.user);
    $$("[data-manage]").forEach((node) => { node.hidden = !canManageModel; });
    const active = model.versions.find((v) => v.version === model.active_version);
    const url = location.origin + model.url;
    const details = [
      ["Serving", active ? el("span", {}, `version ${active.version} `, badge(active.state)) : el("span", {}, "nothing ", badge(modelState(model)))],
      ["Address", el("code", { class: "url", id: "model-url" }, url)],
      ["Predict", el("code", { class: "url" }, `POST ${url}/predict {"rows": [[…], …]}`)],
      ["Protocol", el("span", {}, "Open Inference Protocol v2: ", el("code", { class: "url" }, `${url}/infer`), " with typed tensors")],
    ];
    if (active) details.push(["Trained by run", runLink(active.run_id)], ["Deployed by", `${active.created_by}, ${when(active.created)}`]);
    $("#model-details").replaceChildren(...details.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const rows = await Promise.all([...model.versions].reverse().map(async (v) => {
      const run = await runOf(v.run_id);
      const actions = [];
      if (canManageModel && v.state === "serving" && !v.active) {
        const older = model.active_version !== null && v.version < model.active_version;
        actions.push(el("button", { type: "button", class: "secondary small", "data-activate": v.version },
          older ? `Roll back to v${v.version}` : "Make active"));
      }
      const digest = (v.image.split("@")[1] || "");
      return [el("span", { "data-version": v.version }, `v${v.version}`, v.active ? el("small", {}, "active") : ""),
        [badge(v.state), v.error ? el("small", { class: "error-text" }, v.error) : ""],
        runLink(v.run_id),
        run ? `${run.environment} v${run.version}` : "—",
        el("span", { class: "digest", title: v.image }, short(digest) || v.image),
        el("code", {}, v.artifact), `${v.created_by}, ${when(v.created)}`, actions.length ? actions : "—"];
    }));
    fill("#versions-table", rows, "No versions.");
    $("#stop-model").hidden = !model.versions.some((v) => ["serving", "deploying"].includes(v.state));
    return model;
  };

  const showKeys = async () => {
    if (!canManageModel) return;
    const keys = await api("GET", `${base}/keys`);
    fill("#keys-table", keys.items.map((k) => [el("code", {}, `${k.prefix}…`), k.label || "—", k.created_by, when(k.created),
      k.rate_per_minute ? String(k.rate_per_minute) : "default", k.revoked ? badge("revoked") : badge("active"),
      k.revoked ? "—" : el("button", { type: "button", class: "danger small", "data-revoke": k.id,
        "aria-label": `Revoke the key starting ${k.prefix}` }, "Revoke")]), "No keys yet.");
  };

  const showMonitoring = async (runNow = false) => {
    const window = $("#mon-window").value;
    report = await api(runNow ? "POST" : "GET", `${base}/monitoring?window=${window}`);
    renderMonitoring(report, model);
    // an example row for "Try it": the training data's means, when there is training data
    const rows = $("#try-rows");
    const ref = report.reference_stats || {};
    if (!rows.value && report.features.length && report.features.every((f) => ref[f] && num(ref[f].mean))) {
      rows.value = JSON.stringify([report.features.map((f) => Math.round(ref[f].mean * 100) / 100)]);
      $("#try-rows-hint").textContent = `In this order: ${report.features.join(", ")}. The example is the training data's average row.`;
    }
  };

  await showModel();
  await showKeys();
  if (!$("#try-rows-hint").textContent) {
    $("#try-rows-hint").textContent = "e.g. [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]: one inner list per row, "
      + "the features in the order the model was trained with.";
  }
  try {
    await showMonitoring();
  } catch (err) {
    $("#monitoring").replaceChildren(el("p", { class: "hint" }, `No monitoring report: ${err.message}`));
  }

  $("#versions-table").addEventListener("click", (event) => {
    const target = event.target.closest("button[data-activate]");
    if (!target) return;
    busy(target, async () => {
      const v = await api("POST", `${base}/rollback`, { json: { version: Number(target.dataset.activate) } });
      flash(`Version ${v.version} now answers at the model's address.`);
      await showModel();
    });
  });
  $("#stop-model").addEventListener("click", (event) => busy(event.target, async () => {
    if (!confirm(`Stop serving ${name}? Every version stops and its address answers “not found”; the history stays.`)) return;
    await api("DELETE", base);
    flash(`Model ${name} stopped. Deploy it again from a run to serve it.`);
    await showModel();
  }));
  onSubmit($("#key-form"), async (data, form) => {
    const made = await api("POST", `${base}/keys`, { json: { label: data.get("label").trim(),
      rate_per_minute: Number(data.get("rate") || 0) } });
    form.reset();
    $("#new-key-value").value = made.secret;
    $("#new-key").hidden = false;
    $("#try-key").value = made.secret;  // ready for "Try it"; it stays in this page only
    flash(`Key ${made.prefix}… created. Copy it now: it is not shown again.`);
    await showKeys();
  });
  $("#copy-key").addEventListener("click", async () => {
    const input = $("#new-key-value");
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      flash("Key copied.");
    } catch {
      flash("Selected: press Ctrl+C (or ⌘C) to copy it.");
    }
  });
  $("#keys-table").addEventListener("click", (event) => {
    const target = event.target.closest("button[data-revoke]");
    if (!target) return;
    busy(target, async () => {
      await api("DELETE", `${base}/keys/${target.dataset.revoke}`);
      flash("Key revoked: requests with it are refused from now on.");
      await showKeys();
    });
  });
  onSubmit($("#try-form"), async () => {
    const out = $("#try-result");
    let doc;
    try {
      doc = JSON.parse($("#try-rows").value);
    } catch (err) {
      throw new Error(`The rows are not JSON: ${err.message}`);
    }
    const rows = Array.isArray(doc) ? doc : doc && doc.rows;
    if (!Array.isArray(rows) || !rows.length) throw new Error("Give a list of rows, e.g. [[5.1, 3.5, 1.4, 0.2]].");
    const secret = $("#try-key").value.trim();
    // straight to the model's address, as a program would call it: with the key typed in, or (none typed)
    // as the signed-in person, by the portal's session cookie and its CSRF header
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (secret) headers.Authorization = `Bearer ${secret}`;
    else headers["X-Reprolab-CSRF"] = cookie("reprolab_csrf");
    const res = await fetch(`${model.url}/predict`, { method: "POST", credentials: secret ? "omit" : "same-origin",
      headers, body: JSON.stringify({ rows }) });
    let answer = {};
    try { answer = await res.json(); } catch { /* not JSON */ }
    out.hidden = false;
    if (!res.ok) {
      out.textContent = `${res.status}: ${answer.error || "the model refused the request"}`;
      out.classList.add("error");
      return;
    }
    out.classList.remove("error");
    const preds = answer.predictions || [];
    out.textContent = `Predicted: ${preds.map((p) => JSON.stringify(p)).join(", ")}\n`
      + `(version ${answer.model_version ?? "?"}, request id ${res.headers.get("x-request-id") || answer.id || "—"})`;
    out.dataset.predictions = JSON.stringify(preds);
  });
  $("#mon-window").addEventListener("change", () => busy($("#mon-window"), () => showMonitoring()));
  $("#mon-now").addEventListener("click", (event) => busy(event.target, async () => {
    await showMonitoring(true);
    flash("Monitoring report made now.");
  }));
  // a version being deployed: follow it until it serves (or fails)
  const follow = async () => {
    for (let i = 0; i < 120 && model.versions.some((v) => v.state === "deploying"); i++) {
      await new Promise((r) => setTimeout(r, 2000));
      await showModel();
    }
  };
  follow().catch((err) => flash(err.message, true));
  // the report is remade every few minutes: read it again now and then
  setInterval(() => showMonitoring().catch(() => {}), 60_000);
};

// --- account: password, browser sessions, API tokens -------------------------------------------------

pages.account = async () => {
  const sessions = async () => {
    const list = await api("GET", "/me/sessions");
    fill("#sessions", list.items.map((s) => [when(s.created_at), s.method, s.address || "—", when(s.last_seen_at),
      s.current ? "this browser" : el("button", { type: "button", class: "danger small", "data-session": s.id,
        "aria-label": `Sign out the ${s.method} session from ${when(s.created_at)}` }, "Sign out")]), "None.");
  };
  const tokens = async () => {
    const list = await api("GET", "/me/tokens");
    fill("#tokens", list.items.map((t) => [t.name, when(t.created_at), when(t.last_used_at) || "never",
      t.revoked ? "revoked" : "active",
      t.revoked ? "" : el("button", { type: "button", class: "danger small", "data-token": t.id,
        "aria-label": `Revoke token ${t.name}` }, "Revoke")]), "None yet.");
  };
  $("#sessions").addEventListener("click", (event) => {
    const target = event.target.closest("button[data-session]");
    if (target) busy(target, async () => { await api("DELETE", `/me/sessions/${target.dataset.session}`); await sessions(); });
  });
  $("#tokens").addEventListener("click", (event) => {
    const target = event.target.closest("button[data-token]");
    if (target) busy(target, async () => { await api("DELETE", `/me/tokens/${target.dataset.token}`); await tokens(); });
  });
  onSubmit($("#password-form"), async (data, form) => {
    await api("PUT", "/me/password", { json: { current_password: data.get("current_password"),
      new_password: data.get("new_password") } });
    form.reset();
    flash("Password changed; your other browsers are signed out.");
    await sessions();
  });
  onSubmit($("#token-form"), async (data, form) => {
    const made = await api("POST", "/me/tokens", { json: { name: data.get("name") } });
    form.reset();
    $("#new-token-value").textContent = made.token;
    $("#new-token").hidden = false;
    await tokens();
  });
  await Promise.all([sessions(), tokens()]);
};

// --- small screens --------------------------------------------------------------------------------------

// On a phone (app.css, max-width 759px) each row of a data table reads as a card, every cell led by its
// column's name: the cells get that name as data-label (the DOM and the columns' order do not change).
let labelling = false;
function labelTableCells() {
  labelling = false;
  for (const table of $$("table.data")) {
    const head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!head) continue;
    const names = Array.from(head.cells, (th) => th.textContent.trim());
    table.classList.add("stacked");
    for (const tbody of table.tBodies) {
      for (const row of tbody.rows) {
        let col = 0;
        for (const cell of row.cells) {
          const label = cell.colSpan === 1 ? names[col] || "" : "";
          if (cell.dataset.label !== label) cell.dataset.label = label;
          col += cell.colSpan;
        }
      }
    }
  }
}
new MutationObserver(() => {
  if (!labelling) { labelling = true; requestAnimationFrame(labelTableCells); }
}).observe(document.body, { childList: true, subtree: true });
labelTableCells();

// --- start --------------------------------------------------------------------------------------------

// Until a page's script has wired its forms and buttons they stay disabled, so an early click is never
// lost (or submitted as a plain GET); pages that keep working (a run's live log) call ready() earlier.
const gated = $$("main button, main input[type=file]").filter((node) => !node.disabled);

function ready() {
  if (body.dataset.ready) return;
  gated.forEach((node) => { node.disabled = false; });
  body.dataset.ready = "true";
}

const start = pages[body.dataset.page];
if (start) {
  gated.forEach((node) => { node.disabled = true; });
  start().catch((err) => {
    if (!(err instanceof ApiError && err.status === 401)) flash(err.message, true);
    // a placeholder must not keep saying "Loading…" after the page gave up (e.g. another user's run)
    $$("main td, main dd, main dt, main p").filter((node) => node.textContent.trim() === "Loading…")
      .forEach((node) => { node.textContent = `Could not load this: ${err.message}`; });
    if (!(err instanceof ApiError)) console.error(err);
  }).finally(ready);
} else {
  ready();
}
