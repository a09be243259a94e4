// The review page: a queue of dialogues (review order, filters), one dialogue, and the rating form.
// Plain DOM, no framework: the server is synth_empathy/review/app.py.
"use strict";

const SCALES = [
  { key: "sensibility", label: "Sensibility", hint: "emotional depth", max: 10 },
  { key: "rationality", label: "Rationality", hint: "sound, specific, helpful", max: 10 },
  { key: "er", label: "ER", hint: "emotional reactions", max: 2 },
  { key: "ip", label: "IP", hint: "interpretations", max: 2 },
  { key: "ex", label: "EX", hint: "explorations", max: 2 },
];

const state = {
  meta: null,          // /api/items minus the items
  items: [],           // summaries in review order
  visible: [],         // the filtered items
  current: null,       // id of the dialogue shown
  detail: null,        // /api/items/{id}
  form: null,          // { ratings, failures, keep, note, edits: {index: text} }
  row: 0,              // the active rating row (scales, then failure flags)
  hideJudge: false,
};

const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const words = (s) => String(s).replaceAll("_", " ");

async function api(path, options) {
  const res = await fetch(path, options);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

// ------------------------------------------------------------------ queue and filters

function fillSelect(select, counts) {
  for (const [value, n] of Object.entries(counts)) {
    select.append(h("option", { value }, `${words(value)} (${n})`));
  }
}

function applyFilters() {
  const emotion = $("f-emotion").value, problem = $("f-problem").value, stage = $("f-stage").value;
  const metric = $("f-metric").value;
  const lo = $("f-min").value === "" ? null : Number($("f-min").value);
  const hi = $("f-max").value === "" ? null : Number($("f-max").value);
  const unlabelled = $("f-unlabelled").checked;
  state.visible = state.items.filter((it) => {
    if (emotion && it.emotion !== emotion) return false;
    if (problem && it.problem_type !== problem) return false;
    if (stage && it.stage !== stage) return false;
    if (unlabelled && it.mine && it.id !== state.current) return false;
    if (lo !== null || hi !== null) {
      const v = it[metric];
      if (v === null) return false;
      if (lo !== null && v < lo) return false;
      if (hi !== null && v > hi) return false;
    }
    return true;
  });
  renderQueue();
}

function renderQueue() {
  const list = $("queue");
  list.replaceChildren(...state.visible.map((it, i) => {
    const score = it.sensibility === null ? "unscored" : `S ${it.sensibility} · R ${it.rationality}`;
    return h("li", { class: it.id === state.current ? "current" : "", "data-id": it.id, onclick: () => show(it.id) },
      h("span", { class: "topic" }, `${i + 1}. ${it.emotion} · ${words(it.problem_type)}`),
      h("span", { class: "done", title: "labelled by you" }, it.mine ? "✓" : ""),
      h("span", { class: "sub" },
        h("span", { class: `tag ${it.stage === "kept" ? "kept" : "rejected"}` }, it.stage),
        h("span", {}, score),
        it.why !== "random" ? h("span", { class: "tag why" }, it.why) : null,
        it.reviewers.length ? h("span", {}, `${it.reviewers.length} label${it.reviewers.length > 1 ? "s" : ""}`) : null));
  }));
  $("count").textContent = `${state.visible.length} of ${state.items.length} dialogues shown · judge's close calls first`;
  const cur = list.querySelector("li.current");
  if (cur) cur.scrollIntoView({ block: "nearest" });
}

function renderProgress(p) {
  $("progress").textContent = `${p.mine} of ${p.total} labelled by you`;
}

// ------------------------------------------------------------------ one dialogue

function emptyForm(detail) {
  const mine = detail.my_label;
  const form = { ratings: {}, failures: {}, keep: null, note: "", edits: {} };
  for (const name of state.meta.failures) form.failures[name] = false;
  if (mine) {  // a relabel starts from the reviewer's last word, never from the judge's (no anchoring)
    for (const s of SCALES) form.ratings[s.key] = mine.ratings[s.key];
    Object.assign(form.failures, mine.ratings.failures || {});
    form.keep = mine.keep;
    form.note = mine.note || "";
    for (const e of mine.edits) form.edits[e.index] = e.text;
  }
  return form;
}

function seedCard(d, detail) {
  const p = d.seed.persona, s = d.seed.situation;
  const hidden = s.hidden_details.length
    ? h("ul", {}, s.hidden_details.map((x) => h("li", {}, x))) : h("span", { class: "did" }, "none");
  return h("section", { class: "card", id: "seed" },
    h("h2", {}, `${d.seed.emotion} · ${words(d.seed.problem_type)}`,
      h("span", { class: `tag ${detail.stage === "kept" ? "kept" : "rejected"}` },
        detail.stage === "kept" ? "kept" : `rejected at ${detail.stage}: ${detail.reasons.map(words).join(", ")}`),
      detail.why !== "random" ? h("span", { class: "tag why" }, detail.why) : null,
      h("span", { class: "did" }, d.id)),
    h("div", { class: "seed" },
      h("dl", {},
        h("dt", {}, "persona"), h("dd", {}, `${p.name}, ${p.age_band}, ${words(p.life_stage)}`),
        h("dt", {}, "works as"), h("dd", {}, `${p.occupation}, ${p.region}`),
        h("dt", {}, "speaks"), h("dd", {}, `${words(p.communication_style)}; wants ${p.support_preference}`),
        h("dt", {}, "bio"), h("dd", {}, p.bio)),
      h("dl", {},
        h("dt", {}, "emotion"), h("dd", {}, `${d.seed.emotion}, intensity ${d.seed.intensity}/10`),
        h("dt", {}, "problem"), h("dd", {}, `${words(d.seed.problem_type)} (${s.domain})`),
        h("dt", {}, "ending"), h("dd", {}, `${words(d.ending)} after ${d.turns.length} turns${d.crisis ? " · crisis" : ""}`),
        h("dt", {}, "hidden"), h("dd", {}, hidden)),
      h("p", { class: "situation" }, h("b", {}, "Situation: "), s.text)));
}

function draftsBlock(turn) {
  if (!turn.drafts || !turn.drafts.length) return null;
  return h("details", { class: "drafts" },
    h("summary", {}, `${turn.drafts.length} draft${turn.drafts.length > 1 ? "s" : ""} and critique`),
    turn.drafts.map((dr, i) => {
      const c = dr.critique;
      return h("div", { class: "draft" },
        h("div", {}, `draft ${i + 1} · ER ${c.er} IP ${c.ip} EX ${c.ex}`,
          c.failures.length ? ` · ${c.failures.map(words).join(", ")}` : ""),
        h("div", { class: "text" }, dr.text),
        c.feedback ? h("div", {}, h("i", {}, `critique: ${c.feedback}`)) : null);
    }));
}

function turnBlock(turn, index) {
  const edited = state.form.edits[index] !== undefined;
  const meta = turn.role === "seeker"
    ? [h("span", {}, `seeker${turn.intensity !== null && turn.intensity !== undefined ? ` · intensity ${turn.intensity}` : ""}`)]
    : [h("span", {}, `supporter · ${words(turn.strategy)}${turn.revised ? " · revised" : ""}`),
       h("button", { type: "button", class: "edit-link", onclick: () => startEdit(index) }, edited ? "edit again" : "edit"),
       edited ? h("button", { type: "button", class: "edit-link", onclick: () => revertEdit(index) }, "revert") : null];
  const block = h("div", { class: `turn ${turn.role}${edited ? " edited" : ""}`, "data-index": index },
    h("div", { class: "meta" }, meta),
    h("div", { class: `bubble${edited ? " original" : ""}` }, turn.text));
  if (edited) {
    const area = h("textarea", { "data-index": index, "aria-label": `your version of turn ${index + 1}` });
    area.value = state.form.edits[index];
    area.addEventListener("input", () => { state.form.edits[index] = area.value; renderEditsSummary(); });
    block.append(area);
  }
  if (turn.role === "supporter") block.append(draftsBlock(turn) || "");
  return block;
}

function judgeCard(d) {
  const s = d.scores;
  const t = state.meta.thresholds;
  let body;
  if (!s) {
    body = h("p", { class: "rationale" }, "Not scored: the dialogue stopped before the judge.");
  } else {
    const chip = (m) => h("span", { class: `chip ${s[m] >= t[m] ? "good" : "bad"}` }, `${m} ${s[m]} (keep ≥ ${t[m]})`);
    const flags = Object.entries(s.failures || {}).filter(([, v]) => v).map(([k]) => words(k));
    const spread = s.spread ? Object.entries(s.spread).map(([k, v]) => `${k} ±${v}`).join(", ") : null;
    body = h("div", { class: "body" },
      h("div", { class: "scores" }, chip("sensibility"), chip("rationality"),
        h("span", { class: "chip" }, `ER ${s.er} · IP ${s.ip} · EX ${s.ex}`),
        h("span", { class: "chip" }, `${s.samples} sample${s.samples > 1 ? "s" : ""}${spread ? `, spread ${spread}` : ""}`),
        flags.length ? h("span", { class: "chip bad" }, flags.join(", ")) : null),
      s.rationale ? h("p", { class: "rationale" }, s.rationale) : null);
  }
  return h("section", { class: `card judge${state.hideJudge ? " hidden" : ""}`, id: "judge" },
    h("h3", {}, "The judge"), body, h("p", { class: "hidden-note" }, "Hidden (h shows it)."));
}

function renderDialogue() {
  const detail = state.detail;
  const d = detail.dialogue;
  $("dialogue").replaceChildren(
    seedCard(d, detail),
    h("section", { class: "card" }, h("h3", {}, "Conversation"),
      h("div", { class: "chat" }, d.turns.map((t, i) => turnBlock(t, i)))),
    judgeCard(d));
}

function renderOthers() {
  const others = state.detail.labels.filter((l) => l.reviewer !== state.meta.reviewer);
  $("others").replaceChildren(...(others.length ? [
    h("div", {}, "Other reviewers:"),
    h("ul", {}, others.map((l) => h("li", {}, `${l.reviewer}: ${l.keep ? "keep" : "reject"}` +
      (l.ratings.sensibility !== null ? `, S ${l.ratings.sensibility}` : "") +
      (l.ratings.rationality !== null ? `, R ${l.ratings.rationality}` : "")))),
  ] : []));
}

// ------------------------------------------------------------------ the form

function rowCount() { return SCALES.length + state.meta.failures.length; }

function renderForm() {
  const f = state.form;
  const rows = SCALES.map((s, i) => h("div", { class: `row${state.row === i ? " active" : ""}`, "data-row": i },
    h("div", { class: "name" }, h("span", {}, h("b", {}, s.label), ` ${s.hint}`),
      h("span", {}, f.ratings[s.key] === null || f.ratings[s.key] === undefined ? "–" : `${f.ratings[s.key]} / ${s.max}`)),
    h("div", { class: `scale${s.max <= 2 ? " short" : ""}` },
      Array.from({ length: s.max + 1 }, (_, v) => h("button", {
        type: "button", class: f.ratings[s.key] === v ? "on" : "", "data-value": v,
        onclick: () => { state.row = i; setRating(s.key, v); },
      }, v)))));
  const flags = state.meta.failures.map((name, j) => {
    const i = SCALES.length + j;
    return h("div", { class: `row flag${state.row === i ? " active" : ""}`, "data-row": i },
      h("span", { class: "name" }, words(name)),
      h("button", { type: "button", class: `switch${f.failures[name] ? " on" : ""}`, role: "switch",
        "aria-checked": f.failures[name] ? "true" : "false", "aria-label": words(name),
        onclick: () => { state.row = i; f.failures[name] = !f.failures[name]; renderForm(); } }));
  });
  $("rows").replaceChildren(...rows, h("div", { class: "flags-title" }, "Failure flags"), ...flags);
  $("keep").classList.toggle("on", f.keep === true);
  $("reject").classList.toggle("on", f.keep === false);
  if (document.activeElement !== $("note")) $("note").value = f.note;
  renderEditsSummary();
}

function renderEditsSummary() {
  const n = Object.keys(state.form.edits).length;
  $("edits-summary").textContent = n ? `${n} supporter turn${n > 1 ? "s" : ""} rewritten` : "";
}

function setRating(key, value) {
  const scale = SCALES.find((s) => s.key === key);
  state.form.ratings[key] = Math.max(0, Math.min(scale.max, value));
  renderForm();
}

function activeRowDigit(digit) {
  if (state.row < SCALES.length) {
    const s = SCALES[state.row];
    if (digit <= s.max) setRating(s.key, digit);
  } else if (digit <= 1) {
    state.form.failures[state.meta.failures[state.row - SCALES.length]] = digit === 1;
    renderForm();
  }
}

function stepActiveRow(delta) {
  if (state.row < SCALES.length) {
    const s = SCALES[state.row];
    const v = state.form.ratings[s.key];
    setRating(s.key, v === null || v === undefined ? (delta > 0 ? 0 : s.max) : v + delta);
  } else {
    const name = state.meta.failures[state.row - SCALES.length];
    state.form.failures[name] = delta > 0;
    renderForm();
  }
}

function setKeep(value) { state.form.keep = value; renderForm(); }

function startEdit(index) {
  if (state.form.edits[index] === undefined) state.form.edits[index] = state.detail.dialogue.turns[index].text;
  renderDialogue();
  const area = document.querySelector(`textarea[data-index="${index}"]`);
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

function revertEdit(index) {
  delete state.form.edits[index];
  renderDialogue();
  renderEditsSummary();
}

function editNextSupporterTurn() {
  const turns = state.detail.dialogue.turns;
  const supporter = turns.map((t, i) => (t.role === "supporter" ? i : -1)).filter((i) => i >= 0);
  if (!supporter.length) return;
  const focused = document.activeElement && document.activeElement.dataset
    ? Number(document.activeElement.dataset.index) : NaN;
  const after = supporter.find((i) => i > (Number.isNaN(focused) ? -1 : focused));
  startEdit(after === undefined ? supporter[0] : after);
}

function status(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.className = `status ${kind || ""}`;
}

async function save() {
  const f = state.form;
  if (f.keep === null) { status("Choose keep (a) or reject (r) first.", "error"); return; }
  const ratings = { failures: f.failures };
  for (const s of SCALES) ratings[s.key] = f.ratings[s.key] === undefined ? null : f.ratings[s.key];
  const edits = Object.entries(f.edits).map(([index, text]) => ({ index: Number(index), text }));
  try {
    const out = await api("/api/labels", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ dialogue_id: state.current, ratings, keep: f.keep, note: $("note").value, edits }),
    });
    const i = state.items.findIndex((it) => it.id === out.item.id);
    state.items[i] = out.item;
    renderProgress(out.progress);
    const saved = out.label.edits.length ? ` with ${out.label.edits.length} edited turn(s)` : "";
    const next = neighbour(1);
    applyFilters();
    if (next && next !== state.current) await show(next);
    status(`Saved ${out.label.dialogue_id}: ${out.label.keep ? "keep" : "reject"}${saved}.`, "ok");
  } catch (err) {
    status(`Not saved: ${err.message}`, "error");
  }
}

