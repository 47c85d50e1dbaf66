// The chat page: keeps the dialogue in memory, sends it whole to /v1/chat/completions with the
// key as a bearer token (the key stays in this tab's sessionStorage), and shows each reply as
// it is decoded (`stream: true`: server-sent events, one chunk per piece of text).
"use strict";
const $ = (id) => document.getElementById(id);
const dialogue = [];

$("key").value = sessionStorage.getItem("distillab-key") || "";
$("key").addEventListener("change", () => sessionStorage.setItem("distillab-key", $("key").value));

function show(role, text) {
  const div = document.createElement("div");
  div.className = "turn " + role;
  div.textContent = (role === "user" ? "you: " : role === "assistant" ? "bot: " : "") + text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

// Reads the event stream, calling onText(text so far, chunks so far) per piece of content;
// resolves to the whole text at `data: [DONE]` (or when the stream ends).
async function readStream(response, onText) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", text = "", chunks = 0, cut;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text;
    buffer += decoder.decode(value, { stream: true });
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, cut).split("\n");
      buffer = buffer.slice(cut + 2);
      for (const line of lines) {
        if (!line.startsWith("data: ")) continue;
        if (line === "data: [DONE]") return text;
        const delta = JSON.parse(line.slice(6)).choices[0].delta;
        if (delta.content) {
          text += delta.content;
          onText(text, ++chunks);
        }
      }
    }
  }
}

async function send(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  $("send").disabled = true;
  dialogue.push({ role: "user", content: text });
  show("user", text);
  try {
    const response = await fetch("v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + $("key").value },
      body: JSON.stringify({ messages: dialogue, stream: true }),
    });
    if (!response.ok) {
      const body = await response.json();
      dialogue.pop();
      show("error", "error " + response.status + ": " + ((body.error && body.error.message) || ""));
      return;
    }
    const div = show("assistant", "");
    const reply = await readStream(response, (text, chunks) => {
      div.textContent = "bot: " + text;
      div.dataset.chunks = chunks;
      $("log").scrollTop = $("log").scrollHeight;
    });
    dialogue.push({ role: "assistant", content: reply });
    div.classList.add("done");
  } catch (e) {
    dialogue.pop();
    show("error", "error: " + e);
  } finally {
    $("send").disabled = false;
    $("text").focus();
  }
}

$("form").addEventListener("submit", send);
$("reset").addEventListener("click", () => { dialogue.length = 0; $("log").textContent = ""; });
