// The review page: show each photo with its face boxes, let the person fix them, save blurred copies.
// Boxes are kept in full-resolution photo pixels; the page only scales them for display.
"use strict";

const $ = (id) => document.getElementById(id);
const MIN_BOX = 4; // screen pixels: a shorter drag is a click, not a new box

const state = {
  photos: [],          // records from the server; regions/method/shape are edited here
  current: 0,
  selected: -1,        // index into the current photo's regions
  preview: false,
  previewUrl: null,
  shownIndex: -1,      // photo whose image is in <img>
  seen: new Set(),
  changedSinceSave: new Set(),
  saveTimers: new Map(),
  finished: false,
  saving: false,       // one save at a time, whether from a button or a key
  overwrite: false,    // blur review --overwrite: copies already saved are replaced without asking
  replace: new Set(),  // photos whose earlier copy the person chose to replace
  zoom: 1,             // 1 = the photo fits the window
  fitWidth: 0,         // displayed width of the photo at zoom 1
  hunt: false,         // hide what is covered: the preview, no boxes but the maybes
  maybe: -1,           // index into the current photo's maybes still open
  dismissed: new Map(), // photo index -> ranks of the maybes the person dismissed
  area: -1,            // index of the last area where people are that was shown
};

const ZOOMS = [1, 1.5, 2, 3, 4, 6];

// ---- talking to the server ---------------------------------------------------------------------

async function request(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = `the page could not reach the tool (error ${response.status})`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function edits(photo) {
  return {
    method: photo.method,
    shape: photo.shape,
    regions: photo.regions.map((r) => ({ x0: r.x0, y0: r.y0, x1: r.x1, y1: r.y1, keep: r.keep, score: r.score, source: r.source })),
  };
}

function changed(photo) {
  if (photo.exported) state.changedSinceSave.add(photo.index);
  clearTimeout(state.saveTimers.get(photo.index));
  state.saveTimers.set(photo.index, setTimeout(() => {
    request("PUT", `api/photos/${photo.index}`, edits(photo)).catch((e) => say(e.message, true));
  }, 250));
  if (state.hunt) setPreview(true); // the hidden view follows the change
  else if (state.preview) setPreview(false);
  render();
}

async function refresh() {
  const { photos, overwrite } = await (await request("GET", `api/photos?current=${state.current}`)).json();
  state.overwrite = overwrite;
  photos.forEach((fresh, i) => {
    const known = state.photos[i];
    // Keep the person's edits; take everything about photos that were still being checked.
    if (!known || known.state !== "ready") state.photos[i] = fresh;
  });
  render();
  if (state.photos.some((p) => p.state === "waiting")) setTimeout(() => refresh().catch(() => {}), 1000);
}

// ---- drawing -------------------------------------------------------------------------------------

function currentPhoto() { return state.photos[state.current]; }

function plural(n, word, many = `${word}s`) { return `${n} ${n === 1 ? word : many}`; }

function blockedByCopy(photo) {
  // A copy saved before this review (by `blur`, say) is replaced only when the person asks.
  return photo.existing && !state.overwrite && !state.replace.has(photo.index);
}

function boxLabel(r) {
  // Plain found faces need no label (the colour says it); labels would crowd a crowd.
  if (r.keep) return "visible";
  if (r.weak) return "not sure";
  return "";
}

function openMaybes(photo) {
  // The second opinion's places the person has neither confirmed (a box now) nor dismissed.
  const dismissed = state.dismissed.get(photo.index) || new Set();
  return (photo.maybes || []).filter((m) => !dismissed.has(m.rank));
}

function render() {
  if (state.finished) return;
  renderSummary();
  renderQueue();
  renderPhoto();
  renderPanel();
}

function renderSummary() {
  const photos = state.photos;
  const look = photos.filter((p) => p.flags.length || p.state === "failed").length;
  const saved = photos.filter((p) => p.exported && !state.changedSinceSave.has(p.index)).length;
  const waiting = photos.filter((p) => p.state === "waiting").length;
  let text = `${plural(photos.length, "photo")} · ${look} ${look === 1 ? "needs" : "need"} a closer look · ${saved} saved`;
  if (waiting) text += ` · still checking ${waiting}`;
  $("summary").textContent = photos.length ? text : "No photos were given.";
}

function queueMeta(photo) {
  if (photo.state === "waiting") return "looking for faces…";
  if (photo.state === "failed") return "cannot be used";
  const hidden = photo.regions.filter((r) => !r.keep).length;
  return plural(hidden, "box", "boxes") + (photo.regions.length > hidden ? `, ${photo.regions.length - hidden} visible` : "");
}

function renderQueue() {
  const list = $("queue");
  if (list.children.length !== state.photos.length) {
    list.replaceChildren(...state.photos.map((photo) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.addEventListener("click", () => go(photo.index));
      item.append(button);
      return item;
    }));
  }
  state.photos.forEach((photo, i) => {
    const button = list.children[i].firstChild;
    button.setAttribute("aria-current", i === state.current ? "true" : "false");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = photo.file;
    name.title = photo.name;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = queueMeta(photo);
    const badges = [];
    if (photo.state === "failed") badges.push(["failed", "problem"]);
    else if (photo.flags.length) badges.push(["look", "check"]);
    if (photo.exported && !state.changedSinceSave.has(i)) badges.push(["saved", "saved"]);
    else if (photo.existing) badges.push(["copy", "earlier copy"]);
    for (const [kind, text] of badges) {
      const badge = document.createElement("span");
      badge.className = `badge ${kind}`;
      badge.textContent = text;
      meta.append(badge);
    }
    button.replaceChildren(name, meta);
  });
}

