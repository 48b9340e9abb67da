// The modalities of DicomModalities, each with a C-ECHO button.

import { call } from "./api.js";
import { h, table } from "./dom.js";

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
