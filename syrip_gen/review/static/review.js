// syrip-gen review page: grid of renders with keypoint overlays; keyboard decisions saved at once.
"use strict";
const LIMB_COLOURS = { left: "#4fc3f7", right: "#ff8a65", centre: "#e0e0e0" };
const state = { images: [], skeleton: [], names: [], decisions: {}, current: 0, undo: [], cards: [] };

function side(i) { const n = state.names[i] || ""; return n.startsWith("left") ? "left" : n.startsWith("right") ? "right" : "centre"; }

function status(text) { document.getElementById("status").textContent = text || ""; }

function svgEl(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function overlay(img) {
  const svg = svgEl("svg", { viewBox: `0 0 ${img.width} ${img.height}`, preserveAspectRatio: "xMidYMid meet" });
  const r = Math.max(img.width, img.height) / 120;
  for (const ann of img.annotations) {
    const k = ann.keypoints || [];
    const pt = (i) => [k[3 * i], k[3 * i + 1], k[3 * i + 2]];
    for (const [a, b] of state.skeleton) {
      const p = pt(a - 1), q = pt(b - 1);
      if (p[2] > 0 && q[2] > 0) {
        const colour = side(a - 1) === side(b - 1) ? LIMB_COLOURS[side(a - 1)] : LIMB_COLOURS.centre;
        svg.appendChild(svgEl("line", { x1: p[0], y1: p[1], x2: q[0], y2: q[1], stroke: colour,
          "stroke-width": r * 0.8, "stroke-linecap": "round", opacity: 0.9 }));
      }
    }
    for (let i = 0; i < state.names.length; i++) {
      const [x, y, v] = pt(i);
      if (v > 0) svg.appendChild(svgEl("circle", { cx: x, cy: y, r: r * 1.1,
        fill: v >= 2 ? LIMB_COLOURS[side(i)] : "none", stroke: LIMB_COLOURS[side(i)], "stroke-width": r * 0.5 }));
    }
  }
  return svg;
}

function autoText(auto) {
  if (!auto) return null;
  if (auto.auto === "accept") return ["auto ✓", "auto-accept", ""];
  const rs = auto.reasons.filter((r) => r.gate !== "reviewer")
    .map((r) => r.gate + (typeof r.value === "number" ? ` ${r.value.toPrecision(3)}` : "") + (r.detail ? ` (${r.detail})` : ""));
  return ["auto ✗", "auto-reject", rs.join(", ")];
}

function buildCard(img, index) {
  const card = document.createElement("div");
  card.className = "card";
  card.dataset.imageId = img.id;
  const frame = document.createElement("div");
  frame.className = "frame";
  frame.style.aspectRatio = `${img.width} / ${img.height}`;
  const im = document.createElement("img");
  im.loading = "lazy";
  im.src = "/images/" + encodeURIComponent(img.file_name);
  im.alt = img.file_name;
  frame.append(im, overlay(img));
  const meta = document.createElement("div");
  meta.className = "meta";
  const file = document.createElement("span");
  file.className = "file";
  file.textContent = `${img.file_name}${img.posture ? " · " + img.posture : ""}`;
  meta.appendChild(file);
  const auto = autoText(img.auto);
  if (auto) {
    const b = document.createElement("span");
    b.className = "badge " + auto[1];
    b.textContent = auto[0];
    meta.appendChild(b);
  }
  const rev = document.createElement("span");
  rev.className = "badge review";
  meta.appendChild(rev);
  if (auto && auto[2]) {
    const reasons = document.createElement("div");
    reasons.className = "reasons";
    reasons.textContent = auto[2];
    meta.appendChild(reasons);
  }
  card.append(frame, meta);
  card.addEventListener("click", () => select(index));
  return card;
}

function paint(index) {
  const card = state.cards[index];
  const d = (state.decisions[String(state.images[index].id)] || {}).decision;
  card.classList.toggle("accept", d === "accept");
  card.classList.toggle("reject", d === "reject");
  card.dataset.decision = d || "";
  const rev = card.querySelector(".badge.review");
  rev.className = "badge review" + (d ? " review-" + d : "");
  rev.textContent = d === "accept" ? "accepted" : d === "reject" ? "rejected" : "";
}

function counts() {
  const n = state.images.length;
  let acc = 0, rej = 0;
  for (const img of state.images) {
    const d = (state.decisions[String(img.id)] || {}).decision;
    if (d === "accept") acc++; else if (d === "reject") rej++;
  }
  document.getElementById("counts").innerHTML =
    `<span>${state.current + 1} / ${n}</span><span style="color:var(--ok)">accepted ${acc}</span>` +
    `<span style="color:var(--bad)">rejected ${rej}</span><span>undecided ${n - acc - rej}</span>`;
}

function select(index) {
  if (!state.cards.length) return;
  index = Math.max(0, Math.min(state.images.length - 1, index));
  state.cards[state.current].classList.remove("current");
  state.current = index;
  const card = state.cards[index];
  card.classList.add("current");
  card.scrollIntoView({ block: "nearest" });
  counts();
}

async function decide(index, decision, remember = true) {
  const img = state.images[index];
  const key = String(img.id);
  const previous = (state.decisions[key] || {}).decision || null;
  try {
    const token = document.querySelector('meta[name="review-token"]').content;  // proves the request is ours
    const res = await fetch("/api/decision", { method: "POST",
      headers: { "Content-Type": "application/json", "X-Review-Token": token },
      body: JSON.stringify({ image_id: img.id, decision }) });
    const body = await res.json();
    if (!res.ok) { status("not saved: " + (body.error || res.status)); return false; }
    state.decisions = body.decisions;
  } catch (err) { status("not saved (server unreachable): " + err); return false; }
  if (remember) state.undo.push({ index, previous });
  for (let i = 0; i < state.images.length; i++) paint(i);  // others' decisions arrive with each reply
  status(`${img.file_name}: ${decision || "cleared"} (saved)`);
  counts();
  return true;
}

function columns() {
  const cards = state.cards;
  if (cards.length < 2) return 1;
  const top = cards[0].offsetTop;
  let n = 0;
  while (n < cards.length && cards[n].offsetTop === top) n++;
  return Math.max(1, n);
}

async function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key;
  const moves = { ArrowRight: 1, l: 1, j: 1, ArrowLeft: -1, h: -1, k: -1 };
  if (k in moves) { select(state.current + moves[k]); e.preventDefault(); return; }
  if (k === "ArrowDown") { select(state.current + columns()); e.preventDefault(); return; }
  if (k === "ArrowUp") { select(state.current - columns()); e.preventDefault(); return; }
  if (k === "a" || k === "r") {
    const i = state.current;
    if (await decide(i, k === "a" ? "accept" : "reject")) select(i + 1);
    return;
  }
  if (k === "u") {
    const last = state.undo.pop();
    if (!last) { status("nothing to undo"); return; }
    if (await decide(last.index, last.previous, false)) select(last.index);
    return;
  }
  if (k === "n") {
    for (let s = 1; s <= state.images.length; s++) {
      const i = (state.current + s) % state.images.length;
      if (!state.decisions[String(state.images[i].id)]) { select(i); return; }
    }
    status("every image has a decision");
    return;
  }
  if (k === "s") { document.body.classList.toggle("hide-skeleton"); return; }
  if (k === "+" || k === "=" || k === "-") {
    const root = document.documentElement;
    const now = parseInt(getComputedStyle(root).getPropertyValue("--card"), 10);
    root.style.setProperty("--card", Math.max(120, Math.min(640, now + (k === "-" ? -40 : 40))) + "px");
  }
}

async function main() {
  const res = await fetch("/api/dataset");
  const data = await res.json();
  if (!res.ok) { status(data.error || "cannot load the dataset"); return; }
  Object.assign(state, { images: data.images, skeleton: data.skeleton, names: data.keypoint_names,
    decisions: data.decisions });
  document.getElementById("name").textContent = `${data.name} · ${data.images.length} images` +
    (data.has_report ? "" : " · no filter report (run `syrip-gen filter` for automatic verdicts)");
  const grid = document.getElementById("grid");
  state.cards = data.images.map((img, i) => buildCard(img, i));
  grid.append(...state.cards);
  state.cards.forEach((_, i) => paint(i));
  select(0);
  document.body.dataset.ready = "1";
  document.addEventListener("keydown", onKey);
}

main();
