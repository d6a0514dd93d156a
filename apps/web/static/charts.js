/* Small SVG charts for the web UI (no chart library, works offline):
 *   Charts.bars(el, items, opts)   horizontal bars: items [{label, value, note}], opts {format, ref, refLabel, color}
 *   Charts.line(el, points, opts)  a line over time: points [{x: "2026-11-01", y: 123}], opts {format}
 */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString();
    return (Math.round(v * 100) / 100).toString();
  }

  function truncate(s, n) {
    s = String(s);
    return s.length > n ? s.slice(0, n - 1) + "…" : s;
  }

  function bars(el, items, opts) {
    opts = opts || {};
    const format = opts.format || fmt;
    el.innerHTML = "";
    if (!items.length) {
      el.textContent = opts.empty || "no data";
      return;
    }
    const labelW = opts.labelWidth || 170, valueW = 70, rowH = 22, width = opts.width || 560;
    const plotW = width - labelW - valueW - 10;
    const max = Math.max(opts.ref || 0, ...items.map((d) => d.value || 0)) || 1;
    const height = items.length * rowH + 24;
    const root = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img" });
    if (opts.title) root.appendChild(svg("title", {}, opts.title));
    items.forEach((d, i) => {
      const y = i * rowH + 4;
      const w = Math.max(1, (plotW * (d.value || 0)) / max);
      const g = svg("g", { "data-label": d.label });
      g.appendChild(svg("text", { x: labelW - 6, y: y + 14, "text-anchor": "end" }, truncate(d.label, 26)));
      const color = typeof opts.color === "function" ? opts.color(d) : opts.color || "#2f6fdf";
      const rect = svg("rect", { x: labelW, y: y + 3, width: w, height: rowH - 8, rx: 2, fill: color });
      rect.appendChild(svg("title", {}, `${d.label}: ${format(d.value)}${d.note ? " (" + d.note + ")" : ""}`));
      g.appendChild(rect);
      g.appendChild(svg("text", { x: labelW + w + 4, y: y + 14 }, format(d.value)));
      root.appendChild(g);
    });
    if (opts.ref) {
      const x = labelW + (plotW * opts.ref) / max;
      root.appendChild(svg("line", { x1: x, x2: x, y1: 0, y2: height - 18, stroke: "#d6453d", "stroke-dasharray": "4 3" }));
      root.appendChild(svg("text", { x: x, y: height - 4, "text-anchor": "middle" }, opts.refLabel || String(opts.ref)));
    }
    el.appendChild(root);
  }

  function line(el, points, opts) {
    opts = opts || {};
    const format = opts.format || fmt;
    el.innerHTML = "";
    if (!points.length) {
      el.textContent = opts.empty || "no data";
      return;
    }
    const width = opts.width || 560, height = opts.height || 200, left = 60, right = 16, top = 12, bottom = 28;
    const ys = points.map((p) => p.y);
    const maxY = Math.max(...ys) * 1.1 || 1;
    const minY = 0;
    const sx = (i) => left + (points.length === 1 ? (width - left - right) / 2 : (i * (width - left - right)) / (points.length - 1));
    const sy = (v) => top + (height - top - bottom) * (1 - (v - minY) / (maxY - minY));
    const root = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img" });
    root.appendChild(svg("line", { class: "axis", x1: left, x2: width - right, y1: sy(0), y2: sy(0) }));
    [0, 0.5, 1].forEach((f) => {
      const v = minY + f * (maxY - minY);
      root.appendChild(svg("text", { x: left - 6, y: sy(v) + 4, "text-anchor": "end" }, format(v)));
      root.appendChild(svg("line", { class: "axis", x1: left, x2: width - right, y1: sy(v), y2: sy(v), "stroke-dasharray": "2 4" }));
    });
    const path = points.map((p, i) => `${i ? "L" : "M"}${sx(i)},${sy(p.y)}`).join(" ");
    root.appendChild(svg("path", { d: path, fill: "none", stroke: "#2f6fdf", "stroke-width": 2 }));
    const step = Math.max(1, Math.ceil(points.length / 6));
    points.forEach((p, i) => {
      const c = svg("circle", { cx: sx(i), cy: sy(p.y), r: 3.5, fill: "#2f6fdf" });
      c.appendChild(svg("title", {}, `${p.x}: ${format(p.y)}`));
      root.appendChild(c);
      if (i % step === 0 || i === points.length - 1) {
        root.appendChild(svg("text", { x: sx(i), y: height - 8, "text-anchor": "middle" }, truncate(p.x, 16)));
      }
    });
    el.appendChild(root);
  }

  window.Charts = { bars, line, fmt };
})();
