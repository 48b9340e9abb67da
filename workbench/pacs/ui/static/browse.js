// Browsing: patients (and a study search) → studies → series → instances, and one
// instance's preview and tags.

import { actionBar } from "./actions.js";
import { call, find, url } from "./api.js";
import { date, h, person, table } from "./dom.js";
import { stackView } from "./stack.js";

/** Modalities whose objects have no pixels to preview (reports, states, documents...). */
const NO_PIXELS = new Set(["SR", "PR", "KO", "DOC", "SEG", "RTSTRUCT", "RTPLAN", "REG", "AU", "ECG"]);

const SEARCH_FIELDS = [
  ["PatientName", "Patient name", "text"],
  ["PatientID", "Patient ID", "text"],
  ["DateFrom", "Study date from", "date"],
  ["DateTo", "to", "date"],
  ["Modality", "Modality", "text"],
  ["StudyDescription", "Description", "text"],
  ["Label", "Label", "text"],
];

function tags(resource) {
  return resource.MainDicomTags || {};
}

function patientTags(resource) {
  return resource.PatientMainDicomTags || {};
}

function preview(instanceId, modality, size = 96) {
  if (!instanceId || NO_PIXELS.has(modality)) return h("span", { class: "thumb none" }, modality || "—");
  return h("img", {
    class: "thumb", loading: "lazy", alt: "", width: size, height: size,
    src: url(`instances/${instanceId}/preview`, { size }),
  });
}

function heading(title, ...crumbs) {
  return h("nav", { class: "crumbs" }, crumbs.map(([text, href]) => [h("a", { href }, text), " › "]),
    h("h1", {}, title));
}

function tagList(values) {
  const entries = Object.entries(values).filter(([, value]) => value !== "" && value !== undefined);
  return h("dl", { class: "tags" }, entries.map(([key, value]) => [h("dt", {}, key),
    h("dd", {}, key.endsWith("Name") && value.includes("^") ? person(value) : value)]));
}

/** The DICOM query of the search form's values (wildcards around free text). */
export function studyQuery(values) {
  const query = {};
  const around = (text) => `*${text.trim()}*`;
  if (values.PatientName) query.PatientName = around(values.PatientName);
  if (values.PatientID) query.PatientID = around(values.PatientID);
  if (values.StudyDescription) query.StudyDescription = around(values.StudyDescription);
  if (values.Modality) query.ModalitiesInStudy = values.Modality.trim().toUpperCase();
  const from = (values.DateFrom || "").replaceAll("-", "");
  const to = (values.DateTo || "").replaceAll("-", "");
  if (from || to) query.StudyDate = from === to ? from : `${from}-${to}`;
  return query;
}

function searchForm(values) {
  const form = h("form", { class: "search", role: "search" },
    SEARCH_FIELDS.map(([name, label, type]) => h("label", {}, label,
      h("input", { name, type, value: values[name] || "", autocomplete: "off" }))),
    h("button", { type: "submit" }, "Search"),
    h("button", { type: "reset" }, "Clear"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) params.set(name, value);
    window.location.hash = params.size ? `#/?${params}` : "#/";
  });
  form.addEventListener("reset", () => { window.location.hash = "#/"; });
  return form;
}

function studiesTable(studies) {
  return table([
    ["Patient", (s) => person(patientTags(s).PatientName) || h("span", { class: "hint" }, "(no name)")],
    ["Patient ID", (s) => patientTags(s).PatientID || ""],
    ["Date", (s) => date(tags(s).StudyDate)],
    ["Description", (s) => tags(s).StudyDescription || ""],
    ["Accession", (s) => tags(s).AccessionNumber || ""],
    ["Series", (s) => s.Series.length],
    ["Labels", (s) => (s.Labels || []).join(", ")],
  ], studies, {
    onRow: (s) => { window.location.hash = `#/studies/${s.ID}`; },
    className: "list studies", empty: "No study matches.",
  });
}

/** The most rows a list shows; a larger archive is narrowed with the search. */
export const LIST_LIMIT = 500;

/** "12 studies", or how many more there are when the list was cut at LIST_LIMIT. */
function counted(count, one, many, total) {
  const text = `${count} ${count === 1 ? one : many}`;
  if (total === undefined || total <= count) return text;
  const rest = Number.isFinite(total) ? `of ${total}` : "and more match";
  return `${text} shown ${rest}: narrow the search to see the others`;
}

export async function showPatients(content) {
  const params = new URLSearchParams(window.location.hash.split("?")[1] || "");
  const values = Object.fromEntries(params);
  content.append(h("h1", {}, "Browse"), searchForm(values));
  if (params.size) {
    const labels = values.Label ? [values.Label.trim()] : undefined;
    const studies = await find("Study", studyQuery(values), LIST_LIMIT + 1, labels);
    const total = studies.length > LIST_LIMIT ? Infinity : studies.length;
    content.append(h("h2", {}, counted(Math.min(studies.length, LIST_LIMIT), "study", "studies", total)),
      studiesTable(studies.slice(0, LIST_LIMIT)));
    return;
  }
  const [patients, statistics] = await Promise.all([
    call("patients", { params: { expand: "true", limit: LIST_LIMIT } }), call("statistics")]);
  patients.sort((a, b) => person(tags(a).PatientName).localeCompare(person(tags(b).PatientName)));
  content.append(h("h2", {}, counted(patients.length, "patient", "patients", statistics.CountPatients)),
    table([
      ["Name", (p) => person(tags(p).PatientName) || h("span", { class: "hint" }, "(no name)")],
      ["ID", (p) => tags(p).PatientID || ""],
      ["Birth date", (p) => date(tags(p).PatientBirthDate)],
      ["Sex", (p) => tags(p).PatientSex || ""],
      ["Studies", (p) => p.Studies.length],
    ], patients, {
      onRow: (p) => { window.location.hash = `#/patients/${p.ID}`; },
      className: "list patients", empty: "No patient yet: upload some files.",
    }));
}

