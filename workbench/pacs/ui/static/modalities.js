// The modalities of DicomModalities, each with a C-ECHO button, and query/retrieve from
// one of them (C-FIND of studies, then C-GET of the chosen ones into this server).

import { call } from "./api.js";
import { date, h, person, table, toast } from "./dom.js";

export async function showModalities(content, _id, features) {
  content.append(h("h1", {}, "Modalities"));
  if (!features.node) {
    content.append(h("p", { class: "empty" }, "The DICOM node is not running (workbench serve without --no-dicom starts it)."));
    return;
  }
  const known = await call("modalities", { params: { expand: "true" } });
  const names = Object.keys(known).sort();
  content.append(table([
    ["Name", (name) => name],
    ["AET", (name) => known[name].AET],
    ["Host", (name) => known[name].Host],
    ["Port", (name) => known[name].Port],
    ["", (name) => echoButton(name)],
  ], names, { className: "list modalities", empty: "No modality is declared (option DicomModalities)." }));
  if (names.length) content.append(queryRetrieve(names));
}

/** The keys a study query asks for: the search form's values, the rest returned empty. */
const STUDY_KEYS = ["PatientName", "PatientID", "StudyDate", "StudyDescription", "ModalitiesInStudy",
  "AccessionNumber", "StudyInstanceUID", "NumberOfStudyRelatedInstances"];

function queryRetrieve(names) {
  const modality = h("select", { name: "modality", "aria-label": "Modality to query" },
    names.map((name) => h("option", { value: name }, name)));
  const fields = [["PatientName", "Patient name"], ["PatientID", "Patient ID"],
    ["StudyDate", "Study date (YYYYMMDD or a range)"], ["ModalitiesInStudy", "Modality"]];
  const form = h("form", { class: "search qr" }, h("label", {}, "Modality", modality),
    fields.map(([name, label]) => h("label", {}, label, h("input", { name, autocomplete: "off" }))),
    h("button", { type: "submit" }, "Query"));
  const results = h("div", { class: "qr-results" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = Object.fromEntries(STUDY_KEYS.map((key) => [key, ""]));
    for (const [name, value] of new FormData(form)) if (name !== "modality" && value) query[name] = value;
    results.replaceChildren(h("p", { class: "hint" }, "Querying…"));
    try {
      const { ID } = await call(`modalities/${encodeURIComponent(modality.value)}/query`, {
        method: "POST", json: { Level: "Study", Query: query } });
      const answers = await call(`queries/${ID}/answers`, { params: { expand: "true", simplify: "true" } });
      results.replaceChildren(h("h2", {}, `${answers.length} ${answers.length === 1 ? "study" : "studies"} on ${modality.value}`),
        table([
          ["Patient", (a) => person(a.PatientName)],
          ["Patient ID", (a) => a.PatientID || ""],
          ["Date", (a) => date(a.StudyDate)],
          ["Description", (a) => a.StudyDescription || ""],
          ["Modalities", (a) => a.ModalitiesInStudy || ""],
          ["", (a) => retrieveButton(modality.value, a.StudyInstanceUID)],
        ], answers, { className: "list answers", empty: "No study matches." }));
    } catch (error) {
      results.replaceChildren(h("p", { class: "error" }, `Query failed: ${error.message}`));
    }
  });
  return h("section", {}, h("h2", {}, "Query and retrieve"), form, results);
}

function retrieveButton(name, studyUid) {
  const button = h("button", { "data-action": "retrieve" }, "Retrieve");
  const result = h("span", { class: "retrieve-result" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    result.textContent = "…";
    try {
      const answer = await call(`modalities/${encodeURIComponent(name)}/get`, {
        method: "POST", json: { Level: "Study", Resources: [{ StudyInstanceUID: studyUid }] } });
      if (answer.FailedInstancesCount) throw new Error(`${answer.FailedInstancesCount} instance(s) failed`);
      const [found] = await call("tools/lookup", { method: "POST", body: studyUid });
      result.replaceChildren(`${answer.CompletedInstancesCount} instance(s) retrieved `,
        found ? h("a", { href: `#/studies/${found.ID}` }, "open") : "");
      result.className = "retrieve-result ok";
    } catch (error) {
      result.textContent = `failed: ${error.message}`;
      result.className = "retrieve-result error";
      toast(`Retrieve failed: ${error.message}`, "error");
    } finally {
      button.disabled = false;
    }
  });
  return h("span", {}, button, " ", result);
}

function echoButton(name) {
  const result = h("span", { class: "echo-result" });
  const button = h("button", { "data-action": "echo" }, "Echo");
  button.addEventListener("click", async () => {
    button.disabled = true;
    result.textContent = "…";
    result.className = "echo-result";
    try {
      await call(`modalities/${encodeURIComponent(name)}/echo`, { method: "POST", json: {} });
      result.textContent = "answered";
      result.classList.add("ok");
    } catch (error) {
      result.textContent = `failed: ${error.message}`;
      result.classList.add("error");
    } finally {
      button.disabled = false;
    }
  });
  return h("span", {}, button, " ", result);
}