// ------------------------------------------------------------------ navigation

function neighbour(delta) {
  const i = state.visible.findIndex((it) => it.id === state.current);
  const j = i + delta;
  return j >= 0 && j < state.visible.length ? state.visible[j].id : null;
}

async function show(id) {
  if (!id) return;
  state.current = id;
  state.detail = await api(`/api/items/${encodeURIComponent(id)}`);
  state.form = emptyForm(state.detail);
  state.row = 0;
  status("");
  renderDialogue();
  renderForm();
  renderOthers();
  renderQueue();
  $("dialogue").scrollTop = 0;
}

function typing(el) {
  return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || (el.tagName === "INPUT" && el.type !== "checkbox"));
}

function onKey(ev) {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); save(); return; }
  if (typing(ev.target)) {
    if (ev.key === "Escape") { ev.preventDefault(); ev.target.blur(); }
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const help = $("help");
  if (ev.key === "?") { help.hidden = !help.hidden; return; }
  if (!help.hidden && ev.key === "Escape") { help.hidden = true; return; }
  if (!state.detail) return;
  const handled = {
    j: () => show(neighbour(1)),
    k: () => show(neighbour(-1)),
    a: () => setKeep(true),
    r: () => setKeep(false),
    e: () => editNextSupporterTurn(),
    m: () => $("note").focus(),
    h: () => { state.hideJudge = !state.hideJudge; $("judge").classList.toggle("hidden", state.hideJudge); },
    ArrowDown: () => { state.row = (state.row + 1) % rowCount(); renderForm(); },
    ArrowUp: () => { state.row = (state.row - 1 + rowCount()) % rowCount(); renderForm(); },
    ArrowRight: () => stepActiveRow(1),
    ArrowLeft: () => stepActiveRow(-1),
    " ": () => {
      if (state.row >= SCALES.length) {
        const name = state.meta.failures[state.row - SCALES.length];
        state.form.failures[name] = !state.form.failures[name];
        renderForm();
      }
    },
    Enter: () => save(),
  }[ev.key];
  if (handled) { ev.preventDefault(); handled(); return; }
  if (/^[0-9]$/.test(ev.key)) { ev.preventDefault(); activeRowDigit(Number(ev.key)); }
}