function noticeFor(photo) {
  if (!photo) return ["", ""];
  if (state.preview) return ["preview", "Preview: this is how the saved copy will look. Press P or Preview again to go back to editing."];
  if (photo.state === "waiting") return ["", "Looking for faces… this takes a few seconds."];
  if (photo.state === "failed") return ["failed", `This photo cannot be used: ${photo.error}. Nothing will be saved for it.`];
  const notes = [];
  let kind = "";
  if (photo.flags.includes("no-face")) {
    kind = "look";
    notes.push("No face was found. Look carefully: if you see any face, drag a box over it.");
  } else {
    notes.push(`${plural(photo.detected, "face")} found. Look for faces that were missed: small, turned away, masked, in shadow or in reflections.`);
  }
  if (photo.flags.includes("uncertain")) {
    kind = "look";
    notes.push(`${photo.weak === 1 ? "One box is" : `${photo.weak} boxes are`} uncertain (dashed orange): it is safest to keep them.`);
  }
  return [kind, notes.join(" ")];
}

function renderPhoto() {
  const photo = currentPhoto();
  const [kind, text] = noticeFor(photo);
  $("notice").className = `notice ${kind}`;
  $("notice").textContent = text;
  $("position").textContent = photo ? `Photo ${state.current + 1} of ${state.photos.length}` : "";
  $("prev").disabled = state.current <= 0;
  $("next").disabled = state.current >= state.photos.length - 1;
  const image = $("photo");
  if (!photo || photo.state !== "ready") {
    image.removeAttribute("src");
    state.shownIndex = -1;
    $("boxes").replaceChildren();
    return;
  }
  if (state.shownIndex !== photo.index && !state.preview) {
    image.src = `api/photos/${photo.index}/view`;
    image.alt = `Photo ${photo.file}`;
    state.shownIndex = photo.index;
  }
  state.seen.add(photo.index);
  renderBoxes(photo);
}

function boxElement(photo, r, label, kinds, selected) {
  // A box over the photo, placed in percent of its size so it follows every zoom.
  const box = document.createElement("div");
  box.className = `box ${kinds}`.trim();
  if (selected) box.classList.add("selected");
  box.style.left = `${(100 * r.x0) / photo.width}%`;
  box.style.top = `${(100 * r.y0) / photo.height}%`;
  box.style.width = `${(100 * (r.x1 - r.x0)) / photo.width}%`;
  box.style.height = `${(100 * (r.y1 - r.y0)) / photo.height}%`;
  if (label) {
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = label;
    box.title = label;
    box.append(tag);
  }
  return box;
}

