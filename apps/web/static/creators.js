/* Creators (达人) page: #/creators ranks creators for a saved audience (with reasons and costs) and lists the
 * high-potential creators; #/creators?creator=<id> shows one creator: its audience's TGI per tag value and its
 * follower trend; the live contents worth boosting (early content signal). Seeding audience (种草人群) of the chosen
 * creators: saved as an audience, exported on its page.
 * Uses window.cdpUi (app.js) and window.Charts (charts.js); every count of people arrives already k-filtered.
 */
(function () {
  "use strict";
  const money = (v) => (v === null || v === undefined ? "–" : "¥" + Math.round(v).toLocaleString());
  const growth = (v) => (v === null || v === undefined ? "–" : (v >= 0 ? "+" : "") + (100 * v).toFixed(1) + "%");

  async function pageCreators(root, params) {
    const { h, api, guard, flash, fmt, can } = window.cdpUi;
    const id = params.get("creator");
    if (id) return creatorDetail(root, id);

    const audiences = await api("/audiences");
    const select = h("select", { "data-testid": "creator-audience" },
      audiences.audiences.map((a) => h("option", { value: a.audience_id }, `${a.name} (${fmt(a.size)})`)));
    const category = h("input", { placeholder: "category, e.g. makeup", "data-testid": "creator-category" });
    const budget = h("input", { type: "number", min: "0", placeholder: "budget ¥", "data-testid": "creator-budget" });
    const out = h("div", { "data-testid": "creator-match" });
    const chosen = new Set();
    const seedName = h("input", { placeholder: "seeding audience name", "data-testid": "seed-name" });
    const seedOut = h("p", { class: "muted" }, "Tick creators in the ranking, name the audience, save it; export its pack from its audience page.");

    const run = guard(async () => {
      if (!select.value) { out.textContent = "Save an audience first (人群圈选 Builder)."; return; }
      out.textContent = "ranking…";
      const q = new URLSearchParams({ audience: select.value, top: "30" });
      if (category.value.trim()) q.append("category", category.value.trim());
      if (budget.value) q.set("budget", budget.value);
      const r = await api("/creators/match?" + q.toString());
      out.innerHTML = "";
      out.append(h("p", { class: "muted" },
        `${fmt(r.target_in_population)} of ${fmt(r.population)} people are in ${r.audience_id}@${r.version} (${r.dt}).` +
        (r.hidden ? ` ${r.hidden} creators not ranked: their counts are below k = ${r.k}.` : "")));
      const cols = ["", "#", "creator", "category", "followers", "price", "engaged", "in target", "new", "TGI", "¥ / target", "score", "why"];
      const t = h("table", { class: "list", "data-testid": "creator-match-table" }, h("tr", {}, cols.map((c) => h("th", {}, c))));
      for (const m of r.creators) {
        const box = h("input", { type: "checkbox", onchange: (ev) => { if (ev.target.checked) chosen.add(m.creator_id); else chosen.delete(m.creator_id); } });
        t.append(h("tr", {},
          h("td", {}, box),
          h("td", { class: "num" }, m.rank),
          h("td", {}, h("a", { href: `#/creators?creator=${encodeURIComponent(m.creator_id)}` }, `${m.creator_name || m.creator_id}`), h("div", { class: "muted" }, `${m.creator_id} · ${m.platform || ""}`)),
          h("td", {}, m.category || "–"),
          h("td", { class: "num" }, fmt(m.followers)),
          h("td", { class: "num" }, money(m.price_per_post)),
          h("td", { class: "num" }, fmt(m.engaged)),
          h("td", { class: "num" }, fmt(m.in_target)),
          h("td", { class: "num" }, fmt(m.new_in_target)),
          h("td", { class: "num" }, Math.round(m.tgi_smoothed)),
          h("td", { class: "num" }, m.cost_per_target === null ? "–" : m.cost_per_target.toFixed(1)),
          h("td", { class: "num" }, m.score.toFixed(2)),
          h("td", {}, h("ul", {}, m.reasons.map((x) => h("li", {}, x))))));
      }
      out.append(r.creators.length ? t : h("p", { class: "muted" }, "No creator can be shown for this audience."));
    });

    const seed = guard(async () => {
      if (!chosen.size || !seedName.value.trim()) { flash("Tick at least one creator and name the audience."); return; }
      const v = await api("/creators/seed", { body: { name: seedName.value.trim(), creators: [...chosen] } });
      seedOut.innerHTML = "";
      seedOut.append(`Saved ${v.audience_id}@${v.version}: ${fmt(v.size)} people. `,
        h("a", { href: `#/audience/${encodeURIComponent(v.audience_id)}` }, "Open it to export a pack (人群包)"));
    });

    const potOut = h("div", { "data-testid": "creator-potential" });
    const contentOut = h("div", { "data-testid": "creator-content" });
    root.append(
      h("div", { class: "card" }, h("h2", {}, "达人匹配 Creators for an audience"),
        h("div", { class: "row" }, select, category, budget, h("button", { onclick: run, "data-testid": "creator-run" }, "Rank")), out),
      can("audiences.write") ? h("div", { class: "card" }, h("h3", {}, "种草人群 Seeding audience"),
        h("div", { class: "row" }, seedName, h("button", { onclick: seed, "data-testid": "seed-save" }, "Save audience")), seedOut) : null,
      h("div", { class: "card" }, h("h2", {}, "高潜达人 High-potential creators"), potOut),
      h("div", { class: "card" }, h("h2", {}, "内容加热 Contents worth boosting"), contentOut));
    if (select.value) run();
    try {
      const p = await api("/creators/potential?top=20");
      const ev = p.evaluation || {};
      const pr = ev.precision;
      potOut.append(h("p", { class: "muted" }, pr
        ? `Predicted follower growth over the next 30 days (${p.dt}). Holdout ${ev.holdout_dt}: precision@${ev.k} of the true top growers ${pr.model.toFixed(2)}, vs current followers ${pr.current_followers.toFixed(2)} and last-30-days growth ${pr.growth_last_30d.toFixed(2)}.`
        : `Model not trained: ${ev.reason || "no evaluation"}`));
      const cols = ["#", "creator", "category", "followers", "growth 30d", "predicted 30d", "price"];
      const t = h("table", { class: "list" }, h("tr", {}, cols.map((c) => h("th", {}, c))));
      for (const c of p.creators) {
        t.append(h("tr", {},
          h("td", { class: "num" }, c.rank),
          h("td", {}, h("a", { href: `#/creators?creator=${encodeURIComponent(c.creator_id)}` }, c.creator_name || c.creator_id)),
          h("td", {}, c.category || "–"),
          h("td", { class: "num" }, fmt(c.followers)),
          h("td", { class: "num" }, growth(c.growth_30d)),
          h("td", { class: "num" }, growth(c.predicted_growth_30d)),
          h("td", { class: "num" }, money(c.price_per_post))));
      }
      potOut.append(t);
    } catch (e) { potOut.append(h("p", { class: "error" }, e.message)); }
    try {
      const r = await api("/creators/content?top=15");
      const ev = r.evaluation || {};
      contentOut.append(h("p", { class: "muted" }, ev.precision
        ? `Final (14-day) engagement predicted from the first 3 days (${r.dt}). Holdout of ${fmt(ev.holdout_contents)} finished contents: precision@${ev.k} ${ev.precision.model.toFixed(2)} vs ${ev.precision.extrapolation.toFixed(2)} for extrapolation; median error ${(100 * ev.median_ape.model).toFixed(0)}% vs ${(100 * ev.median_ape.extrapolation).toFixed(0)}%.`
        : `Signal not trained: ${ev.reason || "no evaluation"}`));
      const cols = ["#", "content", "creator", "published", "engagements so far", "first 3 days", "predicted final", "extrapolated"];
      const t = h("table", { class: "list" }, h("tr", {}, cols.map((c) => h("th", {}, c))));
      for (const c of r.contents) {
        t.append(h("tr", {},
          h("td", { class: "num" }, c.rank), h("td", {}, c.content_id),
          h("td", {}, h("a", { href: `#/creators?creator=${encodeURIComponent(c.creator_id)}` }, c.creator_id)),
          h("td", {}, c.published_date), h("td", { class: "num" }, fmt(c.engagements_so_far)),
          h("td", { class: "num" }, fmt(c.early_engagements)),
          h("td", { class: "num" }, fmt(Math.round(c.predicted_final_engagements))),
          h("td", { class: "num" }, fmt(Math.round(c.extrapolated_final_engagements)))));
      }
      contentOut.append(t);
    } catch (e) { contentOut.append(h("p", { class: "error" }, e.message)); }
  }

  async function creatorDetail(root, id) {
    const { h, api, fmt, pct } = window.cdpUi;
    const c = await api(`/creators/${encodeURIComponent(id)}`);
    const f = c.features;
    const tgiChart = h("div", { "data-testid": "creator-tgi" });
    const trendChart = h("div", { "data-testid": "creator-trend" });
    const kv = [["platform", f.platform], ["category", f.category], ["followers", fmt(f.followers)],
      ["growth 7d / 30d", `${growth(f.growth_7d)} / ${growth(f.growth_30d)}`],
      ["engagement rate 7d", pct(f.engagement_rate_7d)], ["price per post", money(f.price_per_post)],
      ["cost per engagement", f.cost_per_engagement === null || f.cost_per_engagement === undefined ? "–" : "¥" + f.cost_per_engagement.toFixed(2)],
      ["engaged people (30 days)", fmt(f.engaged_oneids)]];
    root.append(
      h("p", {}, h("a", { href: "#/creators" }, "← creators")),
      h("div", { class: "card" }, h("h2", {}, `${f.creator_name || id} (${id})`),
        h("table", { class: "kv" }, kv.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v === null || v === undefined ? "–" : String(v)))))),
      h("div", { class: "grid2" },
        h("div", { class: "card" }, h("h3", {}, "受众画像 Audience TGI"), h("p", { class: "muted" }, "Share of the creator's engaged people with a value over its share in the population × 100 (dashed line: 100)."), tgiChart),
        h("div", { class: "card" }, h("h3", {}, "粉丝趋势 Followers"), trendChart)));
    const rows = c.audience.filter((r) => r.tgi !== null).sort((a, b) => b.tgi - a.tgi).slice(0, 20);
    Charts.bars(tgiChart, rows.map((r) => ({ label: `${r.tag}=${r.value}`, value: r.tgi, note: `${pct(r.audience_share)} vs ${pct(r.population_share)}` })),
      { ref: 100, refLabel: "TGI 100", color: (d) => (d.value >= 100 ? "#19a974" : "#f2a33a"), empty: "no audience large enough to describe" });
    Charts.line(trendChart, c.trend.map((p) => ({ x: p.date, y: p.followers })), { empty: "no statistics" });
  }

  window.cdpPages = window.cdpPages || {};
  window.cdpPages.creators = pageCreators;
})();
