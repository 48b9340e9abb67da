// The actions of one resource: protect, delete, anonymize, downloads, send to a modality,
// and how to open it in a notebook or in OHIF.

import { ApiError, call, reasonOf, url } from "./api.js";
import { confirmAction, h, person, toast } from "./dom.js";

/** REST path of each level, also the page's hash (#/studies/ID). */
const PLURAL = { Patient: "patients", Study: "studies", Series: "series", Instance: "instances" };

function download(label, href, name) {
  return h("a", { class: "button", href, download: name || "" }, label);
}

/** Run an action's request; report the outcome in a toast, and redraw on success. */
async function perform(button, work, done) {
  button.disabled = true;
  try {
    const message = await work();
    toast(message);
    if (done) done();
  } catch (error) {
    toast(`${button.textContent} failed: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

function redraw() {
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

async function protectButton(resource) {
  const path = `patients/${resource.ID}/protected`;
  const state = String(await call(path)).trim() === "1";
  const button = h("button", { "data-action": "protect" }, state ? "Unprotect" : "Protect");
  button.addEventListener("click", () => perform(button, async () => {
    await call(path, { method: "PUT", body: state ? "0" : "1" });
    return state ? "Unprotected: recycling may delete this patient" : "Protected from recycling";
  }, redraw));
  return button;
}

function deleteButton(level, resource) {
  const button = h("button", { class: "danger", "data-action": "delete" }, "Delete");
  button.addEventListener("click", async () => {
    const what = level === "Patient" ? `patient ${person(resource.MainDicomTags.PatientName)}`
      : `this ${level.toLowerCase()}`;
    if (!(await confirmAction(`Delete ${what} and everything below it? This cannot be undone.`))) return;
    perform(button, async () => {
      const answer = await call(`${PLURAL[level]}/${resource.ID}`, { method: "DELETE" });
      const parent = answer.RemainingAncestor;
      window.location.hash = parent ? `#/${PLURAL[parent.Type]}/${parent.ID}` : "#/";
      return `Deleted ${level.toLowerCase()}`;
    });
  });
  return button;
}

/** Save a file the server answered to a POST (an anonymized instance) under ``name``. */
async function saveAnswer(path, json, name) {
  const response = await fetch(url(path), {
    method: "POST", body: JSON.stringify(json), headers: { "Content-Type": "application/json" },
  });
  if (!response.ok) throw new ApiError(response.status, reasonOf(response.status, await response.text()));
  const link = h("a", { href: URL.createObjectURL(await response.blob()), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

/** Anonymize: a patient, study or series is copied (and the page goes to the copy); an
 * instance is answered as an anonymized file, which is downloaded (as Orthanc does). */
function anonymizeButton(level, resource) {
  const path = `${PLURAL[level]}/${resource.ID}/anonymize`;
  if (level === "Instance") {
    const button = h("button", { "data-action": "anonymize", title: "Download an anonymized copy of this file" },
      "Anonymized file");
    button.addEventListener("click", () => perform(button, async () => {
      await saveAnswer(path, {}, `${resource.ID}-anonymized.dcm`);
      return "Anonymized file downloaded (nothing stored)";
    }));
    return button;
  }
  const button = h("button", { "data-action": "anonymize" }, "Anonymize");
  button.addEventListener("click", () => perform(button, async () => {
    const answer = await call(path, { method: "POST", json: {} });
    window.location.hash = `#/${PLURAL[answer.Type] || PLURAL[level]}/${answer.ID}`;
    return `Anonymized copy made (patient ${answer.PatientID || "?"})`;
  }));
  return button;
}

async function sendControl(level, resource, features) {
  if (!features.node) return null;
  let names = [];
  try {
    names = await call("modalities");
  } catch {
    return null;
  }
  if (!names.length) return h("span", { class: "hint" }, "No modality to send to (DicomModalities)");
  const choice = h("select", { "aria-label": "Modality", name: "modality" },
    names.map((name) => h("option", { value: name }, name)));
  const button = h("button", { "data-action": "send" }, "Send");
  button.addEventListener("click", () => perform(button, async () => {
    const answer = await call(`modalities/${encodeURIComponent(choice.value)}/store`, {
      method: "POST", json: { Resources: [resource.ID], Synchronous: true } });
    const failed = answer.FailedInstancesCount || 0;
    const sent = answer.InstancesCount ?? "";
    if (failed) throw new Error(`${failed} of ${sent} instances refused by ${choice.value}`);
    return `Sent ${sent} instance(s) to ${choice.value}`;
  }));
  return h("span", { class: "send" }, choice, button);
}

function dicomWebPath(level, resource, { study, series } = {}) {
  const tags = resource.MainDicomTags;
  if (level === "Study") return `dicom-web/studies/${tags.StudyInstanceUID}`;
  if (level === "Series") {
    return `dicom-web/studies/${study.MainDicomTags.StudyInstanceUID}/series/${tags.SeriesInstanceUID}`;
  }
  return null;
}

/** Python that opens the resource in a notebook (over this server's DICOMweb). */
export function notebookSnippet(level, resource, context, features = {}) {
  const path = dicomWebPath(level, resource, context);
  if (!path) return null;
  const [opener, name] = level === "Series" ? ["open_series", "series"] : ["open_study", "study"];
  const lines = [];
  if (features.auth) lines.push("import getpass", "", "import requests", "");
  lines.push(`from workbench.io import ${opener}`);
  if (features.auth) lines.push("from workbench.io.dicomweb import DicomWeb");
  lines.push("");
  if (features.auth) {
    lines.push("session = requests.Session()",
      `session.auth = (${JSON.stringify(features.user || "user")}, getpass.getpass("Password: "))`,
      `${name} = ${opener}("${url(path)}", dicomweb=DicomWeb(session=session))`);
  } else {
    lines.push(`${name} = ${opener}("${url(path)}")`);
  }
  lines.push(name);
  return lines.join("\n");
}

function notebookButton(level, resource, context, features) {
  const snippet = notebookSnippet(level, resource, context, features);
  if (!snippet) return null;
  const code = h("pre", { class: "snippet", hidden: true }, h("code", {}, snippet));
  const button = h("button", { "data-action": "notebook", "aria-expanded": "false" }, "Open in a notebook");
  const copy = h("button", { hidden: true, "data-action": "copy" }, "Copy");
  button.addEventListener("click", () => {
    code.hidden = !code.hidden;
    copy.hidden = code.hidden;
    button.setAttribute("aria-expanded", String(!code.hidden));
  });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(snippet);
      toast("Copied: paste it into a notebook cell");
    } catch {
      window.getSelection().selectAllChildren(code);
      toast("Select and copy the code with Ctrl+C");
    }
  });
  return [button, copy, code];
}

