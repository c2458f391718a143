// Agent screen-pop. Everything from the call (caller speech, slot values) is untrusted text:
// it is only ever placed with textContent, never parsed as HTML.
"use strict";

const sessionId = decodeURIComponent(location.pathname.split("/").pop());
const link = new URLSearchParams(location.search).get("link") || "";

function setText(id, value) {
  document.getElementById(id).textContent = value == null || value === "" ? "—" : String(value);
}

function render(ctx) {
  setText("status", ctx.status);
  const caller = [ctx.caller && ctx.caller.name, ctx.caller && ctx.caller.number].filter(Boolean).join(" ");
  setText("caller", caller);
  setText("called", ctx.called_number);
  setText("intent", ctx.intent);
  setText("reason", ctx.reason);
  setText("summary", ctx.summary);
  document.getElementById("incomplete").hidden = !ctx.incomplete;

  const body = document.querySelector("#slots tbody");
  body.replaceChildren();
  for (const [name, value] of Object.entries(ctx.slots || {})) {
    const row = body.insertRow();
    row.insertCell().textContent = name;
    row.insertCell().textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  const list = document.getElementById("transcript");
  list.replaceChildren();
  for (const line of ctx.transcript || []) {
    const li = document.createElement("li");
    const who = document.createElement("span");
    who.className = "speaker speaker-" + (["caller", "agent", "system"].includes(line.speaker) ? line.speaker : "system");
    who.textContent = line.speaker + ":";
    li.append(who, document.createTextNode(line.text));
    list.append(li);
  }
}

async function refresh() {
  let delay = 2;
  try {
    const r = await fetch("/api/context/" + encodeURIComponent(sessionId), {
      headers: { "X-IVA-Link": link },
      cache: "no-store",
    });
    const ctx = await r.json();
    if (!r.ok) throw new Error(ctx.error || "HTTP " + r.status);
    document.getElementById("error").hidden = true;
    render(ctx);
    document.body.dataset.loaded = "true";
    delay = ctx.refresh_seconds || delay;
    if (ctx.status === "ended") return;  // nothing more will change
  } catch (e) {
    const el = document.getElementById("error");
    el.textContent = "Could not load the call: " + e.message;
    el.hidden = false;
    document.body.dataset.loaded = "error";
  }
  setTimeout(refresh, delay * 1000);
}

refresh();
