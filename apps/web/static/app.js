/* The web UI: one page, hash routes, vanilla JS, every call through the same JSON API ad-ops scripts use.
 * Routes: #/tags, #/builder, #/audiences, #/audience/<id>, #/packs, #/sql, #/audit
 */
(function () {
  "use strict";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const state = { me: null, tags: null, tagDetails: {}, destinations: null };
  const OPS = [
    ["=", "="], ["!=", "≠"], ["in", "in"], ["not_in", "not in"], [">", ">"], [">=", "≥"], ["<", "<"],
    ["<=", "≤"], ["between", "between"], ["contains", "contains"], ["not_null", "has value"], ["is_null", "no value"],
  ];

  // ---- helpers --------------------------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "class") node.className = v;
      else if (k === "html") node.innerHTML = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  // Counts of people come as a number (at least the minimum group size k), as the text "< k", or as null when
  // withheld because they would give a smaller group away; only numbers are formatted, charted or divided.
  const fmt = (n) => (n === null || n === undefined ? "–" : typeof n === "string" ? n : Number(n).toLocaleString());
  const shown = (n) => typeof n === "number";
  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");

  function flash(message, kind) {
    const el = $("#flash");
    el.textContent = message;
    el.className = "flash" + (kind === "info" ? " info" : "");
    el.hidden = !message;
    if (message && kind === "info") setTimeout(() => { if (el.textContent === message) el.hidden = true; }, 4000);
  }

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  async function api(path, opts) {
    opts = opts || {};
    const headers = { Authorization: "Bearer " + (localStorage.getItem("cdp_token") || "") };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch("/api" + path, {
      method: opts.method || (opts.body !== undefined ? "POST" : "GET"),
      headers,
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      signal: opts.signal,
    });
    if (opts.raw && res.ok) return res;
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const detail = data && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : res.statusText;
      if (res.status === 401) { showLogin(detail); }
      throw new ApiError(res.status, detail);
    }
    return data;
  }

  function guard(fn) {
    return async (...args) => {
      try { return await fn(...args); }
      catch (e) {
        if (e.name === "AbortError") return;
        flash(e instanceof ApiError ? `${e.status}: ${e.message}` : String(e));
      }
    };
  }

  // ---- session ------------------------------------------------------------------------------------------

  function showLogin(message) {
    $("#login").hidden = false;
    $("#page").innerHTML = "";
    $("#who").textContent = "";
    const err = $("#login-error");
    err.textContent = message || "";
    err.hidden = !message;
  }

  async function loadMe() {
    if (!localStorage.getItem("cdp_token")) { showLogin(); return false; }
    try { state.me = await api("/me"); }
    catch (e) { if (e.status !== 401) flash(e.message); return false; }
    $("#login").hidden = true;
    const perms = state.me.permissions;
    document.querySelectorAll(".needs-sql").forEach((a) => a.classList.toggle("hidden", !perms.includes("sql")));
    document.querySelectorAll(".needs-audit").forEach((a) => a.classList.toggle("hidden", !perms.includes("audit")));
    const who = $("#who");
    who.innerHTML = "";
    who.append(`${state.me.name} · ${state.me.role}`,
      h("button", { class: "link", "data-testid": "logout", onclick: () => { localStorage.removeItem("cdp_token"); state.me = null; showLogin(); } }, "Sign out"));
    return true;
  }

  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    localStorage.setItem("cdp_token", $("#token-input").value.trim());
    $("#token-input").value = "";
    if (await loadMe()) route();
  });

  const can = (perm) => state.me && state.me.permissions.includes(perm);

  // ---- data shared by pages ----------------------------------------------------------------------------

  async function allTags() {
    if (!state.tags) state.tags = (await api("/tags")).tags;
    return state.tags;
  }

  async function tagDetail(id) {
    if (!state.tagDetails[id]) state.tagDetails[id] = await api("/tags/" + encodeURIComponent(id));
    return state.tagDetails[id];
  }

  function layerPill(layer) { return h("span", { class: "pill " + layer }, layer); }

  function coverageBar(x) {
    return h("span", {}, h("span", { class: "bar" }, h("span", { style: `width:${Math.round(100 * (x || 0))}%` })), " ", pct(x));
  }

  // ---- tag catalog --------------------------------------------------------------------------------------

  async function pageTags(root) {
    const search = h("input", { type: "text", placeholder: "搜索标签 Search (中文 / English / id)", "data-testid": "tag-search", size: 34 });
    const layer = h("select", { "data-testid": "layer-filter" }, h("option", { value: "" }, "All layers 全部层级"));
    const list = h("div", {});
    const detail = h("div", { class: "card", "data-testid": "tag-detail" }, h("p", { class: "muted" }, "Pick a tag to see its definition and distribution."));
    root.append(
      h("div", { class: "card" }, h("h2", {}, "标签目录 Tag catalog"), h("div", { class: "row" }, search, layer)),
      h("div", { class: "grid2" }, h("div", { class: "card" }, list), detail),
    );
    let ctrl = null;
    const load = guard(async () => {
      if (ctrl) ctrl.abort();
      ctrl = new AbortController();
      const q = new URLSearchParams();
      if (search.value.trim()) q.set("q", search.value.trim());
      if (layer.value) q.set("layer", layer.value);
      const data = await api("/tags?" + q.toString(), { signal: ctrl.signal });
      if (layer.options.length === 1) {
        for (const l of data.layers) layer.append(h("option", { value: l.layer }, `${l.layer} ${l.name_zh} (${l.tags})`));
      }
      list.innerHTML = "";
      const table = h("table", { class: "list", "data-testid": "tag-table" },
        h("tr", {}, h("th", {}, "标签 Tag"), h("th", {}, "Layer"), h("th", {}, "Type"), h("th", {}, "覆盖率 Coverage")));
      for (const t of data.tags) {
        const tr = h("tr", { class: "clickable", "data-tag": t.id, onclick: () => { table.querySelectorAll("tr").forEach((r) => r.classList.remove("selected")); tr.classList.add("selected"); showTag(detail, t.id); } },
          h("td", {}, h("div", {}, t.name_zh, " · ", t.name_en), h("div", { class: "muted" }, t.id)),
          h("td", {}, layerPill(t.layer)), h("td", {}, t.type), h("td", {}, coverageBar(t.coverage)));
        table.append(tr);
      }
      list.append(h("p", { class: "muted" }, `${data.tags.length} of ${data.total} tags`), table);
    });
    let timer = null;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 200); });
    layer.addEventListener("change", load);
    await load();
  }

  const showTag = guard(async (el, id) => {
    const d = await tagDetail(id);
    const t = d.tag;
    el.innerHTML = "";
    const chart = h("div", { "data-testid": "tag-distribution" });
    el.append(
      h("h2", {}, `${t.name_zh} · ${t.name_en}`),
      h("dl", { class: "kv" },
        h("dt", {}, "id"), h("dd", {}, h("code", {}, t.id)),
        h("dt", {}, "layer"), h("dd", {}, layerPill(t.layer), " ", t.layer_zh || ""),
        h("dt", {}, "type"), h("dd", {}, t.type),
        h("dt", {}, "coverage"), h("dd", {}, coverageBar(d.stats.coverage), d.stats.people !== undefined ? ` (${fmt(d.stats.people)} people)` : ""),
        h("dt", {}, "owner"), h("dd", {}, t.owner || "–"),
        h("dt", {}, "refresh"), h("dd", {}, t.refresh || "–"),
        h("dt", {}, "as of"), h("dd", {}, d.stats.dt || "–"),
        h("dt", {}, "definition"), h("dd", {}, h("code", {}, t.definition || "")),
      ),
      h("p", {}, t.description || ""),
      h("h3", {}, "分布 Distribution"),
      chart,
    );
    const all = d.stats.distribution || [];
    const dist = all.filter((x) => shown(x.count)).map((x) => ({ label: String(x.value), value: x.count }));
    Charts.bars(chart, dist, { title: `distribution of ${t.id}`, empty: "no distribution yet (run the tag build)" });
    const hidden = all.filter((x) => !shown(x.count)).map((x) => `${x.value} (${fmt(x.count)})`);
    if (hidden.length) chart.append(h("p", { class: "muted", "data-testid": "tag-hidden-values" }, "groups too small to show: " + hidden.join(", ")));
  });

  // ---- audience builder ---------------------------------------------------------------------------------

  function newCondition() { return { tag: "", op: "=", value: "" }; }

  function parseValue(raw, op, type) {
    const one = (s) => {
      s = String(s).trim();
      if (type === "long" || type === "double") { const n = Number(s); return s === "" || Number.isNaN(n) ? s : n; }
      if (type === "boolean") return s === "true" ? true : s === "false" ? false : s;
      return s;
    };
    if (op === "is_null" || op === "not_null") return undefined;
    if (op === "in" || op === "not_in" || op === "between") return String(raw).split(",").map(one).filter((v) => v !== "");
    return one(raw);
  }

  function buildRule(model, tagsById) {
    const groups = [];
    for (const g of model.groups) {
      const items = [];
      for (const c of g.conditions) {
        if (!c.tag) continue;
        const type = (tagsById[c.tag] || {}).type;
        const node = { tag: c.tag, op: c.op };
        const v = parseValue(c.value, c.op, type);
        if (v !== undefined) node.value = v;
        items.push(node);
      }
      if (items.length) groups.push(items.length === 1 ? items[0] : { [g.join]: items });
    }
    if (!groups.length) return null;
    return { [model.join]: groups };
  }

  // A saved rule back into builder groups, when it has the builder's shape: {all|any: [condition or
  // {all|any: [conditions]}]}. Other rules (behaviour, not, deeper nesting) are edited through the API.
  function modelFromRule(rule) {
    const join = Object.keys(rule || {}).find((k) => k === "all" || k === "any");
    if (!join || !Array.isArray(rule[join])) return null;
    const asCondition = (n) => (n && typeof n.tag === "string" ? { tag: n.tag, op: n.op || "=", value: Array.isArray(n.value) ? n.value.join(", ") : n.value === undefined ? "" : String(n.value) } : null);
    const groups = [];
    for (const item of rule[join]) {
      const single = asCondition(item);
      if (single) { groups.push({ join: "all", conditions: [single] }); continue; }
      const inner = Object.keys(item || {}).find((k) => k === "all" || k === "any");
      if (!inner || !Array.isArray(item[inner])) return null;
      const conditions = item[inner].map(asCondition);
      if (conditions.some((c) => !c)) return null;
      groups.push({ join: inner, conditions });
    }
    return groups.length ? { join, groups } : null;
  }

  async function pageBuilder(root, params) {
    const tags = await allTags();
    const tagsById = Object.fromEntries(tags.map((t) => [t.id, t]));
    let model = { join: "all", groups: [{ join: "all", conditions: [newCondition()] }] };
    let base = null;  // the audience a new version is saved for
    if (params && params.get("from")) {
      const page = await api("/audiences/" + encodeURIComponent(params.get("from")));
      const loaded = modelFromRule(JSON.parse(page.audience.definition || "null"));
      if (loaded) { model = loaded; base = page.audience; }
      else flash("This audience's rule has nodes the builder does not show (behaviour, not, nesting); edit it through the API.");
    }
    const groupsEl = h("div", { "data-testid": "groups" });
    const sizeEl = h("div", { class: "estimate", "data-testid": "estimate" }, "–");
    const noteEl = h("div", { class: "muted", "data-testid": "estimate-note" }, "Add a condition to see the size.");
    const ruleEl = h("pre", { class: "manifest", "data-testid": "rule-json" }, "");
    const nameEl = h("input", { type: "text", placeholder: "人群名称 Audience name", "data-testid": "audience-name", size: 30 });
    const saveBtn = h("button", { "data-testid": "save-audience", disabled: !can("audiences.write") }, "保存人群 Save audience");
    const topJoin = h("select", { "data-testid": "top-join" }, h("option", { value: "all" }, "AND 且 (all groups)"), h("option", { value: "any" }, "OR 或 (any group)"));
    topJoin.value = model.join;
    topJoin.addEventListener("change", () => { model.join = topJoin.value; render(); });
    if (base) {
      nameEl.value = base.name;
      nameEl.disabled = true;
      saveBtn.textContent = `保存新版本 Save as v${base.version + 1}`;
    }

    function tagSelect(c) {
      const sel = h("select", { class: "tag", "data-testid": "cond-tag" }, h("option", { value: "" }, "— tag 标签 —"));
      for (const t of tags) sel.append(h("option", { value: t.id, selected: t.id === c.tag }, `${t.name_zh} · ${t.name_en} (${t.id})`));
      sel.addEventListener("change", () => { c.tag = sel.value; c.value = ""; render(); });
      return sel;
    }

    function valueInput(c) {
      const t = tagsById[c.tag];
      const input = h("input", { type: "text", value: c.value, "data-testid": "cond-value", placeholder: c.op === "between" ? "low, high" : ["in", "not_in"].includes(c.op) ? "a, b, c" : "value", size: 18 });
      if (c.op === "is_null" || c.op === "not_null") input.disabled = true;
      input.addEventListener("input", () => { c.value = input.value; schedule(); });
      if (t) {
        const listId = "values-" + t.id;
        input.setAttribute("list", listId);
        if (!document.getElementById(listId)) {
          const dl = h("datalist", { id: listId });
          document.body.append(dl);
          tagDetail(t.id).then((d) => { for (const x of (d.stats.distribution || [])) dl.append(h("option", { value: String(x.value) })); }).catch(() => {});
        }
      }
      return input;
    }

    function render() {
      groupsEl.innerHTML = "";
      model.groups.forEach((g, gi) => {
        if (gi > 0) groupsEl.append(h("div", { class: "joiner" }, model.join === "all" ? "AND 且" : "OR 或"));
        const join = h("select", { "data-testid": "group-join" }, h("option", { value: "all", selected: g.join === "all" }, "AND 且"), h("option", { value: "any", selected: g.join === "any" }, "OR 或"));
        join.addEventListener("change", () => { g.join = join.value; schedule(); });
        const box = h("div", { class: "group", "data-testid": "group" },
          h("div", { class: "group-head" }, h("strong", {}, `条件组 Group ${gi + 1}`), h("span", { class: "muted" }, "conditions joined by"), join,
            model.groups.length > 1 ? h("button", { class: "link", onclick: () => { model.groups.splice(gi, 1); render(); } }, "remove group") : null));
        g.conditions.forEach((c, ci) => {
          const op = h("select", { "data-testid": "cond-op" }, OPS.map(([v, label]) => h("option", { value: v, selected: c.op === v }, label)));
          op.addEventListener("change", () => { c.op = op.value; render(); });
          box.append(h("div", { class: "cond" }, tagSelect(c), op, valueInput(c),
            h("button", { class: "link", title: "remove", onclick: () => { g.conditions.splice(ci, 1); if (!g.conditions.length) g.conditions.push(newCondition()); render(); } }, "✕")));
        });
        box.append(h("button", { class: "secondary", "data-testid": "add-condition", onclick: () => { g.conditions.push(newCondition()); render(); } }, "+ 条件 condition"));
        groupsEl.append(box);
      });
      schedule();
    }

    let timer = null, ctrl = null, seq = 0;
    function schedule() { clearTimeout(timer); timer = setTimeout(estimate, 250); }
    async function estimate() {
      const rule = buildRule(model, tagsById);
      ruleEl.textContent = rule ? JSON.stringify(rule, null, 1) : "";
      if (!rule) { sizeEl.textContent = "–"; noteEl.textContent = "Add a condition to see the size."; return; }
      if (ctrl) ctrl.abort();
      ctrl = new AbortController();
      const mine = ++seq;
      noteEl.textContent = "estimating…";
      const started = performance.now();
      try {
        const r = await api("/audiences/estimate", { body: { rule }, signal: ctrl.signal });
        if (mine !== seq) return;
        sizeEl.innerHTML = "";
        sizeEl.append(fmt(r.size), " ", h("small", {}, "people 人"));
        noteEl.classList.remove("error");
        noteEl.textContent = `${r.population ? (shown(r.size) ? pct(r.share) : "too few to show") + " of " + fmt(r.population) + " profiled · " : ""}profile ${r.dt || ""} · ${Math.round(performance.now() - started)} ms`;
      } catch (e) {
        if (e.name === "AbortError" || mine !== seq) return;
        sizeEl.textContent = "–";
        noteEl.classList.add("error");
        noteEl.textContent = e.message;
      }
    }

    saveBtn.addEventListener("click", guard(async () => {
      const rule = buildRule(model, tagsById);
      if (!rule) { flash("Add at least one condition before saving."); return; }
      if (!nameEl.value.trim()) { flash("Give the audience a name (人群名称)."); return; }
      saveBtn.disabled = true;
      try {
        const body = { name: nameEl.value.trim(), rule };
        if (base) body.audience_id = base.audience_id;
        const a = await api("/audiences", { body });
        flash(`Saved audience ${a.name} v${a.version}: ${fmt(a.size)} people`, "info");
        location.hash = "#/audience/" + encodeURIComponent(a.audience_id);
      } finally { saveBtn.disabled = false; }
    }));

    root.append(h("div", { class: "grid2" },
      h("div", {},
        h("div", { class: "card" }, h("h2", {}, "人群圈选 Audience builder"),
          h("div", { class: "row" }, h("span", { class: "muted" }, "Groups joined by"), topJoin),
          groupsEl,
          h("button", { class: "secondary", "data-testid": "add-group", onclick: () => { model.groups.push({ join: "all", conditions: [newCondition()] }); render(); } }, "+ 条件组 group")),
        seedCard()),
      h("div", {},
        h("div", { class: "card sticky" }, h("h3", {}, "预估人数 Estimated size"), sizeEl, noteEl,
          h("div", { class: "row", style: "margin-top:14px" }, nameEl, saveBtn),
          h("details", {}, h("summary", { class: "muted" }, "rule JSON (API)"), ruleEl)))));
    render();
  }

  function seedCard() {
    const name = h("input", { type: "text", placeholder: "Seed audience name", "data-testid": "seed-name" });
    const idType = h("select", { "data-testid": "seed-id-type" }, ["phone", "email", "oaid", "idfa", "imei", "android_id", "member_id", "wechat_openid", "wechat_unionid", "cookie"].map((t) => h("option", { value: t }, t)));
    const text = h("textarea", { placeholder: "one identifier per line (plain or md5/sha256)", "data-testid": "seed-text" });
    const file = h("input", { type: "file", accept: ".txt,.csv" });
    file.addEventListener("change", async () => { if (file.files[0]) text.value = await file.files[0].text(); });
    const out = h("div", { "data-testid": "seed-result" });
    const btn = h("button", { "data-testid": "seed-create", disabled: !can("audiences.write"), onclick: guard(async () => {
      out.textContent = "matching…";
      try {
        const a = await api("/audiences/seed", { body: { name: name.value.trim(), id_type: idType.value, identifiers: text.value } });
        out.innerHTML = "";
        out.append(h("p", { class: "ok" }, `${a.name}: ${fmt(a.size)} people matched`), h("pre", { class: "manifest" }, JSON.stringify(a.match || {}, null, 1)),
          h("a", { href: "#/audience/" + encodeURIComponent(a.audience_id) }, "open audience →"));
      } catch (e) { out.innerHTML = ""; out.append(h("p", { class: "error" }, e.message)); }
    }) }, "上传种子人群 Create from list");
    return h("details", { class: "card" }, h("summary", {}, h("strong", {}, "种子人群 Seed list upload")),
      h("div", { class: "row" }, name, idType, file), text, h("div", { class: "row" }, btn), out);
  }

  // ---- audiences ------------------------------------------------------------------------------------------

  async function pageAudiences(root) {
    const data = await api("/audiences");
    const table = h("table", { class: "list", "data-testid": "audience-table" },
      h("tr", {}, h("th", {}, "人群 Audience"), h("th", {}, "Kind"), h("th", { class: "num" }, "Size"), h("th", {}, "Version"), h("th", {}, "Created")));
    for (const a of data.audiences) {
      table.append(h("tr", { class: "clickable", onclick: () => { location.hash = "#/audience/" + encodeURIComponent(a.audience_id); } },
        h("td", {}, h("div", {}, a.name), h("div", { class: "muted" }, a.audience_id)), h("td", {}, a.kind || ""),
        h("td", { class: "num" }, fmt(a.size)), h("td", {}, "v" + a.version), h("td", {}, a.created_at || "")));
    }
    root.append(h("div", { class: "card" }, h("div", { class: "row" }, h("h2", { style: "flex:1" }, "人群 Audiences"), h("a", { href: "#/builder" }, "+ new audience")),
      data.audiences.length ? table : h("p", { class: "muted" }, "No audiences yet: build one.")));
  }

  async function pageAudience(root, id) {
    const data = await api("/audiences/" + encodeURIComponent(id));
    const a = data.audience;
    const versions = h("table", { class: "list", "data-testid": "versions" },
      h("tr", {}, h("th", {}, "Version"), h("th", {}, "dt"), h("th", { class: "num" }, "Size"), h("th", {}, "Created"), h("th", {}, "By"), h("th", {}, "Rule")));
    for (const v of data.versions) {
      versions.append(h("tr", {}, h("td", {}, "v" + v.version), h("td", {}, v.dt || ""), h("td", { class: "num" }, fmt(v.size)), h("td", {}, v.created_at || ""), h("td", {}, v.created_by || ""),
        h("td", {}, h("code", { style: "font-size:11px" }, (v.definition || "").slice(0, 160)))));
    }
    const sizeChart = h("div", { "data-testid": "size-chart" });
    const tgiChart = h("div", { "data-testid": "tgi-chart" });
    const idChart = h("div", { "data-testid": "idtype-chart" });
    const insightNote = h("p", { class: "muted" }, "loading insight…");
    const overlapOut = h("div", { "data-testid": "overlap-result" });
    const others = h("select", { "data-testid": "overlap-other" });
    const lookalike = lookalikeCard(a);
    root.append(
      h("div", { class: "card" }, h("h2", {}, `${a.name} `, h("span", { class: "muted" }, a.audience_id)),
        h("dl", { class: "kv" }, h("dt", {}, "kind"), h("dd", {}, a.kind || ""), h("dt", {}, "latest"), h("dd", {}, `v${a.version}: ${fmt(a.size)} people`),
          a.description ? [h("dt", {}, "description"), h("dd", {}, a.description)] : null),
        h("div", { class: "row", style: "margin-top:10px" }, h("a", { href: "#/packs?audience=" + encodeURIComponent(a.audience_id), "data-testid": "to-packs" }, "导出人群包 Export a pack →"),
          a.kind === "rule" ? h("a", { href: "#/builder?from=" + encodeURIComponent(a.audience_id), "data-testid": "edit-rule" }, "编辑规则 Edit rule → new version") : null)),
      h("div", { class: "grid2" },
        h("div", { class: "card" }, h("h3", {}, "版本 Versions"), versions),
        h("div", { class: "card" }, h("h3", {}, "规模趋势 Size over time"), sizeChart)),
      h("div", { class: "grid2" },
        h("div", { class: "card" }, h("h3", {}, "画像洞察 Insight: TGI"), insightNote, tgiChart),
        h("div", { class: "card" }, h("h3", {}, "ID 类型覆盖 ID-type coverage"), idChart)),
      h("div", { class: "grid2" },
        h("div", { class: "card" }, h("h3", {}, "人群重合 Overlap"), h("div", { class: "row" }, others,
          h("button", { "data-testid": "overlap-run", onclick: guard(async () => {
            if (!others.value) return;
            overlapOut.textContent = "computing…";
            const o = await api(`/audiences/${encodeURIComponent(id)}/overlap?other=${encodeURIComponent(others.value)}`);
            overlapOut.innerHTML = "";
            overlapOut.append(h("dl", { class: "kv" },
              h("dt", {}, "this audience"), h("dd", {}, fmt(o.size_a)), h("dt", {}, "other"), h("dd", {}, fmt(o.size_b)),
              h("dt", {}, "both 重合"), h("dd", {}, fmt(o.both)), h("dt", {}, "share of this"), h("dd", {}, pct(o.share_of_a)),
              h("dt", {}, "share of other"), h("dd", {}, pct(o.share_of_b)), h("dt", {}, "Jaccard"), h("dd", {}, o.jaccard === undefined || o.jaccard === null ? "–" : o.jaccard.toFixed(3))));
            if ([o.size_a, o.size_b, o.both].every(shown)) {
              Charts.bars(overlapOut.appendChild(h("div", {})), [{ label: "only this", value: o.size_a - o.both }, { label: "both", value: o.both }, { label: "only other", value: o.size_b - o.both }], { color: (d) => d.label === "both" ? "#19a974" : "#2f6fdf" });
            } else {
              overlapOut.append(h("p", { class: "muted" }, "Some groups are too small to show (fewer than the minimum group size)."));
            }
          }) }, "Compare")), overlapOut),
        lookalike));
    Charts.line(sizeChart, (data.sizes || []).filter((s) => shown(s.size)).map((s) => ({ x: s.label || s.dt, y: s.size })), { empty: "one version so far" });
    const list = await api("/audiences");
    for (const o of list.audiences) if (o.audience_id !== id) others.append(h("option", { value: o.audience_id }, `${o.name} (${fmt(o.size)})`));
    try {
      const ins = await api(`/audiences/${encodeURIComponent(id)}/insight`);
      lookalike.setPopulation(ins.population);
      insightNote.textContent = `TGI = share in audience / share in population × 100 (dashed line: 100). ${fmt(ins.size)} people vs ${fmt(ins.population)}.`;
      Charts.bars(tgiChart, ins.tgi.filter((r) => r.tgi !== null).slice(0, 20).map((r) => ({ label: `${r.tag}=${r.value}`, value: r.tgi, note: `${pct(r.share)} vs ${pct(r.base_share)}` })),
        { ref: 100, refLabel: "TGI 100", color: (d) => (d.value >= 100 ? "#19a974" : "#f2a33a"), empty: "no profile tags to compare" });
      Charts.bars(idChart, ins.id_types.filter((r) => r.share !== null).map((r) => ({ label: r.id_type, value: 100 * r.share, note: fmt(r.people) + " people" })),
        { format: (v) => v.toFixed(1) + "%", empty: "no identifiers" });
    } catch (e) { insightNote.textContent = e.message; insightNote.className = "error"; }
  }

  function lookalikeCard(a) {
    // The slider picks the size of the expanded audience in people; its range is set from the population once
    // the insight has loaded (setPopulation), 10x the seed until then.
    const base = Math.max(1, shown(a.size) ? a.size : 1);
    const slider = h("input", { type: "range", min: 1, max: base * 10, step: 1, value: Math.min(base * 3, base * 10), "data-testid": "lookalike-slider", style: "width:260px" });
    const label = h("span", { "data-testid": "lookalike-size" });
    const bar = h("span", { style: "width:0%" });
    const status = h("div", { class: "muted", "data-testid": "lookalike-status" });
    const result = h("div", { "data-testid": "lookalike-result" });
    const size = () => Number(slider.value);
    const show = () => { label.textContent = `${fmt(size())} people (${(size() / base).toFixed(1)}× seed)`; };
    slider.addEventListener("input", show);
    show();
    const btn = h("button", { "data-testid": "lookalike-run", disabled: !can("audiences.write"), onclick: guard(async () => {
      btn.disabled = true;
      result.innerHTML = "";
      try {
        let task = await api(`/audiences/${encodeURIComponent(a.audience_id)}/lookalike`, { body: { size: size() } });
        while (task.status === "queued" || task.status === "running") {
          bar.style.width = Math.round(100 * task.progress) + "%";
          status.textContent = `${task.status}: ${task.message}`;
          await new Promise((r) => setTimeout(r, 700));
          task = await api("/tasks/" + task.task_id);
        }
        bar.style.width = "100%";
        if (task.status === "failed") { status.textContent = ""; result.append(h("p", { class: "error" }, task.error)); return; }
        status.textContent = "done";
        const r = task.result || {};
        result.append(h("p", { class: "ok" }, "Lookalike audience ", h("a", { href: "#/audience/" + encodeURIComponent(r.audience_id) }, r.name || r.audience_id), `: ${fmt(r.size)} people`));
        if (r.evaluation) {
          const ev = r.evaluation;
          const scorers = Object.entries(ev.scorers || {});
          const ks = scorers.length ? Object.keys(scorers[0][1].lift) : [];
          const table = h("table", { class: "list", "data-testid": "lookalike-evaluation" },
            h("tr", {}, h("th", {}, "scorer"), h("th", { class: "num" }, "AUC"), ks.map((k) => h("th", { class: "num" }, "lift@" + k)), ks.map((k) => h("th", { class: "num" }, "recall@" + k))));
          for (const [name, m] of scorers) {
            table.append(h("tr", {}, h("td", {}, name), h("td", { class: "num" }, m.auc.toFixed(3)),
              ks.map((k) => h("td", { class: "num" }, m.lift[k].toFixed(2))), ks.map((k) => h("td", { class: "num" }, m.recall[k].toFixed(3)))));
          }
          result.append(h("h3", {}, "离线评估 Evaluation (hide-and-recover)"),
            h("p", { class: "muted" }, `seed ${fmt(ev.seed_size)}, ${Math.round(100 * ev.hidden_share)}% hidden, ${ev.splits} splits, ${ev.features} features; the model should beat the centroid and logistic baselines.`),
            table);
        }
      } finally { btn.disabled = false; }
    }) }, "扩展人群 Launch lookalike");
    const card = h("div", { class: "card" }, h("h3", {}, "相似人群扩展 Lookalike"), h("div", { class: "row" }, slider, label), h("div", { class: "row", style: "margin:8px 0" }, btn),
      h("div", { class: "progress" }, bar), status, result);
    card.setPopulation = (population) => {
      const room = Math.max(1, population - base);
      slider.max = room;
      slider.step = Math.max(1, Math.round(room / 200));
      slider.value = Math.min(size(), room);
      show();
    };
    return card;
  }

  // ---- packs ----------------------------------------------------------------------------------------------

  async function pagePacks(root, params) {
    const [list, dest] = await Promise.all([api("/audiences"), state.destinations || api("/destinations")]);
    state.destinations = dest;
    const audience = h("select", { "data-testid": "pack-audience" }, list.audiences.map((a) => h("option", { value: a.audience_id, selected: a.audience_id === params.get("audience") }, `${a.name} · v${a.version} · ${fmt(a.size)}`)));
    const destination = h("select", { "data-testid": "pack-destination" }, dest.destinations.map((d) => h("option", { value: d.name }, d.label)));
    const idTypes = h("div", { class: "row", "data-testid": "pack-id-types" });
    const manifestEl = h("div", { "data-testid": "manifest" });
    const packsEl = h("div", {});
    function renderIdTypes() {
      const d = dest.destinations.find((x) => x.name === destination.value);
      idTypes.innerHTML = "";
      if (!d) return;
      for (const t of d.id_types) {
        const box = h("input", { type: "checkbox", value: t.id_type, checked: t.allowed, disabled: !t.allowed, "data-testid": "idtype-" + t.id_type });
        idTypes.append(h("label", { title: t.note || "" }, box, ` ${t.id_type} `, h("span", { class: "muted" }, `(${t.platform_type}${t.allowed ? "" : ", admin only"})`)));
      }
      if (d.note) idTypes.append(h("div", { class: "muted", style: "width:100%" }, d.note));
    }
    destination.addEventListener("change", renderIdTypes);
    renderIdTypes();
    const exportBtn = h("button", { "data-testid": "export", disabled: !can("packs.export") || !list.audiences.length, onclick: guard(async () => {
      const chosen = [...idTypes.querySelectorAll("input:checked")].map((x) => x.value);
      if (!chosen.length) { flash("Pick at least one ID type."); return; }
      exportBtn.disabled = true;
      manifestEl.textContent = "exporting…";
      try {
        const m = await api(`/audiences/${encodeURIComponent(audience.value)}/packs`, { body: { destination: destination.value, id_types: chosen } });
        showManifest(manifestEl, m);
        flash(`Pack exported: ${fmt(m.people)} people, ${fmt(m.lines)} lines`, "info");
        await loadPacks();
      } catch (e) { manifestEl.innerHTML = ""; manifestEl.append(h("p", { class: "error", "data-testid": "export-error" }, e.message)); }
      finally { exportBtn.disabled = false; }
    }) }, "导出 Export pack");
    async function loadPacks() {
      const p = await api("/packs");
      packsEl.innerHTML = "";
      const table = h("table", { class: "list", "data-testid": "pack-table" },
        h("tr", {}, h("th", {}, "Pack"), h("th", {}, "Destination"), h("th", { class: "num" }, "People"), h("th", { class: "num" }, "Lines"), h("th", {}, "Created"), h("th", {}, "")));
      for (const x of p.packs) {
        table.append(h("tr", {}, h("td", {}, h("div", {}, x.audience_name || x.audience_id), h("div", { class: "muted" }, x.pack_id)), h("td", {}, x.destination),
          h("td", { class: "num" }, fmt(x.people)), h("td", { class: "num" }, fmt(x.lines)), h("td", {}, x.created_at || ""),
          h("td", {}, h("button", { class: "link", onclick: guard(async () => showManifest(manifestEl, await api(`/packs/${x.pack_id}/manifest`))) }, "manifest"),
            can("packs.export") ? h("button", { class: "link", "data-testid": "download", onclick: guard(() => download(x)) }, "下载 zip") : null)));
      }
      packsEl.append(p.packs.length ? table : h("p", { class: "muted" }, "No packs yet."));
    }
    root.append(
      h("div", { class: "card" }, h("h2", {}, "人群包导出 Export an audience pack"),
        h("div", { class: "row" }, h("label", {}, "Audience ", audience), h("label", {}, "Destination ", destination)),
        h("h3", { style: "margin-top:12px" }, "ID types"), idTypes,
        h("div", { class: "row", style: "margin-top:12px" }, exportBtn,
          h("span", { class: "muted" }, state.me.role === "admin" ? "" : "Marketers export hashed identifiers only; every export and download is audited."))),
      h("div", { class: "grid2" }, h("div", { class: "card" }, h("h3", {}, "Manifest"), manifestEl), h("div", { class: "card" }, h("h3", {}, "Packs"), packsEl)));
    await loadPacks();
  }

  function showManifest(el, m) {
    el.innerHTML = "";
    const counts = Object.entries(m.id_types || {}).map(([t, c]) => {
      const skipped = Object.entries(c.skipped || {}).map(([k, n]) => `${k}: ${fmt(n)}`).join(", ");
      return h("tr", {}, h("td", {}, t), h("td", {}, c.platform_type || ""), h("td", { class: "num" }, fmt(c.identifiers)),
        h("td", { class: "num" }, fmt(c.lines)), h("td", { class: "num" }, fmt(c.people)), h("td", {}, skipped || "–"));
    });
    el.append(
      h("dl", { class: "kv" }, h("dt", {}, "audience"), h("dd", {}, `${m.audience_name} (${m.audience_id}) v${m.version}`), h("dt", {}, "destination"), h("dd", {}, m.destination_label || m.destination),
        h("dt", {}, "people"), h("dd", { "data-testid": "manifest-people" }, fmt(m.people)), h("dt", {}, "lines"), h("dd", {}, fmt(m.lines)), h("dt", {}, "opt-outs removed"), h("dd", {}, fmt(m.opted_out_removed)),
        h("dt", {}, "minimum pack size"), h("dd", {}, fmt(m.min_pack_size)), h("dt", {}, "created"), h("dd", {}, `${m.created_at || ""} by ${m.created_by || ""}`)),
      h("table", { class: "list" }, h("tr", {}, h("th", {}, "ID type"), h("th", {}, "platform type"), h("th", { class: "num" }, "identifiers"), h("th", { class: "num" }, "lines"), h("th", { class: "num" }, "people"), h("th", {}, "skipped")), counts),
      h("details", {}, h("summary", {}, `files (${(m.files || []).length})`), h("pre", { class: "manifest" }, JSON.stringify(m.files, null, 1))));
    if (m.pack_id && can("packs.export")) el.append(h("button", { "data-testid": "download-manifest-pack", onclick: guard(() => download(m)) }, "下载 Download zip"));
  }

  async function download(pack) {
    const res = await api(`/packs/${pack.pack_id}/download`, { raw: true });
    const blob = await res.blob();
    const name = (res.headers.get("Content-Disposition") || "").match(/filename="?([^";]+)"?/);
    const a = h("a", { href: URL.createObjectURL(blob), download: name ? name[1] : "pack.zip" });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 2000);
  }

  // ---- SQL and audit ----------------------------------------------------------------------------------

  async function pageSql(root) {
    const text = h("textarea", { "data-testid": "sql-text" }, "SELECT * FROM gold.audit_log ORDER BY at DESC LIMIT 20");
    const out = h("div", { style: "overflow:auto" });
    const tables = await api("/sql/tables");
    const run = guard(async () => {
      out.textContent = "running…";
      try {
        const r = await api("/sql", { body: { query: text.value, limit: 500 } });
        out.innerHTML = "";
        const t = h("table", { class: "list" }, h("tr", {}, r.columns.map((c) => h("th", {}, c))));
        for (const row of r.rows) t.append(h("tr", {}, row.map((v) => h("td", {}, v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v)))));
        out.append(h("p", { class: "muted" }, `${r.rows.length} rows${r.truncated ? " (truncated)" : ""} in ${r.seconds} s`), t);
      } catch (e) { out.innerHTML = ""; out.append(h("p", { class: "error" }, e.message)); }
    });
    root.append(h("div", { class: "grid2", style: "grid-template-columns: 1fr 3fr" },
      h("div", { class: "card" }, h("h3", {}, "Tables"), h("div", {}, tables.tables.map((t) => h("div", {}, h("button", { class: "link", onclick: () => { text.value = `SELECT * FROM ${t.table} LIMIT 50`; run(); } }, t.table))))),
      h("div", { class: "card" }, h("h2", {}, "SQL (DuckDB over the lake, read-only)"), text, h("div", { class: "row" }, h("button", { onclick: run }, "Run")), out)));
  }

  async function pageAudit(root) {
    const r = await api("/audit?limit=200");
    const cols = ["at", "actor", "role", "action", "status", "audience_id", "destination", "id_types", "rows", "bytes"];
    const t = h("table", { class: "list", "data-testid": "audit-table" }, h("tr", {}, cols.map((c) => h("th", {}, c))));
    for (const row of r.rows) t.append(h("tr", {}, cols.map((c) => h("td", {}, row[c] === null || row[c] === undefined ? "" : String(row[c])))));
    root.append(h("div", { class: "card" }, h("h2", {}, "审计日志 Audit log (gold.audit_log)"), t));
  }

  // ---- router ---------------------------------------------------------------------------------------------

  async function route() {
    if (!state.me && !(await loadMe())) return;
    flash("");
    const hash = location.hash || "#/tags";
    const [path, query] = hash.slice(1).split("?");
    const parts = path.split("/").filter(Boolean);
    const params = new URLSearchParams(query || "");
    const page = parts[0] || "tags";
    document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page || (page === "audience" && a.dataset.page === "audiences")));
    const root = $("#page");
    root.innerHTML = "";
    root.dataset.page = page;
    const pages = Object.assign({ tags: pageTags, builder: pageBuilder, audiences: pageAudiences, packs: pagePacks, sql: pageSql, audit: pageAudit }, window.cdpPages);
    try {
      if (page === "audience") await pageAudience(root, decodeURIComponent(parts.slice(1).join("/")));
      else await (pages[page] || pageTags)(root, params);
      root.dataset.ready = "1";
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) flash(e instanceof ApiError ? `${e.status}: ${e.message}` : String(e));
    }
  }

  // Pages in their own files (effect.js, creators.js, ...) register as window.cdpPages[name] = async (root, params)
  // and use the shared helpers in window.cdpUi; they load after this file, so the first route waits for the document.
  window.cdpUi = { h, api, guard, flash, fmt, shown, pct, can, ApiError, state };
  window.cdpPages = window.cdpPages || {};
  window.addEventListener("hashchange", () => { $("#page").dataset.ready = ""; route(); });
  if (document.readyState === "complete") route();
  else window.addEventListener("load", () => route());
})();