/** The resource's labels, each removable, and a field to add one (Orthanc 1.12 labels). */
function labelsControl(level, resource) {
  const path = `${PLURAL[level]}/${resource.ID}/labels`;
  const chips = (resource.Labels || []).map((label) => {
    const remove = h("button", { class: "chip", "data-action": "unlabel", "data-label": label,
      title: `Remove the label ${label}`, "aria-label": `Remove the label ${label}` }, `${label} ✕`);
    remove.addEventListener("click", () => perform(remove, async () => {
      await call(`${path}/${encodeURIComponent(label)}`, { method: "DELETE" });
      return `Label ${label} removed`;
    }, redraw));
    return remove;
  });
  const field = h("input", { name: "label", placeholder: "label", "aria-label": "New label",
    size: 12, autocomplete: "off" });
  const add = h("button", { "data-action": "label" }, "Add label");
  add.addEventListener("click", () => perform(add, async () => {
    const label = field.value.trim();
    if (!label) throw new Error("type a label first");
    await call(`${path}/${encodeURIComponent(label)}`, { method: "PUT", body: "" });
    return `Label ${label} added`;
  }, redraw));
  return h("span", { class: "labels" }, chips, field, add);
}

/** The bar of actions over one resource's page. */
export async function actionBar(level, resource, features, context = {}) {
  const plural = PLURAL[level];
  const id = resource.ID;
  const items = [];
  if (level === "Patient") items.push(await protectButton(resource));
  items.push(anonymizeButton(level, resource));
  items.push(download("ZIP", url(`${plural}/${id}/archive`), `${id}.zip`));
  items.push(download("DICOMDIR", url(`${plural}/${id}/media`), `${id}-media.zip`));
  if (level === "Instance") {
    items.push(download("DICOM file", url(`instances/${id}/file`), `${id}.dcm`));
    items.push(download("JSON", url(`instances/${id}/tags`, { simplify: "true" }), `${id}.json`));
  }
  if (level === "Study" && features.ohif) {
    items.push(h("a", { class: "button", href: url(`studies/${id}/ohif`), target: "_blank",
      rel: "noopener", "data-action": "ohif" }, "Open in OHIF"));
  }
  items.push(await sendControl(level, resource, features));
  items.push(labelsControl(level, resource));
  items.push(deleteButton(level, resource));
  const bar = h("div", { class: "actions", role: "toolbar", "aria-label": `${level} actions` }, items);
  const notebook = notebookButton(level, resource, context, features);
  return notebook ? h("div", {}, bar, h("div", { class: "notebook" }, notebook)) : bar;
}