function renderBoxes(photo) {
  const layer = $("boxes");
  layer.classList.toggle("hidden", state.preview && !state.hunt);
  const maybes = openMaybes(photo).map((m, i) => {
    const box = boxElement(photo, m, `maybe ${m.rank}`, "maybe", i === state.maybe);
    box.dataset.maybe = String(i);
    box.title = `maybe ${m.rank}: ${m.why}`;
    return box;
  });
  const regions = state.hunt ? [] : photo.regions.map((r, i) => {
    const kinds = [r.weak && "weak", r.source === "person" && "person", r.keep && "keep"].filter(Boolean);
    const box = boxElement(photo, r, boxLabel(r), kinds.join(" "), i === state.selected);
    box.dataset.index = String(i);
    if (i === state.selected) {
      for (const corner of ["nw", "ne", "sw", "se"]) {
        const handle = document.createElement("span");
        handle.className = `handle ${corner}`;
        handle.dataset.corner = corner;
        box.append(handle);
      }
    }
    return box;
  });
  layer.replaceChildren(...regions, ...maybes);
  if (!drag) placeTags();
}

function overlaps(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

function placeTags() {
  // Keep each label inside the photo (no scrollbar at Fit) and off every other label and box, so a
  // crowd stays readable; a label that does not fit is hidden (its box's colour and title still tell).
  const layer = $("boxes");
  const boxes = [...layer.children];
  const tags = boxes.map((box) => box.querySelector(".tag"));
  if (!tags.some(Boolean)) return;
  for (const tag of tags) if (tag) tag.classList.remove("end", "below", "crowded");
  const photo = layer.getBoundingClientRect();
  const rects = boxes.map((box) => box.getBoundingClientRect());
  const sizes = new Map(); // label text -> [width, height]; every label of a text has the same size
  tags.forEach((tag) => {
    if (tag && !sizes.has(tag.textContent)) {
      const r = tag.getBoundingClientRect();
      sizes.set(tag.textContent, [r.width, r.height]);
    }
  });
  const placed = [];
  const order = boxes.map((_, i) => i).sort((a, b) => (b === state.selected) - (a === state.selected));
  for (const i of order) {
    const tag = tags[i];
    if (!tag) continue;
    const box = rects[i];
    const [width, height] = sizes.get(tag.textContent);
    const end = box.left + width > photo.right + 0.5;
    const below = box.top - height < photo.top - 0.5;
    const left = end ? box.right - width : box.left;
    const top = below ? box.bottom : box.top - height;
    const rect = { left, top, right: left + width, bottom: top + height };
    const fits = rect.left >= photo.left - 0.5 && rect.bottom <= photo.bottom + 0.5 &&
      !placed.some((other) => overlaps(rect, other)) && !rects.some((other, j) => j !== i && overlaps(rect, other));
    tag.classList.toggle("end", end);
    tag.classList.toggle("below", below);
    tag.classList.toggle("crowded", !fits);
    if (fits) placed.push(rect);
  }
}

function renderPanel() {
  const photo = currentPhoto();
  const ready = photo && photo.state === "ready";
  const region = ready ? photo.regions[state.selected] : undefined;
  $("keep").disabled = !region;
  $("remove").disabled = !region;
  $("keep").textContent = region && region.keep ? "Hide this face" : "Keep this face visible";
  const maybe = ready && !region ? openMaybes(photo)[state.maybe] : undefined;
  if (maybe) $("selection").textContent = `Maybe ${maybe.rank} (${maybe.why}): is there a face? Enter covers it, X dismisses it.`;
  else if (!region) $("selection").textContent = "No box selected. Click a box on the photo.";
  else if (region.keep) $("selection").textContent = "This face will stay visible. Only do this if the person wants to be seen.";
  else if (region.weak) $("selection").textContent = `Not sure this is a face (score ${Math.round(region.score * 100)}%). It will be hidden.`;
  else $("selection").textContent = region.source === "person" ? "Box you added. It will be hidden." : "Face found. It will be hidden.";
  for (const input of document.querySelectorAll("input[name=method], input[name=shape]")) {
    input.disabled = !ready;
    input.checked = ready && photo[input.name] === input.value;
  }
  $("preview").disabled = !ready;
  $("preview").setAttribute("aria-pressed", String(state.preview));
  $("export").disabled = !ready || state.saving || blockedByCopy(photo);
  $("export-all").disabled = state.saving || !state.photos.some((p) => p.state === "ready");
  $("existing").hidden = !ready || !photo.existing;
  if (!ready) {
    $("counts").textContent = "";
    $("destination").textContent = "";
    return;
  }
  if (photo.existing) {
    $("existing-text").textContent = state.overwrite
      ? "A blurred copy is already saved there, from an earlier run. Saving replaces it (--overwrite)."
      : "A blurred copy is already saved there, from an earlier run (by blur, say). It is kept unless you choose to replace it:";
    $("replace-row").hidden = state.overwrite;
    $("replace").checked = state.replace.has(photo.index);
  }
  const hidden = photo.regions.filter((r) => !r.keep).length;
  const kept = photo.regions.length - hidden;
  $("counts").textContent = `${plural(hidden, "area")} will be hidden` + (kept ? `, ${kept} kept visible.` : ".");
  const savedAs = photo.exported && !state.changedSinceSave.has(photo.index)
    ? `Saved as ${photo.exported}` : `Saves as ${photo.destination}`;
  $("destination").textContent = savedAs;
  $("export").textContent = photo.exported ? "Save again" : photo.existing && !blockedByCopy(photo)
    ? "Replace blurred copy" : "Save blurred copy";
}

// ---- editing boxes with the pointer --------------------------------------------------------------

let drag = null;

function photoPoint(event) {
  const photo = currentPhoto();
  const rect = $("photo").getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * photo.width;
  const y = ((event.clientY - rect.top) / rect.height) * photo.height;
  return {
    x: Math.min(Math.max(Math.round(x), 0), photo.width),
    y: Math.min(Math.max(Math.round(y), 0), photo.height),
  };
}

function onPointerDown(event) {
  const photo = currentPhoto();
  if (!photo || photo.state !== "ready" || (state.preview && !state.hunt) || event.button !== 0) return;
  event.preventDefault();
  const point = photoPoint(event);
  const handle = event.target.closest(".handle");
  const box = event.target.closest(".box");
  const maybe = box && box.dataset.maybe !== undefined ? Number(box.dataset.maybe) : -1;
  if (state.hunt && maybe < 0) return; // covered boxes are hidden: nothing to draw or move on them
  state.maybe = -1;
  if (box && maybe < 0) {
    state.selected = Number(box.dataset.index);
    const r = photo.regions[state.selected];
    drag = { kind: handle ? "resize" : "move", corner: handle && handle.dataset.corner, start: point,
      original: { ...r }, screen: { x: event.clientX, y: event.clientY }, moved: false };
  } else { // on the photo or on a maybe: a drag draws a box, a click on a maybe selects it
    drag = { kind: "draw", start: point, screen: { x: event.clientX, y: event.clientY }, moved: false, maybe };
    state.selected = -1;
  }
  $("boxes").setPointerCapture(event.pointerId);
  render();
}

function onPointerMove(event) {
  if (!drag) return;
  const photo = currentPhoto();
  const point = photoPoint(event);
  if (Math.abs(event.clientX - drag.screen.x) + Math.abs(event.clientY - drag.screen.y) >= MIN_BOX) drag.moved = true;
  if (!drag.moved) return;
  if (drag.kind === "draw") {
    if (state.selected < 0) {
      photo.regions.push({ x0: 0, y0: 0, x1: 1, y1: 1, score: 1, source: "person", keep: false, weak: false });
      state.selected = photo.regions.length - 1;
    }
    Object.assign(photo.regions[state.selected], spanOf(drag.start, point));
  } else if (drag.kind === "move") {
    const o = drag.original;
    const dx = Math.min(Math.max(point.x - drag.start.x, -o.x0), photo.width - o.x1);
    const dy = Math.min(Math.max(point.y - drag.start.y, -o.y0), photo.height - o.y1);
    Object.assign(photo.regions[state.selected], { x0: o.x0 + dx, x1: o.x1 + dx, y0: o.y0 + dy, y1: o.y1 + dy });
  } else {
    const o = drag.original;
    const fixed = { x: drag.corner.includes("w") ? o.x1 : o.x0, y: drag.corner.includes("n") ? o.y1 : o.y0 };
    Object.assign(photo.regions[state.selected], spanOf(fixed, point));
  }
  renderBoxes(photo);
}

function spanOf(a, b) {
  return {
    x0: Math.min(a.x, b.x), y0: Math.min(a.y, b.y),
    x1: Math.max(Math.max(a.x, b.x), Math.min(a.x, b.x) + 1),
    y1: Math.max(Math.max(a.y, b.y), Math.min(a.y, b.y) + 1),
  };
}

function onPointerUp() {
  if (!drag) return;
  const photo = currentPhoto();
  const wasDrag = drag.moved;
  if (!wasDrag) state.maybe = drag.maybe ?? -1;
  drag = null;
  if (wasDrag) changed(photo);
  else render();
}

// ---- actions --------------------------------------------------------------------------------------

function say(text, isError = false) {
  const status = $("status");
  status.classList.toggle("error", isError);
  status.setAttribute("role", isError ? "alert" : "status");
  status.textContent = text;
  clearTimeout(say.timer);
  if (!isError) say.timer = setTimeout(() => { status.textContent = ""; }, 6000);
}

function setZoom(zoom) {
  const photo = currentPhoto();
  if (!photo || photo.state !== "ready") zoom = 1;
  const wrap = document.querySelector(".stage-wrap");
  const image = $("photo");
  if (state.zoom === 1 && zoom !== 1) state.fitWidth = image.getBoundingClientRect().width;
  const before = { x: wrap.scrollLeft + wrap.clientWidth / 2, y: wrap.scrollTop + wrap.clientHeight / 2 };
  const ratio = zoom / state.zoom;
  state.zoom = zoom;
  wrap.classList.toggle("zoomed", zoom !== 1);
  image.style.width = zoom === 1 ? "" : `${Math.round(state.fitWidth * zoom)}px`;
  $("zoom-level").textContent = zoom === 1 ? "" : `${Math.round(zoom * 100)}%`;
  $("zoom-fit").disabled = zoom === 1;
  $("zoom-out").disabled = zoom === 1;
  $("zoom-in").disabled = zoom === ZOOMS[ZOOMS.length - 1];
  if (zoom !== 1) { // keep the middle of the view where it was
    wrap.scrollLeft = before.x * ratio - wrap.clientWidth / 2;
    wrap.scrollTop = before.y * ratio - wrap.clientHeight / 2;
  }
  placeTags();
}

function zoomBy(step) {
  const i = ZOOMS.indexOf(state.zoom) + step;
  if (i >= 0 && i < ZOOMS.length) setZoom(ZOOMS[i]);
}

function selectNextBox() {
  const photo = currentPhoto();
  if (!photo || photo.state !== "ready" || !photo.regions.length) return;
  state.selected = (state.selected + 1) % photo.regions.length;
  render();
  const box = $("boxes").children[state.selected];
  if (box && state.zoom !== 1) box.scrollIntoView({ block: "center", inline: "center" });
}

function go(index) {
  if (index < 0 || index >= state.photos.length || index === state.current) return;
  if (state.hunt) setHunt(false);
  else if (state.preview) setPreview(false);
  setZoom(1);
  state.current = index;
  state.selected = -1;
  state.maybe = -1;
  state.area = -1;
  render();
  const button = $("queue").children[index];
  if (button) button.scrollIntoView({ block: "nearest" });
}

function nextNeedingLook() {
  const n = state.photos.length;
  for (let step = 1; step <= n; step++) {
    const photo = state.photos[(state.current + step) % n];
    if (photo.flags.length || photo.state === "failed") return go(photo.index);
  }
  say("No other photo is flagged. Still look at every photo before sharing it.");
}

function showOnPhoto(box) {
  // Zoom in (once) so a small face can be judged, and bring `box` (photo pixels) to the middle.
  const photo = currentPhoto();
  if (state.zoom === 1) setZoom(3);
  const wrap = document.querySelector(".stage-wrap");
  const rect = $("photo").getBoundingClientRect();
  const scale = rect.width / photo.width;
  const stage = $("stage");
  wrap.scrollLeft = stage.offsetLeft + ((box.x0 + box.x1) / 2) * scale - wrap.clientWidth / 2;
  wrap.scrollTop = stage.offsetTop + ((box.y0 + box.y1) / 2) * scale - wrap.clientHeight / 2;
  placeTags();
}

function nextMaybe() {
  const photo = currentPhoto();
  if (!photo || photo.state !== "ready") return;
  const open = openMaybes(photo);
  if (!open.length) return say("No place left that the second opinion points at. Look over the rest of the photo too (U).");
  state.maybe = (state.maybe + 1) % open.length;
  state.selected = -1;
  render();
  showOnPhoto(open[state.maybe]);
  say(`Maybe ${open[state.maybe].rank}: ${open[state.maybe].why}. Enter: cover it; X: not a face.`);
}

function confirmMaybe() {
  // A confirmed maybe becomes a box the person drew: covered whole, a little larger than found.
  const photo = currentPhoto();
  const m = photo && openMaybes(photo)[state.maybe];
  if (!m) return;
  const grow = 0.25;
  const w = m.x1 - m.x0, h = m.y1 - m.y0;
  photo.regions.push({
    x0: Math.max(0, Math.floor(m.x0 - w * grow)), y0: Math.max(0, Math.floor(m.y0 - h * grow)),
    x1: Math.min(photo.width, Math.ceil(m.x1 + w * grow)), y1: Math.min(photo.height, Math.ceil(m.y1 + h * grow)),
    score: 1, source: "person", keep: false, weak: false,
  });
  dismissMaybe(false);
  changed(photo);
}

function dismissMaybe(rerender = true) {
  const photo = currentPhoto();
  const m = photo && openMaybes(photo)[state.maybe];
  if (!m) return;
  if (!state.dismissed.has(photo.index)) state.dismissed.set(photo.index, new Set());
  state.dismissed.get(photo.index).add(m.rank);
  state.maybe = Math.min(state.maybe, openMaybes(photo).length - 1);
  if (rerender) render();
}

async function setHunt(on) {
  // Hide what is covered: the photo as it will be saved, with only the maybes drawn on it.
  const photo = currentPhoto();
  if (on && (!photo || photo.state !== "ready")) return;
  state.hunt = on;
  state.selected = -1;
  $("hunt").setAttribute("aria-pressed", String(on));
  await setPreview(on);
}

function peopleAreas(photo) {
  // Squares of the photo where faces were found, about eight faces tall: where people are, others
  // may have been missed (turned away, half hidden). Left to right, top to bottom.
  const found = photo.regions.filter((r) => r.source !== "person");
  if (!found.length) return [];
  const heights = found.map((r) => r.y1 - r.y0).sort((a, b) => a - b);
  const side = Math.min(Math.max(8 * heights[Math.floor(heights.length / 2)], 256), Math.max(photo.width, photo.height));
  const cells = new Map();
  for (const r of found) {
    const col = Math.floor((r.x0 + r.x1) / 2 / side), row = Math.floor((r.y0 + r.y1) / 2 / side);
    cells.set(`${row},${col}`, { row, col });
  }
  return [...cells.values()].sort((a, b) => a.row - b.row || a.col - b.col).map(({ row, col }) => ({
    x0: col * side, y0: row * side, x1: Math.min((col + 1) * side, photo.width), y1: Math.min((row + 1) * side, photo.height),
  }));
}

function nextArea() {
  const photo = currentPhoto();
  if (!photo || photo.state !== "ready") return;
  const areas = peopleAreas(photo);
  if (!areas.length) return say("No face was found in this photo: look over all of it.");
  state.area = (state.area + 1) % areas.length;
  showOnPhoto(areas[state.area]);
  say(`Area ${state.area + 1} of ${areas.length} where people are${state.hunt ? "" : " (H hides what is covered)"}.`);
}

function removeSelected() {
  const photo = currentPhoto();
  if (!photo || !photo.regions[state.selected]) return;
  photo.regions.splice(state.selected, 1);
  state.selected = -1;
  changed(photo);
}

function toggleKeep() {
  const photo = currentPhoto();
  const region = photo && photo.regions[state.selected];
  if (!region) return;
  region.keep = !region.keep;
  changed(photo);
}

async function setPreview(on) {
  const photo = currentPhoto();
  if (on && (!photo || photo.state !== "ready")) return;
  state.preview = on;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = null;
  if (!on) {
    state.shownIndex = -1; // show the photo itself again
    render();
    return;
  }
  render();
  try {
    const blob = await (await request("POST", `api/photos/${photo.index}/preview`, edits(photo))).blob();
    if (!state.preview || currentPhoto() !== photo) return;
    state.previewUrl = URL.createObjectURL(blob);
    $("photo").src = state.previewUrl;
    state.shownIndex = -1;
  } catch (e) {
    say(e.message, true);
    setPreview(false);
  }
}

async function exportPhoto(photo) {
  clearTimeout(state.saveTimers.get(photo.index));
  const body = { ...edits(photo), replace: state.replace.has(photo.index) };
  const record = await (await request("POST", `api/photos/${photo.index}/export`, body)).json();
  photo.exported = record.exported;
  photo.existing = record.existing;
  state.replace.delete(photo.index);
  state.changedSinceSave.delete(photo.index);
  return record;
}

async function exportCurrent() {
  const photo = currentPhoto();
  if (!photo || photo.state !== "ready" || state.saving) return;
  if (blockedByCopy(photo)) {
    say("A blurred copy of this photo is already saved. Tick \u201cReplace it\u201d to save over it.", true);
    return;
  }
  state.saving = true;
  render();
  try {
    const record = await exportPhoto(photo);
    say(`Saved: ${record.exported}`);
  } catch (e) {
    say(`Not saved: ${e.message}`, true);
  } finally {
    state.saving = false;
  }
  render();
}

async function exportAll() {
  if (state.saving) return;
  const ready = state.photos.filter((p) => p.state === "ready");
  const unseen = ready.filter((p) => !state.seen.has(p.index)).length;
  if (unseen && !window.confirm(
    `${plural(unseen, "photo")} ${unseen === 1 ? "has" : "have"} not been looked at yet. ` +
    "Save them anyway, hiding only the faces the tool found?")) return;
  const blocked = ready.filter(blockedByCopy);
  if (blocked.length && !window.confirm(
    `${plural(blocked.length, "photo")} already ${blocked.length === 1 ? "has a blurred copy" : "have blurred copies"} ` +
    `from an earlier run. Replace ${blocked.length === 1 ? "it" : "them"} with the reviewed ` +
    `${blocked.length === 1 ? "copy" : "copies"}? (Cancel saves nothing.)`)) return;
  for (const photo of blocked) state.replace.add(photo.index);
  state.saving = true;
  let saved = 0;
  const failed = [];
  for (const [n, photo] of ready.entries()) {
    say(`Saving ${n + 1} of ${ready.length}…`);
    try {
      await exportPhoto(photo);
      saved += 1;
    } catch (e) {
      failed.push(`${photo.name}: ${e.message}`);
    }
    render();
  }
  state.saving = false;
  const notReady = state.photos.length - ready.length;
  let text = `Saved ${plural(saved, "photo")}.`;
  if (notReady) text += ` ${notReady} could not be saved yet (still being checked, or unusable).`;
  if (failed.length) text += ` Not saved: ${failed.join("; ")}`;
  say(text, failed.length > 0);
  render();
}

async function finish() {
  const unsaved = state.photos.filter((p) => p.state === "ready" && (!p.exported || state.changedSinceSave.has(p.index))).length;
  if (unsaved && !window.confirm(`${plural(unsaved, "photo")} ${unsaved === 1 ? "is" : "are"} not saved. Finish anyway?`)) return;
  const saved = state.photos.filter((p) => p.exported).length;
  try { await request("POST", "api/finish"); } catch (e) { /* already stopped */ }
  state.finished = true;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  $("photo").removeAttribute("src");
  $("finished-text").textContent = `${plural(saved, "photo")} saved. The review tool has stopped.`;
  $("finished").hidden = false;
}

function onKey(event) {
  if (state.finished || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target instanceof HTMLInputElement) return; // arrow keys move between radio buttons
  const key = event.key;
  const actions = {
    ArrowLeft: () => go(state.current - 1),
    ArrowRight: () => go(state.current + 1),
    n: nextNeedingLook,
    p: () => setPreview(!state.preview),
    s: exportCurrent,
    Delete: removeSelected,
    Backspace: removeSelected,
    v: toggleKeep,
    b: selectNextBox,
    m: nextMaybe,
    Enter: confirmMaybe,
    x: dismissMaybe,
    h: () => setHunt(!state.hunt),
    u: nextArea,
    "+": () => zoomBy(1),
    "=": () => zoomBy(1),
    "-": () => zoomBy(-1),
    "0": () => setZoom(1),
    Escape: () => { if (state.hunt) setHunt(false); else if (state.preview) setPreview(false); state.selected = -1; state.maybe = -1; render(); },
  };
  const action = actions[key.length === 1 ? key.toLowerCase() : key];
  if (!action) return;
  event.preventDefault();
  action();
}

function start() {
  $("prev").addEventListener("click", () => go(state.current - 1));
  $("next").addEventListener("click", () => go(state.current + 1));
  $("keep").addEventListener("click", toggleKeep);
  $("remove").addEventListener("click", removeSelected);
  $("preview").addEventListener("click", () => setPreview(!state.preview));
  $("hunt").addEventListener("click", () => setHunt(!state.hunt));
  $("next-maybe").addEventListener("click", nextMaybe);
  $("next-area").addEventListener("click", nextArea);
  $("export").addEventListener("click", exportCurrent);
  $("export-all").addEventListener("click", exportAll);
  $("finish").addEventListener("click", finish);
  $("zoom-in").addEventListener("click", () => zoomBy(1));
  $("zoom-out").addEventListener("click", () => zoomBy(-1));
  $("zoom-fit").addEventListener("click", () => setZoom(1));
  $("replace").addEventListener("change", () => {
    const photo = currentPhoto();
    if ($("replace").checked) state.replace.add(photo.index);
    else state.replace.delete(photo.index);
    render();
  });
  $("photo").addEventListener("load", placeTags);
  window.addEventListener("resize", placeTags);
  setZoom(1);
  for (const input of document.querySelectorAll("input[name=method], input[name=shape]")) {
    input.addEventListener("change", () => {
      const photo = currentPhoto();
      photo[input.name] = input.value;
      changed(photo);
    });
  }
  const layer = $("boxes");
  layer.addEventListener("pointerdown", onPointerDown);
  layer.addEventListener("pointermove", onPointerMove);
  layer.addEventListener("pointerup", onPointerUp);
  layer.addEventListener("pointercancel", onPointerUp);
  document.addEventListener("keydown", onKey);
  refresh().catch((e) => say(e.message, true));
}

start();
