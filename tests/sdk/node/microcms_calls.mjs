// Drives the real `microcms-js-sdk` (npm) against BASE_URL and prints one JSON line per call:
// what the application sees (return value, or error message and status).
//
// Usage: node microcms_calls.mjs BASE_URL
// microcms-js-sdk 3.x builds https://{serviceDomain}.microcms.io/api/v1/... and calls the global
// `fetch`; it has no base-URL option, so a fetch wrapper rewriting the origin is the supported way
// to put a gateway in front of it.
let createClient;
try {
  ({ createClient } = await import("microcms-js-sdk"));
} catch (e) {
  console.log(JSON.stringify({ missing: `npm package microcms-js-sdk: ${e.message}` }));
  process.exit(3);
}

const base = process.argv[2];
const origin = "https://svc.microcms.io";
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = String(input);
  return realFetch(url.startsWith(origin) ? base + url.slice(origin.length) : url, init);
};

const client = createClient({ serviceDomain: "svc", apiKey: "test-key" });
const calls = [
  ["get_list", () => client.getList({ endpoint: "blogs" })],
  ["get_missing", () => client.get({ endpoint: "blogs", contentId: "missing" })],
  ["get_list_bad_limit", () => client.getList({ endpoint: "blogs", queries: { limit: 200 } })],
  ["get_broken", () => client.getList({ endpoint: "broken" })],
];
for (const [name, call] of calls) {
  const out = { call: name };
  try {
    out.ok = JSON.stringify(await call());
  } catch (e) {
    out.exception = e.constructor.name;
    out.message = e.message;
    out.status = e.status ?? null;
  }
  console.log(JSON.stringify(out));
}
