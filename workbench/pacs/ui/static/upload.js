// Upload: files, folders and ZIP archives dropped on the page or chosen with a picker, each
// posted to /instances with its own progress and outcome, then a summary.

import { reasonOf, url } from "./api.js";
import { h } from "./dom.js";

/** How many files are in flight at once (the server stores them one by one anyway). */
const PARALLEL = 3;

/** Every file under a dropped entry (folders walked through the File System API). */
async function entryFiles(entry, prefix = "") {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    return [{ file, name: prefix + file.name }];
  }
  const reader = entry.createReader();
  const found = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) found.push(...(await entryFiles(child, `${prefix}${entry.name}/`)));
  }
  return found;
}

/** The files of a drop: through entries when the browser gives them (folders), else files. */
async function droppedFiles(transfer) {
  const entries = [...(transfer.items || [])]
    .map((item) => (item.kind === "file" && item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (entries.length && entries.every(Boolean)) {
    const lists = await Promise.all(entries.map((entry) => entryFiles(entry)));
    return lists.flat();
  }
  return [...transfer.files].map((file) => ({ file, name: file.webkitRelativePath || file.name }));
}

/** POST one file; resolve with {status, answer} whatever the outcome. */
function post(file, onProgress) {
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open("POST", url("instances"));
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => resolve({ status: request.status, text: request.responseText }));
    request.addEventListener("error", () => resolve({ status: 0, text: "The connection to the server failed" }));
    request.send(file);
  });
}

/** What one answer means: [{outcome, detail}] (a ZIP answers for each of its files). */
export function outcomes(status, text) {
  if (status < 200 || status >= 300) {
    return [{ outcome: "refused", detail: status ? reasonOf(status, text) : text }];
  }
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    return [{ outcome: "refused", detail: "The server's answer is not JSON" }];
  }
  const results = Array.isArray(answer) ? answer : [answer];
  if (Array.isArray(answer) && !answer.length) {
    return [{ outcome: "refused", detail: "The archive holds no DICOM file" }];
  }
  return results.map((result) => ({
    outcome: result.Status === "AlreadyStored" ? "present" : result.Status === "Success" ? "stored" : "refused",
    detail: result.Status,
    instance: result.ID,
  }));
}

const LABELS = { stored: "stored", present: "already present", refused: "refused" };

export async function showUpload(content) {
  const rows = h("tbody");
  const summary = h("p", { class: "summary", "data-state": "idle" }, "Nothing uploaded yet.");
  const picker = h("input", { type: "file", multiple: true, class: "picker-files", "aria-label": "Choose files" });
  const folderPicker = h("input", { type: "file", webkitdirectory: true, class: "picker-folder", "aria-label": "Choose a folder" });
  const zone = h("div", { class: "dropzone", tabindex: 0 },
    h("p", {}, "Drop DICOM files, folders or ZIP archives here"),
    h("p", {}, h("label", { class: "button" }, "Choose files", picker), " ",
      h("label", { class: "button" }, "Choose a folder", folderPicker)));
  const totals = { stored: 0, present: 0, refused: 0 };
  let pending = 0;

  function report() {
    const text = `${totals.stored} stored, ${totals.present} already present, ${totals.refused} refused`;
    summary.textContent = pending ? `Uploading… ${pending} file(s) left. ${text}` : `Done: ${text}`;
    summary.dataset.state = pending ? "busy" : "done";
    summary.dataset.stored = totals.stored;
    summary.dataset.present = totals.present;
    summary.dataset.refused = totals.refused;
  }

  async function send(item) {
    const bar = h("progress", { max: 1, value: 0 });
    const state = h("td", { class: "state" }, bar);
    const row = h("tr", { dataset: { outcome: "busy" } }, h("td", { class: "name" }, item.name), state);
    rows.append(row);
    const { status, text } = await post(item.file, (part) => { bar.value = part; });
    const results = outcomes(status, text);
    for (const result of results) totals[result.outcome] += 1;
    const counted = results.reduce((count, r) => ({ ...count, [r.outcome]: (count[r.outcome] || 0) + 1 }), {});
    row.dataset.outcome = results.length === 1 ? results[0].outcome : "archive";
    const [first] = results;
    state.replaceChildren(...(results.length === 1
      ? [h("span", { class: `outcome ${first.outcome}` }, LABELS[first.outcome]),
        first.outcome === "refused" ? h("span", { class: "reason" }, ` — ${first.detail}`) : ""]
      : Object.entries(counted).map(([outcome, count]) => h("span", { class: `outcome ${outcome}` }, `${count} ${LABELS[outcome]} `))));
    pending -= 1;
    report();
  }

  async function upload(items) {
    pending += items.length;
    report();
    const queue = [...items];
    const worker = async () => {
      while (queue.length) await send(queue.shift());
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, queue.length) }, worker));
  }

  for (const input of [picker, folderPicker]) {
    input.addEventListener("change", () => {
      upload([...input.files].map((file) => ({ file, name: file.webkitRelativePath || file.name })));
      input.value = "";
    });
  }
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    upload(await droppedFiles(event.dataTransfer));
  });
  content.append(h("h1", {}, "Upload"), zone, summary,
    h("table", { class: "list uploads" },
      h("thead", {}, h("tr", {}, h("th", {}, "File"), h("th", {}, "Result"))), rows));
}
