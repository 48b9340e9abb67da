// A small element builder and the page's shared pieces (toast, confirmation, tables).

/** Make an element: h("a", {href: "#"}, "text", child...). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Show a short message (kind: "ok" or "error") in the corner of the page. */
export function toast(message, kind = "ok") {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.className = kind;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 10000 : 4000);
}

/** Ask before something that cannot be undone; resolves true if confirmed. */
export function confirmAction(message, label = "Delete") {
  const dialog = document.getElementById("confirm");
  dialog.querySelector(".message").textContent = message;
  dialog.querySelector("button[value=ok]").textContent = label;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

/** A table: columns are [title, row => cell]; onRow makes rows links. */
export function table(columns, rows, { onRow, className = "list", empty = "Nothing here." } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  const head = h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", {}, title))));
  const body = h("tbody", {}, rows.map((row) => {
    const tr = h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row))));
    if (onRow) {
      tr.classList.add("link");
      tr.tabIndex = 0;
      tr.addEventListener("click", (event) => {
        if (!event.target.closest("a,button,input")) onRow(row);
      });
      tr.addEventListener("keydown", (event) => { if (event.key === "Enter") onRow(row); });
    }
    return tr;
  }));
  return h("table", { class: className }, head, body);
}

/** A DICOM date (YYYYMMDD) as YYYY-MM-DD, other text as it is. */
export function date(value) {
  return /^\d{8}$/.test(value || "") ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6)}` : (value || "");
}

/** A DICOM person name with its ^ separators shown as spaces. */
export function person(value) {
  return (value || "").replace(/\^+/g, " ").trim();
}
