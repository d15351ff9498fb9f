// client.mjs: the official `openai` npm SDK (v6) as a client of qwenrelay.
//
// Run by tests/integration/test_openai_sdk.py from the directory the SDK
// was installed into (so `import OpenAI from "openai"` resolves), against a
// gateway whose upstream is the mock.  It drives the SDK the way coding
// tools do and prints TAP itself: "ok N - ...", "not ok N - ..." with "#"
// lines of detail, then "1..N".
//
// Environment:
//   BASE_URL     the gateway's /v1 URL, e.g. http://127.0.0.1:8080/v1
//   API_KEY      a client key (qwenrelay keys add)
//   MODEL        chat model (default coder-model)
//   EMBED_MODEL  embeddings model; the embed part is skipped when unset
//   EMBED_DIM    expected embedding length (optional)
//   PARTS        comma list of auth,models,chat,stream,tools,embed (default
//                all): the test enables what the gateway can do so far
import OpenAI from "openai";

const env = process.env;
const BASE_URL = env.BASE_URL;
const API_KEY = env.API_KEY;
const MODEL = env.MODEL || "coder-model";
const EMBED_MODEL = env.EMBED_MODEL || "";
const EMBED_DIM = Number(env.EMBED_DIM || 0);
const PARTS = new Set((env.PARTS || "auth,models,chat,stream,tools,embed")
  .split(",").map((s) => s.trim()).filter(Boolean));

let n = 0;
let failed = 0;

function ok(cond, desc, detail) {
  n++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${desc}`);
  if (!cond) {
    failed++;
    if (detail !== undefined) {
      const text = typeof detail === "string" ? detail : JSON.stringify(detail);
      for (const line of String(text).split("\n").slice(0, 20))
        console.log(`#   ${line}`);
    }
  }
  return cond;
}

function skip(desc, why) {
  n++;
  console.log(`ok ${n} - ${desc} # SKIP ${why}`);
}

// What an SDK error says, for diagnostics (never the key).
function describe(e) {
  if (e instanceof OpenAI.APIError)
    return `${e.constructor.name} status=${e.status}: ${e.message}`;
  return `${e?.constructor?.name ?? typeof e}: ${e?.message ?? e}`;
}

async function part(name, fn) {
  if (!PARTS.has(name))
    return;
  try {
    await fn();
  } catch (e) {
    ok(false, `${name}: the SDK call succeeds`, describe(e));
  }
}

if (!BASE_URL || !API_KEY) {
  console.log("Bail out! BASE_URL and API_KEY must be set");
  process.exit(1);
}

const client = new OpenAI({ baseURL: BASE_URL, apiKey: API_KEY, maxRetries: 0,
  timeout: 30000 });

// A wrong key must surface as the SDK's typed 401, parsed from an
// OpenAI-shaped error body.
await part("auth", async () => {
  const bad = new OpenAI({ baseURL: BASE_URL, apiKey: "qr-not-a-valid-key",
    maxRetries: 0, timeout: 30000 });
  try {
    await bad.chat.completions.create({ model: MODEL,
      messages: [{ role: "user", content: "hello" }] });
    ok(false, "bad key: OpenAI.AuthenticationError", "the request succeeded");
  } catch (e) {
    ok(e instanceof OpenAI.AuthenticationError && e.status === 401,
      "bad key: OpenAI.AuthenticationError with status 401", describe(e));
    ok(typeof e.error?.message === "string" && e.error.message.length > 0,
      "bad key: the SDK parsed the error body's message", e.error);
  }
});

await part("models", async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  ok(ids.includes(MODEL), `models.list() includes ${MODEL}`, ids.join(", "));
  ok(page.data.every((m) => m.object === "model" && typeof m.owned_by === "string"),
    "every model is a model object", page.data);
  const seen = [];
  for await (const m of client.models.list())
    seen.push(m.id);
  ok(seen.length === ids.length, "for await over models.list() sees them all",
    seen.join(", "));
});