async function start() {
  const data = await api("/api/items");
  state.items = data.items;
  delete data.items;
  state.meta = data;
  $("corpus").textContent = data.corpus;
  $("reviewer").textContent = `reviewer: ${data.reviewer}`;
  renderProgress(data.progress);
  fillSelect($("f-emotion"), data.facets.emotion);
  fillSelect($("f-problem"), data.facets.problem_type);
  fillSelect($("f-stage"), data.facets.stage);
  for (const id of ["f-emotion", "f-problem", "f-stage", "f-metric", "f-min", "f-max", "f-unlabelled"]) {
    $(id).addEventListener("input", applyFilters);
  }
  $("keep").addEventListener("click", () => setKeep(true));
  $("reject").addEventListener("click", () => setKeep(false));
  $("note").addEventListener("input", () => { state.form.note = $("note").value; });
  $("rating").addEventListener("submit", (ev) => { ev.preventDefault(); save(); });
  $("help-button").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
  $("help").addEventListener("click", (ev) => { if (ev.target === $("help")) $("help").hidden = true; });
  document.addEventListener("keydown", onKey);
  applyFilters();
  const first = state.items.find((it) => !it.mine) || state.items[0];
  if (first) await show(first.id);
  else $("dialogue").replaceChildren(h("p", { class: "empty" }, "This folder holds no dialogue to review."));
}

start().catch((err) => status(`Could not load the folder: ${err.message}`, "error"));
