/* Effect (投放效果) page: #/effect lists the registered campaigns and registers a new one on a pack (with its
 * holdout); #/effect?c=<campaign or audience>[&compare=<other>] shows the cost figures (CPM, CPC, CPA, CTR, CVR,
 * ROAS), the funnel exposed -> clicked -> visited -> carted -> purchased, the incremental lift with its 95%
 * interval, the daily trend and the bad input the effect stage found. Two reports side by side with compare.
 * Uses window.cdpUi (app.js) and window.Charts (charts.js); every count of people arrives already k-filtered.
 */
(function () {
  "use strict";
  const money = (v) => (v === null || v === undefined ? "–" : "¥" + (Math.round(v * 100) / 100).toLocaleString());
  const share = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(2) + "%");
  const num = (v) => (typeof v === "number" ? v.toLocaleString() : v === null || v === undefined ? "–" : String(v));

  async function pageEffect(root, params) {
    const key = params.get("c");
    if (key) return report(root, key, params.get("compare"));
    return list(root);
  }

  async function list(root) {
    const { h, api, guard, flash, can } = window.cdpUi;
    const r = await api("/campaigns");
    const cols = ["campaign", "media", "pack", "start", "end", "budget", "holdout", "window"];
    const t = h("table", { class: "list", "data-testid": "campaign-table" }, h("tr", {}, cols.map((c) => h("th", {}, c))));
    for (const c of r.campaigns) {
      t.append(h("tr", { class: "clickable", onclick: () => { location.hash = `#/effect?c=${encodeURIComponent(c.campaign_id)}`; } },
        h("td", {}, c.campaign_id), h("td", {}, c.media), h("td", {}, c.pack), h("td", {}, c.start), h("td", {}, c.end),
        h("td", {}, money(c.budget)), h("td", {}, share(c.holdout)), h("td", {}, `${c.attribution_window_days} d`)));
    }
    root.append(h("div", { class: "card" }, h("h2", {}, "投放效果 Campaigns"),
      r.campaigns.length ? t : h("p", { class: "muted" }, "No campaign registered yet: register one on an exported pack below.")));
    if (!can("audiences.write")) return;
    const field = (name, attrs) => h("input", Object.assign({ name, placeholder: name, "data-testid": `campaign-${name}` }, attrs || {}));
    const inputs = {
      campaign_id: field("campaign_id"), media: field("media", { value: "oceanengine" }),
      pack: field("pack", { placeholder: "audience/v1/oceanengine" }), start: field("start", { type: "date" }),
      end: field("end", { type: "date" }), budget: field("budget", { type: "number", min: "0" }),
      holdout: field("holdout", { type: "number", min: "0", max: "0.5", step: "0.05", value: "0.1" }),
    };
    const submit = guard(async () => {
      const body = {};
      for (const [k, el] of Object.entries(inputs)) if (el.value !== "") body[k] = ["budget", "holdout"].includes(k) ? Number(el.value) : el.value;
      const res = await api("/campaigns", { body });
      flash(res.lines.join(" "), "info");
      location.hash = `#/effect?c=${encodeURIComponent(res.campaign_id)}`;
    });
    root.append(h("div", { class: "card" }, h("h3", {}, "Register a campaign (the pack is written with its holdout)"),
      h("div", { class: "row" }, ...Object.values(inputs), h("button", { onclick: submit, "data-testid": "campaign-register" }, "Register"))));
  }

  function kpis(s) {
    const { h } = window.cdpUi;
    const cell = (label, value) => h("div", { class: "kpi" }, h("div", { class: "muted" }, label), h("strong", {}, value));
    return h("div", { class: "row", "data-testid": "effect-costs", style: "flex-wrap: wrap; gap: 18px" },
      cell("cost", money(s.cost)), cell("budget", money(s.budget)), cell("impressions", num(s.impressions)),
      cell("reach", num(s.reach)), cell("clicks", num(s.clicks)), cell("CPM", money(s.cpm)), cell("CPC", money(s.cpc)),
      cell("CPA", money(s.cpa)), cell("CTR", share(s.ctr)), cell("CVR", share(s.cvr)), cell("revenue", money(s.revenue)),
      cell("ROAS", s.roas === null ? "–" : s.roas.toFixed(2)));
  }

  function funnel(el, s) {
    const steps = [["exposed 曝光", s.exposed], ["clicked 点击", s.clicked], ["visited 访问", s.visited],
      ["carted 加购", s.carted], ["purchased 购买", s.purchased]];
    // a count below the minimum group size arrives as "< k": drawn as an empty bar, named in its label
    window.Charts.bars(el, steps.map(([label, value]) => ({
      label: typeof value === "number" ? label : `${label} (${value})`, value: typeof value === "number" ? value : 0,
      note: typeof value === "number" && typeof s.exposed === "number" && s.exposed ? share(value / s.exposed) : "",
    })));
  }

  /* The lift and its interval on one axis: a bar from the low to the high end, the estimate as a dot, zero marked. */
  function interval(x, format) {
    const { h } = window.cdpUi;
    const box = h("div", { class: "lift" });
    if (x.abs_lift === null || x.abs_lift === undefined) {
      box.append(h("p", { class: "muted" }, x.sentence));
      return box;
    }
    const lo = Math.min(0, x.abs_ci_low), hi = Math.max(0, x.abs_ci_high);
    const span = hi - lo || 1, w = 520, pad = 20;
    const sx = (v) => pad + ((v - lo) / span) * (w - 2 * pad);
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} 48`);
    svg.setAttribute("width", "100%");
    svg.setAttribute("class", "chart");
    svg.setAttribute("data-testid", `lift-interval-${x.metric}`);
    const add = (tag, attrs, text) => {
      const n = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
      if (text !== undefined) n.textContent = text;
      svg.appendChild(n);
    };
    add("line", { x1: sx(0), x2: sx(0), y1: 4, y2: 34, stroke: "#999", "stroke-dasharray": "3 3" });
    add("text", { x: sx(0), y: 10, "text-anchor": "middle" }, "0");
    add("rect", { x: sx(x.abs_ci_low), y: 14, width: Math.max(2, sx(x.abs_ci_high) - sx(x.abs_ci_low)), height: 10, fill: x.abs_ci_low > 0 ? "#8fd19e" : "#f3c98b", rx: 3 });
    add("circle", { cx: sx(x.abs_lift), cy: 19, r: 5, fill: "#2f6fdf" });
    add("text", { x: sx(x.abs_ci_low), y: 45, "text-anchor": "middle" }, format(x.abs_ci_low));
    add("text", { x: sx(x.abs_ci_high), y: 45, "text-anchor": "middle" }, format(x.abs_ci_high));
    box.append(svg, h("p", {}, x.sentence));
    if (x.warning) box.append(h("p", { class: "error" }, "⚠ " + x.warning));
    return box;
  }

  function campaignCard(r, s) {
    const { h } = window.cdpUi;
    const funnelEl = h("div", { "data-testid": "effect-funnel" });
    const trendEl = h("div", { "data-testid": "effect-trend", style: "max-width: 720px" });
    const lifts = r.lift.filter((x) => x.campaign_id === s.campaign_id);
    const card = h("div", { class: "card", "data-testid": `effect-${s.campaign_id}` },
      h("h2", {}, `${s.name || s.campaign_id} · ${s.media}`),
      h("p", { class: "muted" }, `pack ${s.audience_id}/v${s.version}/${s.destination}; ${s.start_date} to ${s.end_date}, purchases counted to ${s.window_end}; ` +
        `${num(s.members)} pack members, ${num(s.control)} held out (report of ${r.dt})`),
      kpis(s),
      h("div", { class: "grid2" },
        h("div", {}, h("h3", {}, "Funnel 转化漏斗"), funnelEl),
        h("div", { "data-testid": "effect-lift" }, h("h3", {}, "Incremental lift 增量 (95% CI)"),
          ...lifts.map((x) => h("div", {}, h("strong", {}, x.metric === "conversion_rate" ? "conversion rate" : "revenue per person"),
            interval(x, x.metric === "conversion_rate" ? share : money))))),
      h("h3", {}, "Daily trend 每日趋势 (cost, CNY)"), trendEl);
    funnel(funnelEl, s);
    window.Charts.line(trendEl, r.daily.filter((d) => d.campaign_id === s.campaign_id).map((d) => ({ x: d.day, y: d.cost || 0 })), { format: money });
    const moves = r.aipl.filter((a) => a.campaign_id === s.campaign_id && a.stage_before !== a.stage_after);
    const shown = moves.filter((a) => typeof a.people === "number");
    if (moves.length) {
      const t = h("table", { class: "list", "data-testid": "effect-aipl" },
        h("tr", {}, ["group", "stage before", "stage after", "people"].map((c) => h("th", {}, c))));
      for (const a of shown) t.append(h("tr", {}, h("td", {}, a.arm), h("td", {}, a.stage_before), h("td", {}, a.stage_after), h("td", {}, num(a.people))));
      const small = moves.length - shown.length;
      card.append(h("h3", {}, "AIPL moves 人群流转 (before the campaign -> now)"), shown.length ? t : "",
        small ? h("p", { class: "muted" }, `${small} smaller moves not shown (fewer people than the minimum group size)`) : "");
    }
    if (s.issues) card.append(h("details", {}, h("summary", {}, "bad input 数据问题"), h("pre", {}, s.issues)));
    return card;
  }

  async function report(root, key, compare) {
    const { h, api } = window.cdpUi;
    const q = new URLSearchParams();
    if (compare) q.set("compare", compare);
    const r = await api(`/effect/${encodeURIComponent(key)}` + (compare ? "?" + q.toString() : ""));
    const other = h("input", { placeholder: "compare with a campaign or audience", value: compare || "", "data-testid": "effect-compare" });
    root.append(h("div", { class: "row" }, h("a", { href: "#/effect" }, "← campaigns"), other,
      h("button", { onclick: () => { location.hash = `#/effect?c=${encodeURIComponent(key)}` + (other.value ? `&compare=${encodeURIComponent(other.value)}` : ""); } }, "Compare")));
    const columns = h("div", { class: r.reports.length > 1 ? "grid2" : "" });
    for (const rep of r.reports) {
      const col = h("div", {});
      for (const s of rep.summary) col.append(campaignCard(rep, s));
      columns.append(col);
    }
    root.append(columns);
  }

  window.cdpPages = window.cdpPages || {};
  window.cdpPages.effect = pageEffect;
})();