await part("chat", async () => {
  const r = await client.chat.completions.create({ model: MODEL,
    messages: [{ role: "system", content: "be brief" },
      { role: "user", content: "hello sdk" }] });
  const choice = r.choices?.[0];
  ok(r.object === "chat.completion" && typeof r.id === "string",
    "chat: a chat.completion object", r);
  ok(typeof choice?.message?.content === "string" &&
    choice.message.content.includes("hello sdk"),
    "chat: the assistant's answer (the mock's echo)", choice);
  ok(choice?.finish_reason === "stop", "chat: finish_reason stop", choice);
  ok(r.usage?.total_tokens > 0 && r.usage?.prompt_tokens > 0,
    "chat: usage counted", r.usage);
});

await part("stream", async () => {
  const stream = await client.chat.completions.create({ model: MODEL,
    messages: [{ role: "user", content: "stream one two three" }],
    stream: true, stream_options: { include_usage: true } });
  let text = "", finish = null, usage = null, chunks = 0;
  for await (const c of stream) {
    chunks++;
    if (c.usage)
      usage = c.usage;
    for (const ch of c.choices ?? []) {
      if (ch.delta?.content)
        text += ch.delta.content;
      if (ch.finish_reason)
        finish = ch.finish_reason;
    }
  }
  ok(chunks > 2, `stream: several chunks (${chunks})`);
  ok(text.includes("stream one two three"),
    "stream: deltas add up to the answer", text);
  ok(finish === "stop", "stream: finish_reason stop", finish);
  if (usage === null)
    skip("stream: usage chunk", "none sent");
  else
    ok(usage.total_tokens > 0 && usage.completion_tokens > 0,
      "stream: usage chunk counts tokens", usage);
});

await part("tools", async () => {
  const tools = [{ type: "function", function: { name: "get_answer",
    description: "Look the answer up.",
    parameters: { type: "object", properties: { x: { type: "integer" } },
      required: ["x"] } } }];
  const messages = [{ role: "user", content: "please call tool" }];
  const r1 = await client.chat.completions.create({ model: MODEL, messages,
    tools });
  const msg = r1.choices?.[0]?.message;
  const call = msg?.tool_calls?.[0];
  if (!ok(r1.choices?.[0]?.finish_reason === "tool_calls" &&
    call?.type === "function" && call.function?.name === "get_answer" &&
    typeof call.id === "string", "tools: the model asks for get_answer",
    r1.choices))
    return;
  let args = null;
  try {
    args = JSON.parse(call.function.arguments);
  } catch {
    // reported below
  }
  ok(args !== null && typeof args === "object",
    "tools: arguments are a JSON object", call.function.arguments);
  messages.push(msg);
  messages.push({ role: "tool", tool_call_id: call.id, content: "42" });
  const r2 = await client.chat.completions.create({ model: MODEL, messages,
    tools });
  const final = r2.choices?.[0];
  ok(typeof final?.message?.content === "string" &&
    final.message.content.includes("42") && final.finish_reason === "stop",
    "tools: the final answer uses the tool result", final);
});

await part("embed", async () => {
  if (!EMBED_MODEL) {
    skip("embeddings", "EMBED_MODEL unset");
    return;
  }
  // No encoding_format: the SDK asks for base64 and decodes it, as most
  // callers (LangChain included) leave it.
  const e = await client.embeddings.create({ model: EMBED_MODEL, input: "hi" });
  const v = e.data?.[0]?.embedding;
  ok(Array.isArray(v) && v.length > 0 && v.every(Number.isFinite),
    "embeddings: one vector of numbers", e.data);
  if (EMBED_DIM > 0)
    ok(Array.isArray(v) && v.length === EMBED_DIM,
      `embeddings: ${EMBED_DIM} dimensions after the SDK's base64 decoding`,
      `got ${v?.length}; the SDK sent encoding_format "base64": an answer ` +
      "with a float array instead decodes to the wrong length");
  ok(e.usage?.prompt_tokens > 0, "embeddings: usage counted", e.usage);
});

console.log(`1..${n}`);
process.exitCode = failed > 0 ? 1 : 0;
