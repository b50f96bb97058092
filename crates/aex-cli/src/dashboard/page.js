// aex dashboard: renders each snapshot the server streams (server-sent events). No external
// asset; text from the application is inserted as text, never as markup.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const SVG = "http://www.w3.org/2000/svg";
let previous = null;   // the last snapshot, for rates
let rates = {};        // connection name -> events/s
let selected = null;   // the module whose details are shown

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function cell(row, value, cls) {
  const td = el("td", cls ? { class: cls } : {}, value);
  row.appendChild(td);
  return td;
}

function endpoint(spec) { return spec === "deployer" ? "deployer" : spec.split(".")[0]; }

function moduleClass(m) {
  if (!m.reachable) return "unknown";
  return m.running && m.attested ? "ok" : "down";
}

function updateRates(snapshot) {
  const status = snapshot.status;
  if (!status) return;
  if (previous && previous.status) {
    const dt = (snapshot.as_of_ms - previous.as_of_ms) / 1000;
    const before = Object.fromEntries(previous.status.connections.map(c => [c.name, c]));
    for (const c of status.connections) {
      const b = before[c.name];
      if (b && dt > 0) rates[c.name] = Math.max(0, (c.received - b.received) / dt);
    }
  }
  previous = snapshot;
}

function drawGraph(status) {
  const svg = document.getElementById("graph");
  svg.replaceChildren();
  const defs = el("svg:defs");
  const marker = el("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "8", markerHeight: "8", orient: "auto-start-reverse" });
  marker.appendChild(el("svg:path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#4b5563" }));
  defs.appendChild(marker);
  svg.appendChild(defs);

  // Columns: the deployer, then one per node, the nodes grouped by TEE kind (a label over each
  // group), so that connections between nodes run across, not along, a column.
  const nodes = [...status.nodes].sort((a, b) => a.tee.localeCompare(b.tee) || a.name.localeCompare(b.name));
  const columns = [];
  if (status.connections.some(c => c.from === "deployer")) columns.push({ kind: "deployer", node: null });
  for (const node of nodes) columns.push({ kind: node.tee, node });
  const where = {};  // module or "deployer" -> {x, y, w, h}
  const colWidth = 250, boxW = 180, boxH = 34;
  let height = 0, lastKind = null;
  columns.forEach((col, i) => {
    const x = 20 + i * colWidth;
    if (col.kind !== lastKind) svg.appendChild(el("svg:text", { x, y: 18, class: "kind-label" }, col.kind));
    lastKind = col.kind;
    let y = 30;
    if (!col.node) {
      svg.appendChild(el("svg:rect", { x, y, width: boxW, height: boxH, rx: 6, class: "module-box unknown" }));
      svg.appendChild(el("svg:text", { x: x + 10, y: y + 22 }, "deployer (you)"));
      where.deployer = { x, y, w: boxW, h: boxH };
      height = Math.max(height, y + boxH + 20);
      return;
    }
    const node = col.node;
    const modules = status.modules.filter(m => m.node === node.name);
    const h = 28 + modules.length * (boxH + 8) + 6;
    svg.appendChild(el("svg:rect", { x: x - 8, y, width: boxW + 16, height: h, rx: 8, class: "node-box" }));
    svg.appendChild(el("svg:text", { x, y: y + 18 }, `${node.name}${node.reachable ? "" : " (unreachable)"}`));
    let my = y + 26;
    for (const m of modules) {
      const g = el("svg:g", { "data-module": m.name });
      const cls = `module-box ${moduleClass(m)}${selected === m.name ? " selected" : ""}`;
      g.appendChild(el("svg:rect", { x, y: my, width: boxW, height: boxH, rx: 6, class: cls }));
      const label = `${m.name}${m.attested ? " ✓" : ""}${m.running ? "" : " (stopped)"}`;
      g.appendChild(el("svg:text", { x: x + 10, y: my + 22 }, label));
      g.addEventListener("click", () => { selected = m.name; render(previous); });
      svg.appendChild(g);
      where[m.name] = { x, y: my, w: boxW, h: boxH };
      my += boxH + 8;
    }
    height = Math.max(height, y + h + 40);
  });
  // Connections: an arrow from sender to receiver, its rate beside it.
  status.connections.forEach((c, i) => {
    const a = where[endpoint(c.from)], b = where[endpoint(c.to)];
    if (!a || !b) return;
    const x1 = a.x + a.w, y1 = a.y + a.h / 2 + (i % 3) * 4 - 4;
    const x2 = b.x, y2 = b.y + b.h / 2 + (i % 3) * 4 - 4;
    const back = x2 <= x1;
    const d = back
      ? `M ${a.x} ${y1} C ${a.x - 60} ${y1}, ${b.x + b.w + 60} ${y2}, ${b.x + b.w} ${y2}`
      : `M ${x1} ${y1} C ${x1 + 40} ${y1}, ${x2 - 40} ${y2}, ${x2} ${y2}`;
    const bad = c.rejected > 0 || c.dropped > 0;
    svg.appendChild(el("svg:path", { d, class: `edge${bad ? " bad" : ""}`, "data-connection": c.name }));
    const rate = rates[c.name];
    const text = `${c.name}${rate === undefined ? "" : `: ${rate.toFixed(1)}/s`}`;
    const ly = back ? Math.max(y1, y2) + 18 + (i % 3) * 14 : (y1 + y2) / 2 - 6 - (i % 3) * 14;
    svg.appendChild(el("svg:text", { x: Math.min(x1, x2) + 20, y: ly, class: "rate" }, text));
  });
  svg.setAttribute("width", 40 + columns.length * colWidth);
  svg.setAttribute("height", height + 10);
}

