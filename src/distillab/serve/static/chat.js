// The chat page: keeps the dialogue in memory, sends it whole to /v1/chat/completions with the
// key as a bearer token (the key stays in this tab's sessionStorage), shows each reply.
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
      body: JSON.stringify({ messages: dialogue }),
    });
    const body = await response.json();
    if (!response.ok) {
      dialogue.pop();
      show("error", "error " + response.status + ": " + ((body.error && body.error.message) || ""));
      return;
    }
    const reply = body.choices[0].message.content;
    dialogue.push({ role: "assistant", content: reply });
    show("assistant", reply);
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
