// protocols.mjs: the official `openai` SDK's Responses API and the official
// `@anthropic-ai/sdk` Messages API as clients of qwenrelay.
//
// Run by tests/integration/test_protocol_sdks.py from the directory the
// SDKs were installed into, against a gateway whose upstream is the mock.
// Prints TAP itself ("ok N - ...", "not ok N - ...", "#" details, "1..N").
//
// Environment:
//   GW_URL     the gateway's root URL, e.g. http://127.0.0.1:8080
//   API_KEY    a client key (qwenrelay keys add)
//   MOCK_URL   the mock's root URL (to pace its stream and read its state)
//   MODEL      a model the pool serves (default coder-model)
//   CLAUDE     a client model name an alias maps (default claude-code-model)
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";

const env = process.env;
const GW = env.GW_URL;
const KEY = env.API_KEY;
const MOCK = env.MOCK_URL;
const MODEL = env.MODEL || "coder-model";
const CLAUDE = env.CLAUDE || "claude-code-model";

let n = 0;

function ok(cond, desc, detail) {
  n++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${desc}`);
  if (!cond && detail !== undefined) {
    const text = typeof detail === "string" ? detail : JSON.stringify(detail);
    for (const line of String(text).split("\n").slice(0, 20))
      console.log(`#   ${line}`);
  }
  return cond;
}

function describe(e) {
  return `${e?.constructor?.name ?? typeof e} status=${e?.status}: ${e?.message ?? e}`;
}

async function part(name, fn) {
  try {
    await fn();
  } catch (e) {
    ok(false, `${name}: the SDK calls succeed`, describe(e) + "\n" + (e?.stack ?? ""));
  }
}

async function mock(path, body) {
  const r = await fetch(MOCK + path, body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify(body) });
  return r.json();
}

// Is the mock's latest upstream stream still sending?
async function upstreamStillStreaming() {
  const s = await mock("/_mock/streams");
  const last = s[s.length - 1];
  return last !== undefined && last.ended === null;
}

const PACE = { stream_words: 30, stream_chunk_delay_ms: 100 };
const UNPACE = { stream_words: null, stream_chunk_delay_ms: 0 };

if (!GW || !KEY || !MOCK) {
  console.log("Bail out! GW_URL, API_KEY and MOCK_URL must be set");
  process.exit(1);
}

const openai = new OpenAI({ baseURL: GW + "/v1", apiKey: KEY, maxRetries: 0,
  timeout: 60000 });
const anthropic = new Anthropic({ baseURL: GW, apiKey: KEY, maxRetries: 0,
  timeout: 60000 });
const weather = { type: "function", name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } },
    required: ["city"] } };
const weatherA = { name: "get_weather", description: "Weather for a city",
  input_schema: weather.parameters };

// ---- OpenAI Responses API ------------------------------------------------

await part("responses.create", async () => {
  const r = await openai.responses.create({ model: MODEL, input: "hello sdk",
    instructions: "Be brief.", store: false });
  ok(r.object === "response" && r.status === "completed",
    "responses.create: a completed response", r);
  ok(r.output_text === "echo: hello sdk", "responses.create: output_text",
    r.output_text);
  ok(r.usage?.total_tokens === r.usage?.input_tokens + r.usage?.output_tokens &&
    r.usage?.output_tokens > 0, "responses.create: usage", r.usage);
});

await part("responses stream", async () => {
  await mock("/_mock/config", PACE);
  const stream = openai.responses.stream({ model: MODEL, input: "go" });
  let deltas = 0, text = "", early = null;
  for await (const ev of stream) {
    if (ev.type === "response.output_text.delta") {
      if (deltas++ === 0)
        early = await upstreamStillStreaming();
      text += ev.delta;
    }
  }
  const final = await stream.finalResponse();
  await mock("/_mock/config", UNPACE);
  ok(early === true, "responses stream: the first delta arrived before the " +
    "upstream's last chunk");
  ok(deltas >= 30 && text === final.output_text && text.startsWith("w1 w2"),
    `responses stream: ${deltas} deltas make the final text`, text);
  ok(final.status === "completed" && final.usage?.output_tokens === 30,
    "responses stream: completed with usage", final.usage);
});

await part("responses function call", async () => {
  const r1 = await openai.responses.create({ model: MODEL, tools: [weather],
    input: [{ role: "user", content: [{ type: "input_text",
      text: "call tool for Paris" }] }] });
  const call = r1.output.find((i) => i.type === "function_call");
  ok(call && call.name === "get_weather" && JSON.parse(call.arguments).x === 1
    && call.call_id, "responses function call: a function_call item", r1.output);
  const r2 = await openai.responses.create({ model: MODEL, tools: [weather],
    input: [{ role: "user", content: "call tool for Paris" }, call,
      { type: "function_call_output", call_id: call.call_id,
        output: "sunny" }] });
  ok(r2.output_text === "tool result: sunny",
    "responses function call: the output is answered", r2.output_text);
  // The same second turn by previous_response_id (the gateway kept r1).
  const r3 = await openai.responses.create({ model: MODEL, tools: [weather],
    previous_response_id: r1.id, input: [{ type: "function_call_output",
      call_id: call.call_id, output: "rainy" }] });
  ok(r3.output_text === "tool result: rainy" &&
    r3.previous_response_id === r1.id,
    "responses function call: continued by previous_response_id", r3);
  // Streamed, the arguments in many pieces.
  await mock("/_mock/config", { tool_args_chunk: 2,
    tool_args: { get_weather: { city: "Paris", unit: "celsius" } } });
  const s = openai.responses.stream({ model: MODEL, tools: [weather],
    input: "call tool please" });
  let pieces = 0;
  s.on("response.function_call_arguments.delta", () => pieces++);
  const f = await s.finalResponse();
  await mock("/_mock/config", { tool_args_chunk: null, tool_args: null });
  const fc = f.output.find((i) => i.type === "function_call");
  ok(fc && JSON.parse(fc.arguments).city === "Paris" && pieces > 5,
    `responses function call streamed: arguments from ${pieces} deltas`, f.output);
});

