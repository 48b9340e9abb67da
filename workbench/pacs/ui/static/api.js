// Calls to the server's REST and DICOMweb routes, relative to the page's own address, so
// the page works at /ui/ and behind a proxy prefix (/proxy/8042/ui/) alike.

/** The server's root URL: the folder above /ui/. */
export const root = new URL("..", window.location.href);

/** An absolute URL for a server path such as "studies/abc". */
export function url(path, params) {
  const target = new URL(path.replace(/^\//, ""), root);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(key, value);
  }
  return target.href;
}

/** An error answered by the server, with its Orthanc-style details. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The reason an error answer gives (Orthanc's "Details", else "Message", else the text). */
export function reasonOf(status, text) {
  try {
    const body = JSON.parse(text);
    return body.Details || body.Message || `HTTP ${status}`;
  } catch {
    return text ? text.slice(0, 300) : `HTTP ${status}`;
  }
}

/** Send a request; answer the parsed JSON (or text), throw ApiError with the reason. */
export async function call(path, { method = "GET", body, json, params } = {}) {
  const init = { method, headers: {} };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(url(path, params), init);
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, reasonOf(response.status, text));
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") && text ? JSON.parse(text) : text;
}

/** Orthanc's /tools/find at one level, expanded, at most ``limit`` answers; with ``labels``,
 * only the resources that have all of them. */
export function find(level, query, limit, labels) {
  const json = { Level: level, Query: query, Expand: true, Limit: limit };
  if (labels && labels.length) Object.assign(json, { Labels: labels, LabelsConstraint: "All" });
  return call("tools/find", { method: "POST", json });
}
