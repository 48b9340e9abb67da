// A simple stack view of one series: every frame of every instance in order, scrolled with
// the mouse wheel, the slider or the arrow keys, shown through DICOMweb's rendered frames
// with the file's own window or a preset.

import { url } from "./api.js";
import { h } from "./dom.js";

/** Window presets as [label, center, width]; "" keeps the window the file gives. */
export const PRESETS = [
  ["File's window", null, null],
  ["Soft tissue (40/400)", 40, 400],
  ["Lung (−600/1500)", -600, 1500],
  ["Bone (300/1500)", 300, 1500],
  ["Brain (40/80)", 40, 80],
  ["Abdomen (60/350)", 60, 350],
];

/** The frames of the series, in order: [{instance, sop, frame}]. */
function framesOf(instances) {
  const frames = [];
  for (const instance of instances) {
    const count = Math.max(1, Number(instance.MainDicomTags.NumberOfFrames) || 1);
    for (let frame = 1; frame <= count; frame += 1) {
      frames.push({ instance: instance.ID, sop: instance.MainDicomTags.SOPInstanceUID, frame });
    }
  }
  return frames;
}

export function stackView(study, series, instances) {
  const frames = framesOf(instances);
  const base = `dicom-web/studies/${study.MainDicomTags.StudyInstanceUID}`
    + `/series/${series.MainDicomTags.SeriesInstanceUID}/instances`;
  const image = h("img", { class: "stack-image", alt: "Series image", draggable: "false" });
  const status = h("span", { class: "stack-status" });
  const slider = h("input", { type: "range", min: 1, max: frames.length, value: 1,
    "aria-label": "Image", class: "stack-slider" });
  const preset = h("select", { "aria-label": "Window preset", class: "stack-preset" },
    PRESETS.map(([label], position) => h("option", { value: position }, label)));
  let current = -1;
  let wanted = 0;

  function source(position) {
    const { sop, frame } = frames[position];
    const [, center, width] = PRESETS[Number(preset.value)];
    const window = center === null ? undefined : `${center},${width},linear`;
    return url(`${base}/${sop}/frames/${frame}/rendered`, { window });
  }

  // Load into a detached image and swap when ready, so the picture never flashes blank
  // and a quick scroll shows the last position asked for, not every one in between.
  function show(position) {
    wanted = Math.min(frames.length - 1, Math.max(0, position));
    slider.value = wanted + 1;
    const src = source(wanted);
    const next = new Image();
    next.addEventListener("load", () => {
      if (src !== source(wanted)) return;
      image.src = src;
      current = wanted;
      view.dataset.position = String(current + 1);
      view.dataset.window = preset.value;
      status.textContent = `Image ${current + 1} / ${frames.length}`;
    });
    next.addEventListener("error", () => {
      status.textContent = `Image ${wanted + 1} / ${frames.length}: cannot be shown`;
    });
    next.src = src;
  }

  const frame = h("div", { class: "stack-frame", tabindex: 0 }, image);
  frame.addEventListener("wheel", (event) => {
    event.preventDefault();
    show(wanted + Math.sign(event.deltaY));
  }, { passive: false });
  frame.addEventListener("keydown", (event) => {
    const step = { ArrowDown: 1, ArrowRight: 1, PageDown: 10, ArrowUp: -1, ArrowLeft: -1, PageUp: -10 }[event.key];
    if (step) {
      event.preventDefault();
      show(wanted + step);
    }
  });
  slider.addEventListener("input", () => show(Number(slider.value) - 1));
  preset.addEventListener("change", () => show(wanted));
  const view = h("section", { class: "stack" }, frame,
    h("div", { class: "stack-controls" }, slider, preset, status));
  if (frames.length) show(Math.floor(frames.length / 2));
  else status.textContent = "No image";
  return view;
}