function drawConnections(status) {
  const body = document.querySelector("#connections tbody");
  body.replaceChildren();
  for (const c of status.connections) {
    const row = el("tr", { id: `conn-${c.name}` });
    cell(row, c.name);
    cell(row, c.from);
    cell(row, c.to);
    const rate = rates[c.name];
    cell(row, rate === undefined ? "…" : rate.toFixed(1), "num rate");
    for (const k of ["sent", "received"]) cell(row, c[k], "num");
    for (const k of ["rejected", "gaps", "dropped"]) cell(row, c[k], c[k] > 0 ? "num bad" : "num");
    cell(row, c.blocked, "num");
    cell(row, c.keyed ? "yes" : "no", c.keyed ? "" : "bad");
    body.appendChild(row);
  }
}

function drawDetails(status) {
  const box = document.getElementById("details");
  box.replaceChildren();
  const m = status.modules.find(x => x.name === selected);
  if (!m) {
    box.appendChild(el("h2", {}, "Module"));
    box.appendChild(el("p", {}, "Click a module to see its details."));
    return;
  }
  box.appendChild(el("h2", {}, m.name));
  const table = el("table");
  const rows = [
    ["node", `${m.node} (${m.tee})`],
    ["attested", m.attested ? `yes${m.simulated ? ", simulated evidence" : ""}` : "no"],
    ["running", m.reachable ? (m.running ? "yes" : "no") : "unknown (node unreachable)"],
    ["measurement", m.measurement],
    ["pid", m.pid ?? "—"],
    ["attested at", m.attested_at ? new Date(m.attested_at * 1000).toISOString() : "—"],
    ["rejected commands", m.rejected_commands],
    ["events for unknown connections", m.rejected_unknown],
  ];
  if (m.persistence) rows.push(["restarts", m.persistence.restarts], ["sealed version", m.persistence.stored]);
  for (const [k, v] of rows) {
    const row = el("tr");
    row.appendChild(el("th", {}, k));
    cell(row, v);
    table.appendChild(row);
  }
  box.appendChild(table);
  if (m.state !== null && m.state !== undefined) {
    box.appendChild(el("h2", {}, "Its status entry says"));
    box.appendChild(el("pre", { id: "module-state" }, JSON.stringify(m.state, null, 2)));
  }
}

function drawAlarms(status, alarms) {
  const list = document.getElementById("alarms");
  list.replaceChildren();
  // Deadline alarms the runtimes counted, then what modules report of alarms themselves.
  for (const m of status.modules) {
    for (const a of m.alarms || []) {
      const when = new Date(a.last_ms).toLocaleTimeString();
      list.appendChild(el("li", { class: "deadline" }, `${m.name}: input ${a.input} silent past its deadline, ${a.fired} alarm(s), last at ${when}`));
    }
  }
  for (const a of alarms) list.appendChild(el("li", {}, `${a.module}: ${a.field} = ${JSON.stringify(a.value)}`));
  if (list.children.length === 0) list.appendChild(el("li", { class: "quiet" }, "none reported"));
}

function drawDevices(devices) {
  const body = document.querySelector("#devices tbody");
  body.replaceChildren();
  for (const [node, list] of Object.entries(devices)) {
    for (const d of list) {
      const row = el("tr", { id: `device-${node}-${d.name}` });
      cell(row, node);
      cell(row, d.name);
      cell(row, d.kind);
      cell(row, d.value, "num");
      cell(row, d.held ? "held" : "free");
      body.appendChild(row);
    }
  }
}

function render(snapshot) {
  if (!snapshot) return;
  document.getElementById("as-of").textContent = `as of ${new Date(snapshot.as_of_ms).toLocaleTimeString()}`;
  const error = document.getElementById("error");
  error.hidden = !snapshot.error;
  error.textContent = snapshot.error || "";
  const status = snapshot.status;
  if (!status) return;
  document.getElementById("application").textContent = status.application;
  drawGraph(status);
  drawConnections(status);
  drawDetails(status);
  drawAlarms(status, snapshot.alarms || []);
  drawDevices(snapshot.devices || {});
}

const stream = new EventSource(`/events?token=${encodeURIComponent(token)}`);
stream.onmessage = (event) => {
  const snapshot = JSON.parse(event.data);
  updateRates(snapshot);
  render(snapshot);
};
stream.onerror = () => {
  document.getElementById("as-of").textContent = "disconnected: is `aex dashboard` still running?";
};