export async function showPatient(content, id, features) {
  const [patient, studies] = await Promise.all([call(`patients/${id}`), call(`patients/${id}/studies`)]);
  content.append(heading(person(tags(patient).PatientName) || "(no name)", ["Patients", "#/"]),
    await actionBar("Patient", patient, features), tagList(tags(patient)),
    h("h2", {}, "Studies"), studiesTable(studies));
}

export async function showStudy(content, id, features) {
  const [study, series] = await Promise.all([call(`studies/${id}`), call(`studies/${id}/series`)]);
  const name = person(patientTags(study).PatientName) || "(no name)";
  content.append(
    heading(tags(study).StudyDescription || date(tags(study).StudyDate) || "Study",
      ["Patients", "#/"], [name, `#/patients/${study.ParentPatient}`]),
    await actionBar("Study", study, features), tagList({ ...patientTags(study), ...tags(study) }),
    h("h2", {}, "Series"),
    table([
      ["", (s) => preview(s.Instances[0], tags(s).Modality, 64)],
      ["#", (s) => tags(s).SeriesNumber || ""],
      ["Modality", (s) => tags(s).Modality || ""],
      ["Description", (s) => tags(s).SeriesDescription || ""],
      ["Instances", (s) => s.Instances.length],
    ], series, {
      onRow: (s) => { window.location.hash = `#/series/${s.ID}`; },
      className: "list series",
    }));
}

function instanceOrder(a, b) {
  const number = (i) => Number(tags(i).InstanceNumber ?? i.IndexInSeries ?? 0);
  return number(a) - number(b) || (a.IndexInSeries ?? 0) - (b.IndexInSeries ?? 0);
}

export async function showSeries(content, id, features) {
  const [series, instances, study] = await Promise.all([
    call(`series/${id}`), call(`series/${id}/instances`), call(`series/${id}/study`)]);
  instances.sort(instanceOrder);
  const modality = tags(series).Modality;
  content.append(
    heading(tags(series).SeriesDescription || `Series ${tags(series).SeriesNumber || ""}`,
      ["Patients", "#/"],
      [person(patientTags(study).PatientName) || "(no name)", `#/patients/${study.ParentPatient}`],
      [tags(study).StudyDescription || "Study", `#/studies/${study.ID}`]),
    await actionBar("Series", series, features, { study }));
  const columns = h("div", { class: "columns" });
  if (!NO_PIXELS.has(modality)) columns.append(stackView(study, series, instances));
  columns.append(h("section", { class: "side" }, tagList(tags(series)), h("h2", {}, "Instances"),
    table([
      ["", (i) => preview(i.ID, modality, 48)],
      ["#", (i) => tags(i).InstanceNumber || ""],
      ["Frames", (i) => tags(i).NumberOfFrames || 1],
      ["SOP Instance UID", (i) => h("code", {}, tags(i).SOPInstanceUID || "")],
    ], instances, {
      onRow: (i) => { window.location.hash = `#/instances/${i.ID}`; },
      className: "list instances",
    })));
  content.append(columns);
}

/** Rows of the tags table, sequences expanded below their element, indented. */
function tagRows(values, depth = 0) {
  const rows = [];
  for (const [key, element] of Object.entries(values)) {
    const sequence = element.Type === "Sequence";
    const shown = sequence ? `${element.Value.length} item(s)`
      : element.Type === "String" ? element.Value
        : element.Value === null ? "" : `(${element.Type})`;
    rows.push(h("tr", { dataset: { tag: key, depth } },
      h("td", { style: `padding-left: ${0.4 + depth * 1.2}em` }, h("code", {}, key)),
      h("td", {}, element.Name), h("td", { class: "value" }, shown)));
    if (sequence) {
      element.Value.forEach((item, position) => {
        rows.push(h("tr", { class: "item" }, h("td", { colspan: 3, style: `padding-left: ${1 + depth * 1.2}em` }, `item ${position + 1}`)));
        rows.push(...tagRows(item, depth + 1));
      });
    }
  }
  return rows;
}

export async function showInstance(content, id, features) {
  const [instance, values, series] = await Promise.all([
    call(`instances/${id}`), call(`instances/${id}/tags`), call(`instances/${id}/series`)]);
  const study = await call(`series/${series.ID}/study`);
  const modality = tags(series).Modality;
  const filter = h("input", { type: "search", placeholder: "Filter tags", class: "filter" });
  const body = h("tbody", {}, tagRows(values));
  filter.addEventListener("input", () => {
    const text = filter.value.toLowerCase();
    for (const row of body.rows) row.hidden = Boolean(text) && !row.textContent.toLowerCase().includes(text);
  });
  content.append(
    heading(`Instance ${tags(instance).InstanceNumber || ""}`,
      ["Patients", "#/"],
      [person(patientTags(study).PatientName) || "(no name)", `#/patients/${study.ParentPatient}`],
      [tags(study).StudyDescription || "Study", `#/studies/${study.ID}`],
      [tags(series).SeriesDescription || "Series", `#/series/${series.ID}`]),
    await actionBar("Instance", instance, features, { study, series }),
    h("div", { class: "columns" },
      NO_PIXELS.has(modality) ? null
        : h("figure", { class: "preview" }, h("img", { src: url(`instances/${id}/preview`), alt: "Preview" })),
      h("section", { class: "side" }, h("h2", {}, "Tags"), filter,
        h("table", { class: "list tag-table" },
          h("thead", {}, h("tr", {}, h("th", {}, "Tag"), h("th", {}, "Name"), h("th", {}, "Value"))),
          body))));
}