await part("responses auth", async () => {
  const bad = new OpenAI({ baseURL: GW + "/v1", apiKey: "qr-bad-key",
    maxRetries: 0 });
  try {
    await bad.responses.create({ model: MODEL, input: "x" });
    ok(false, "responses: a bad key is refused");
  } catch (e) {
    ok(e instanceof OpenAI.AuthenticationError, "responses: bad key -> " +
      "AuthenticationError", describe(e));
  }
});

// ---- Anthropic Messages ------------------------------------------------------

await part("messages.create", async () => {
  const m = await anthropic.messages.create({ model: CLAUDE, max_tokens: 256,
    system: [{ type: "text", text: "Be brief.",
      cache_control: { type: "ephemeral" } }],
    messages: [{ role: "user", content: "hello claude" }] });
  ok(m.type === "message" && m.role === "assistant" && m.model === CLAUDE,
    "messages.create: a message", m);
  ok(m.content[0]?.type === "text" && m.content[0].text === "echo: hello claude",
    "messages.create: text content", m.content);
  ok(m.stop_reason === "end_turn" && m.usage.output_tokens === 3 &&
    m.usage.input_tokens > 0, "messages.create: stop_reason and usage", m);
  const bearer = new Anthropic({ baseURL: GW, authToken: KEY, apiKey: null,
    maxRetries: 0 });
  const m2 = await bearer.messages.create({ model: CLAUDE, max_tokens: 10,
    messages: [{ role: "user", content: "bearer" }] });
  ok(m2.content[0]?.text === "echo: bearer",
    "messages.create with authToken (Authorization: Bearer)", m2);
});

await part("messages.create stream", async () => {
  const s = await anthropic.messages.create({ model: CLAUDE, max_tokens: 99,
    stream: true, messages: [{ role: "user", content: "stream me" }] });
  const types = [];
  let text = "";
  for await (const ev of s) {
    types.push(ev.type);
    if (ev.type === "content_block_delta" && ev.delta.type === "text_delta")
      text += ev.delta.text;
  }
  ok(types[0] === "message_start" && types.at(-1) === "message_stop" &&
    types.includes("message_delta"), "messages.create stream: event order",
    types);
  ok(text === "echo: stream me", "messages.create stream: text", text);
});

await part("messages.stream", async () => {
  await mock("/_mock/config", PACE);
  const s = anthropic.messages.stream({ model: CLAUDE, max_tokens: 99,
    messages: [{ role: "user", content: "go" }] });
  let early = null, deltas = 0;
  s.on("text", () => { deltas++; });
  for await (const ev of s) {
    if (ev.type === "content_block_delta" && early === null)
      early = await upstreamStillStreaming();
  }
  const m = await s.finalMessage();
  await mock("/_mock/config", UNPACE);
  ok(early === true, "messages.stream: the first delta arrived before the " +
    "upstream's last chunk");
  ok(deltas >= 30 && m.content[0].text.startsWith("w1 w2 w3") &&
    m.usage.output_tokens === 30 && m.stop_reason === "end_turn",
    `messages.stream: final message from ${deltas} deltas, usage`, m);
});

await part("messages tool_use", async () => {
  await mock("/_mock/config", { tool_args_chunk: 3,
    tool_args: { get_weather: { city: "Paris" } } });
  const s = anthropic.messages.stream({ model: CLAUDE, max_tokens: 200,
    tools: [weatherA], messages: [{ role: "user", content: "call tool now" }] });
  let pieces = 0;
  s.on("inputJson", () => pieces++);
  const m1 = await s.finalMessage();
  await mock("/_mock/config", { tool_args_chunk: null, tool_args: null });
  const use = m1.content.find((b) => b.type === "tool_use");
  ok(use && use.name === "get_weather" && use.input.city === "Paris" &&
    m1.stop_reason === "tool_use" && pieces > 3,
    `messages tool_use (streamed): input from ${pieces} input_json deltas`,
    m1);
  const m2 = await anthropic.messages.create({ model: CLAUDE, max_tokens: 200,
    tools: [weatherA], messages: [
      { role: "user", content: "call tool now" },
      { role: "assistant", content: m1.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: use.id,
        content: "sunny" }] }] });
  ok(m2.content[0]?.text === "tool result: sunny" &&
    m2.stop_reason === "end_turn", "messages tool_use: tool_result answered",
    m2);
});

await part("messages count_tokens", async () => {
  const c = await anthropic.messages.countTokens({ model: CLAUDE,
    messages: [{ role: "user", content: "x".repeat(400) }] });
  ok(c.input_tokens > 50 && c.input_tokens < 300,
    "messages.countTokens: an estimate", c);
});

await part("messages auth", async () => {
  const bad = new Anthropic({ baseURL: GW, apiKey: "qr-bad-key",
    maxRetries: 0 });
  try {
    await bad.messages.create({ model: CLAUDE, max_tokens: 5,
      messages: [{ role: "user", content: "x" }] });
    ok(false, "messages: a bad key is refused");
  } catch (e) {
    ok(e instanceof Anthropic.AuthenticationError &&
      e.error?.error?.type === "authentication_error",
      "messages: bad key -> AuthenticationError", describe(e));
  }
});

console.log(`1..${n}`);
