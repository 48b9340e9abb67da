// The page's router: one view per hash (#/, #/patients/ID, #/studies/ID, #/series/ID,
// #/instances/ID, #/upload, #/modalities), drawn into <main id="view">.

import { call } from "./api.js";
import { showPatients, showPatient, showStudy, showSeries, showInstance } from "./browse.js";
import { h } from "./dom.js";
import { showModalities } from "./modalities.js";
import { showUpload } from "./upload.js";

/** What the server offers the page (OHIF served, DICOM node running), fetched once. */
export const features = call("ui/features.json").catch(() => ({}));

const VIEWS = [
  [/^#\/patients\/([^/?]+)$/, showPatient],
  [/^#\/studies\/([^/?]+)$/, showStudy],
  [/^#\/series\/([^/?]+)$/, showSeries],
  [/^#\/instances\/([^/?]+)$/, showInstance],
  [/^#\/upload$/, showUpload],
  [/^#\/modalities$/, showModalities],
  [/^#\/?(?:\?.*)?$/, showPatients],
];

let drawing = 0;

async function route() {
  const hash = window.location.hash || "#/";
  const view = document.getElementById("view");
  const ticket = ++drawing;
  for (const link of document.querySelectorAll("[data-nav]")) {
    const section = hash.startsWith("#/upload") ? "upload"
      : hash.startsWith("#/modalities") ? "modalities" : "browse";
    link.classList.toggle("current", link.dataset.nav === section);
  }
  const [pattern, show] = VIEWS.find(([p]) => p.test(hash)) || [null, null];
  const content = h("div", { class: "content", "data-view": hash });
  view.setAttribute("aria-busy", "true");
  try {
    if (!show) throw new Error(`No page at ${hash}`);
    const match = hash.match(pattern);
    await show(content, decodeURIComponent(match[1] || ""), await features);
  } catch (error) {
    content.replaceChildren(h("p", { class: "error" }, error.message));
  }
  if (ticket !== drawing) return; // a newer navigation won
  view.replaceChildren(content);
  view.removeAttribute("aria-busy");
}

window.addEventListener("hashchange", route);
features.then((found) => {
  if (found.name) {
    document.getElementById("server-name").textContent = found.name;
    document.title = found.name;
  }
});
route();
