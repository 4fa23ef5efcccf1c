// Live supervisor page: loads /api/summary, then follows /api/events (SSE).
// No framework and no build step on purpose: the page must keep working on a PBX LAN with no internet,
// and be readable by whoever maintains the gateway. Every value shown comes from the gateway already
// masked (numbers) or bounded (campaign names); text is always set with textContent, never innerHTML.
"use strict";

(() => {
  const WINDOW = 60; // minutes on the chart
  const LATEST = 50;
  // Blocking reason codes in precedence order (DESIGN §7, gateway.policy.decision.Reason), each with a colour of
  // its own: the chart's legend follows this order, whatever the volumes. Colours from palettes made for
  // categorical data and colour-blind readers: Okabe-Ito (black left out: the page is dark), then Paul Tol's
  // "muted" and "light" (their indigo, wine and dark green left out: under 3:1 against the panel). The 16 were
  // picked to keep every pair apart (CIEDE2000) under normal vision and simulated deutan, protan and tritan
  // vision (Machado 2009); the closest pairs left go to a rare reason next to a common one. invalid_number
  // gets Tol's grey, his colour for bad data. no_jurisdiction (issue 12, a rare reason) took Tol's muted rose,
  // unused by the 16.
  const REASONS = [
    ["invalid_number", "#DDDDDD"], ["unknown_campaign", "#F0E442"], ["no_jurisdiction", "#CC6677"],
    ["sector_ban", "#AA4499"],
    ["caller_id", "#99DDFF"], ["registry_stale", "#BBCC33"], ["opposition_list", "#D55E00"],
    ["no_consent", "#56B4E9"], ["internal_dnc", "#CC79A7"], ["litigator", "#FFAABB"], ["blocked_prefix", "#999933"],
    ["refusal_cooldown", "#0072B2"], ["frequency_cap", "#009E73"], ["public_holiday", "#DDCC77"],
    ["outside_hours", "#E69F00"], ["state_unavailable", "#EE8866"], ["audit_unavailable", "#44BB99"],
  ];
  const REASON_COLOURS = Object.fromEntries(REASONS);
  const REASON_RANK = new Map(REASONS.map(([reason], i) => [reason, i]));
  // Campaigns (the "by campaign" view), in the order the legend lists them: Okabe-Ito's seven (black left out),
  // then three of Tol's "light" palette, the same colour-blind-safe families as the reasons (no red next to green).
  const PALETTE = ["#56B4E9", "#E69F00", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
    "#99DDFF", "#BBCC33", "#EE8866"];

  const state = {
    now: 0,
    totals: { decisions: 0, allowed: 0, blocked: 0, would_block: 0, undated_consent: 0 },
    buckets: new Map(), // minute (epoch seconds) -> [[campaign, reason, would_block, n], ...]
    latest: [],
    status: { lists: [], ami: { state: "off" }, bypasses: [] },
    groupBy: "reason",
    fresh: new Set(),
  };
  const $ = (id) => document.getElementById(id);
  const fmtInt = new Intl.NumberFormat();
  const two = (n) => String(n).padStart(2, "0");
  const hhmm = (t) => { const d = new Date(t * 1000); return `${two(d.getHours())}:${two(d.getMinutes())}`; };
  const hhmmss = (t) => { const d = new Date(t * 1000); return `${hhmm(t)}:${two(d.getSeconds())}`; };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // -- state updates -------------------------------------------------------------------------------

  function refMinute() {
    let newest = Math.floor(state.now / 60) * 60;
    for (const m of state.buckets.keys()) newest = Math.max(newest, m);
    return newest;
  }

  function prune() {
    const horizon = refMinute() - WINDOW * 60;
    for (const m of [...state.buckets.keys()]) if (m <= horizon) state.buckets.delete(m);
  }

  function mergeBuckets(buckets) {
    for (const [m, rows] of Object.entries(buckets || {})) state.buckets.set(Number(m), rows);
    prune();
  }

  function applySummary(s) {
    state.now = s.now || state.now;
    state.totals = s.totals || state.totals;
    state.buckets = new Map();
    mergeBuckets(s.buckets);
    state.latest = (s.latest || []).slice().sort((a, b) => b.at - a.at).slice(0, LATEST);
    if (s.lists) state.status = s;
    renderAll();
  }

  function applyTick(t) {
    state.now = t.now || state.now;
    state.totals = t.totals || state.totals;
    mergeBuckets(t.buckets);
    const added = t.latest || [];
    for (const item of added) state.fresh.add(item.id);
    // Newest first by decision time: two gateways' or a replay's calls may arrive slightly out of order.
    state.latest = added.concat(state.latest).sort((a, b) => b.at - a.at).slice(0, LATEST);
    renderFigures();
    renderChart();
    renderMatrix();
    renderLatest();
    stamp();
  }

  function applyStatus(s) {
    state.now = s.now || state.now;
    state.status = s;
    renderStatus();
    stamp();
  }

  // -- rendering -----------------------------------------------------------------------------------

  function renderAll() {
    renderFigures();
    renderChart();
    renderMatrix();
    renderLatest();
    renderStatus();
    stamp();
  }

  function stamp() {
    if (state.now) $("updated").textContent = `updated ${hhmmss(state.now)}`;
  }

  function renderFigures() {
    const ref = refMinute();
    let hour = 0, minute = 0;
    for (const [m, rows] of state.buckets) {
      for (const [, , would, n] of rows) {
        if (would) continue;
        if (m > ref - WINDOW * 60) hour += n;
        if (m === ref) minute += n;
      }
    }
    const t = state.totals;
    $("kpi-blocked-hour").textContent = fmtInt.format(hour);
    $("kpi-blocked-minute").textContent = fmtInt.format(minute);
    $("kpi-would-block").textContent = fmtInt.format(t.would_block || 0);
    $("kpi-decisions").textContent = fmtInt.format(t.decisions || 0);
    $("kpi-undated").textContent = fmtInt.format(t.undated_consent || 0);
    $("kpi-rate").textContent = t.decisions ? `${((100 * (t.blocked || 0)) / t.decisions).toFixed(1)} %` : "–";
  }

  function colourFor(key, index) {
    if (state.groupBy === "reason" && REASON_COLOURS[key]) return REASON_COLOURS[key];
    return PALETTE[index % PALETTE.length];
  }

  function renderChart() {
    const canvas = $("chart");
    const box = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(box.width * dpr)), h = Math.max(1, Math.round(box.height * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const W = box.width, H = box.height;
    ctx.clearRect(0, 0, W, H);

    // Series: group by reason or by campaign; monitor would-blocks drawn paler on top.
    const ref = refMinute();
    const minutes = [];
    for (let i = WINDOW - 1; i >= 0; i--) minutes.push(ref - i * 60);
    const keys = new Map(); // key -> total, for a stable legend ordered by volume
    const stacks = minutes.map((m) => {
      const parts = new Map();
      for (const [campaign, reason, would, n] of state.buckets.get(m) || []) {
        const key = state.groupBy === "reason" ? reason : campaign;
        const id = `${key}\u0000${would ? 1 : 0}`;
        parts.set(id, (parts.get(id) || 0) + n);
        keys.set(key, (keys.get(key) || 0) + n);
      }
      return parts;
    });
    // Reasons in precedence order (a reason keeps its place in the legend as volumes change); campaigns by volume.
    const byVolume = (a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1);
    const rank = (k) => (REASON_RANK.has(k) ? REASON_RANK.get(k) : REASONS.length);
    const byReason = (a, b) => rank(a[0]) - rank(b[0]) || (a[0] < b[0] ? -1 : 1);
    const order = [...keys.entries()].sort(state.groupBy === "reason" ? byReason : byVolume).map((e) => e[0]);
    const colours = new Map(order.map((k, i) => [k, colourFor(k, i)]));
    let max = 0;
    for (const parts of stacks) { let s = 0; for (const n of parts.values()) s += n; max = Math.max(max, s); }
    const step = niceStep(max);
    const top = Math.max(step, Math.ceil(max / step) * step);

    const css = getComputedStyle(document.documentElement);
    const fs = parseFloat(css.fontSize) * 0.75;
    ctx.font = `${fs}px system-ui, sans-serif`;
    const left = ctx.measureText(fmtInt.format(top)).width + 14, bottom = fs + 12, right = 6, topPad = 8;
    const plotW = W - left - right, plotH = H - bottom - topPad;

    ctx.strokeStyle = "#2a3440"; ctx.fillStyle = "#8b98a5"; ctx.lineWidth = 1;
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (let v = 0; v <= top; v += step) {
      const y = topPad + plotH - (v / top) * plotH;
      ctx.beginPath(); ctx.moveTo(left, Math.round(y) + 0.5); ctx.lineTo(W - right, Math.round(y) + 0.5); ctx.stroke();
      ctx.fillText(fmtInt.format(v), left - 6, y);
    }
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    const slot = plotW / WINDOW, barW = Math.max(1, slot * 0.78);
    minutes.forEach((m, i) => {
      const x = left + i * slot + (slot - barW) / 2;
      let y = topPad + plotH;
      for (const would of [0, 1]) {
        for (const key of order) {
          const n = stacks[i].get(`${key}\u0000${would}`);
          if (!n) continue;
          const bh = (n / top) * plotH;
          ctx.globalAlpha = would ? 0.45 : 1;
          ctx.fillStyle = colours.get(key);
          ctx.fillRect(x, y - bh, barW, bh);
          y -= bh;
        }
      }
      ctx.globalAlpha = 1;
      if ((m / 60) % 10 === 0 || i === WINDOW - 1) {
        const label = hhmm(m), half = ctx.measureText(label).width / 2;
        ctx.fillStyle = "#8b98a5";
        ctx.fillText(label, Math.min(Math.max(x + barW / 2, left + half), W - right - half), topPad + plotH + 6);
      }
    });

    const legend = $("legend");
    legend.replaceChildren(...order.map((k) => {
      const li = el("li");
      li.dataset.key = k;
      const sw = el("span", "swatch");
      sw.style.background = colours.get(k);
      li.append(sw, el("span", "", `${k} · ${fmtInt.format(keys.get(k))}`));
      return li;
    }));
    if (!order.length) legend.replaceChildren(el("li", "muted", "no blocked call in the last hour"));
    else if (stacks.some((parts) => [...parts.keys()].some((id) => id.endsWith("\u00001")))) {
      legend.append(el("li", "muted", "paler: monitor mode, would block"));
    }
  }

  // Reason x campaign over the chart's hour: which campaign hits which rule, at a glance (the chart shows one
  // grouping at a time). Rows are reasons in precedence order, columns campaigns by volume, with totals.
  function renderMatrix() {
    const horizon = refMinute() - WINDOW * 60;
    const cells = new Map(); // reason -> campaign -> [blocked, would]
    const byCampaign = new Map();
    for (const [m, rows] of state.buckets) {
      if (m <= horizon) continue;
      for (const [campaign, reason, would, n] of rows) {
        if (!cells.has(reason)) cells.set(reason, new Map());
        const row = cells.get(reason);
        const cell = row.get(campaign) || [0, 0];
        cell[would ? 1 : 0] += n;
        row.set(campaign, cell);
        byCampaign.set(campaign, (byCampaign.get(campaign) || 0) + n);
      }
    }
    const rank = (k) => (REASON_RANK.has(k) ? REASON_RANK.get(k) : REASONS.length);
    const reasons = [...cells.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
    const campaigns = [...byCampaign.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map((e) => e[0]);
    const table = $("matrix");
    const count = (cell) => {
      const td = el("td", cell[0] || cell[1] ? "" : "zero", fmtInt.format(cell[0]));
      if (cell[1]) td.append(el("span", "would", `+${fmtInt.format(cell[1])}`));
      return td;
    };
    const head = el("tr");
    head.append(el("th", "", "Reason"), ...campaigns.map((c) => el("th", "campaign", c)), el("th", "", "Total"));
    table.tHead.replaceChildren(...(reasons.length ? [head] : []));
    const totals = new Map(campaigns.map((c) => [c, [0, 0]]));
    const all = [0, 0];
    table.tBodies[0].replaceChildren(...reasons.map((reason) => {
      const tr = el("tr");
      tr.dataset.reason = reason;
      const name = el("td");
      const sw = el("span", "swatch");
      sw.style.background = REASON_COLOURS[reason] || "#8b98a5";
      name.append(sw, document.createTextNode(reason));
      tr.append(name);
      const sum = [0, 0];
      for (const c of campaigns) {
        const cell = cells.get(reason).get(c) || [0, 0];
        const td = count(cell);
        td.dataset.campaign = c;
        tr.append(td);
        for (const i of [0, 1]) { sum[i] += cell[i]; totals.get(c)[i] += cell[i]; all[i] += cell[i]; }
      }
      const total = count(sum);
      total.classList.add("total");
      tr.append(total);
      return tr;
    }));
    const foot = el("tr");
    foot.append(el("td", "", "Total"), ...campaigns.map((c) => count(totals.get(c))), count(all));
    table.tFoot.replaceChildren(...(reasons.length ? [foot] : []));
    $("matrix-empty").hidden = reasons.length > 0;
  }

  function niceStep(max) {
    if (max <= 5) return 1;
    const raw = max / 5, p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
    return 10 * p;
  }

  function renderLatest() {
    const body = $("latest").tBodies[0];
    body.replaceChildren(...state.latest.map((b) => {
      const tr = el("tr", state.fresh.has(b.id) ? "fresh" : "");
      tr.dataset.id = b.id;
      const reason = el("td");
      const tag = el("span", "tag tag-reason", b.reason);
      const colour = REASON_COLOURS[b.reason];
      if (colour) {
        // The reason's colour as the tag's background, the text dark or light, whichever reads better on it.
        tag.style.background = colour;
        tag.style.color = textOn(colour);
      }
      reason.append(tag);
      if (b.would_block) reason.append(el("span", "tag tag-monitor", "monitor"));
      const campaign = el("td", "", b.campaign);
      if (b.campaign_sent) {
        // Not a configured campaign: show what the dialplan sent (as text, masked and truncated by the gateway).
        const sent = el("span", "sent", `“${b.campaign_sent}”`);
        sent.title = "campaign name sent by the dialplan: not in the config";
        campaign.append(sent);
      }
      tr.append(el("td", "", hhmmss(b.at)), campaign, el("td", "num", b.number), reason);
      return tr;
    }));
    state.fresh.clear();
    $("latest-empty").hidden = state.latest.length > 0;
  }

  // WCAG relative luminance and contrast ratio, to pick the text colour on a coloured tag.
  function luminance(hex) {
    const [r, g, b] = [1, 3, 5].map((i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  const DARK_TEXT = "#0f1318", LIGHT_TEXT = "#ffffff";
  function textOn(hex) {
    const l = luminance(hex);
    return (l + 0.05) / (luminance(DARK_TEXT) + 0.05) >= 1.05 / (l + 0.05) ? DARK_TEXT : LIGHT_TEXT;
  }

  function renderStatus() {
    const s = state.status || {};
    $("instance").textContent = s.instance ? `· ${s.instance}` : "";
    const alerts = [];

    const lists = $("lists");
    lists.replaceChildren(...(s.lists || []).map((l) => {
      const li = el("li", l.freshness);
      li.dataset.list = l.name;
      li.append(el("span", "name", l.name));
      let age = "not loaded";
      if (l.loaded) age = l.age_days === null ? "undated" : `${l.age_days} d${l.max_age_days ? ` / ${l.max_age_days}` : ""}`;
      li.append(el("span", "age", age));
      const bar = el("div", "bar");
      const fill = el("span");
      const share = l.max_age_days && l.age_days !== null ? Math.min(1, l.age_days / l.max_age_days) : (l.loaded ? 0.02 : 1);
      fill.style.width = `${Math.max(2, share * 100)}%`;
      bar.append(fill);
      if (l.max_age_days || !l.loaded) li.append(bar);
      li.append(el("span", "meta", l.loaded ? `${l.kind} · ${fmtInt.format(l.count)} ${l.count === 1 ? "entry" : "entries"} · ${l.version}` : `${l.kind} · ${l.reload_failed ? "no version in service" : l.error || "no version in service"}`));
      // A failed reload keeps the previous version serving, so freshness alone would look fine: say it in red.
      const failed = l.reload_failed;
      if (failed) {
        li.classList.add("reload-failed");
        const what = failed.origin === "poll" ? "fetch" : "reload";
        const since = failed.count > 1 ? ` (${failed.count} in a row since ${hhmm(failed.since)})` : "";
        // A loader's error can run long (the path, the first bad lines): cut on the panel, whole on hover.
        const why = failed.error.length > 240 ? `${failed.error.slice(0, 239)}…` : failed.error;
        const line = el("span", "failed", `last ${what} failed at ${hhmm(failed.at)}${since}: ${why}`);
        line.title = failed.error;
        li.append(line);
        if (l.loaded) alerts.push(["warn", `List ${l.name}: the last ${what} failed at ${hhmm(failed.at)}; the previous version (${l.version}) stays in service.`]);
      }
      if (l.freshness === "stale") alerts.push(["bad", `List ${l.name} is past its maximum age (${l.age_days === null ? "undated" : `${l.age_days} days, max ${l.max_age_days}`}): calls that need it are blocked as registry_stale. Load a fresh extract.`]);
      else if (l.freshness === "missing") alerts.push(["bad", `List ${l.name} is not loaded${l.error ? `: ${l.error}` : ""}.`]);
      else if (l.freshness === "warn") alerts.push(["warn", `List ${l.name} is ${l.age_days} days old (max ${l.max_age_days}): fetch the next extract before it expires.`]);
      return li;
    }));

    const ami = s.ami || { state: "off" };
    const amiEl = $("ami-state");
    amiEl.className = `ami ami-${ami.state}`;
    amiEl.textContent = ami.state === "off" ? "not configured" : ami.state;
    if (ami.state === "disconnected") alerts.push(["bad", "AMI disconnected: bypass detection is off until it reconnects."]);

    const bypasses = s.bypasses || [];
    $("bypasses").replaceChildren(...bypasses.map((b) => {
      const li = el("li");
      li.append(el("span", "when", b.at ? hhmmss(b.at) : ""), document.createTextNode(
        `${b.number || "?"} · ${b.campaign || "?"}${b.kind ? ` · ${b.kind.replace(/_/g, " ")}` : ""}` +
        `${b.channel ? ` · ${b.channel}` : ""}${b.hangup ? " · hung up" : ""}`));
      return li;
    }));
    $("bypasses-empty").hidden = bypasses.length > 0;
    $("bypass-panel").classList.toggle("active", bypasses.length > 0);
    if (bypasses.length) alerts.unshift(["bad", `${bypasses.length} call${bypasses.length > 1 ? "s" : ""} reached the trunk without a decision (bypass).`]);

    // A refused config and versions held back by the shrink guard: the old ones keep serving until an operator acts.
    if (s.config_reload_failed) alerts.unshift(["bad", `Config reload refused at ${hhmm(s.config_reload_failed.at)}: the running config stays. ${s.config_reload_failed.error}`]);
    for (const [name, h] of Object.entries(s.lists_held_back || {})) {
      alerts.unshift(["bad", `List ${name}: new version refused, it drops ${fmtInt.format(h.dropped)} of ${fmtInt.format(h.in_service)} numbers (max_shrink ${(h.max_shrink * 100).toFixed(1)} %); the previous version serves. Accept it with: dnc-gateway registry accept ${name}`]);
    }
    renderHealth(s, alerts);
    $("alerts").replaceChildren(...alerts.map(([level, text]) => el("div", `alert alert-${level}`, text)));
  }

  // FastAGI errors, the call-history store and the audit log: what the shipped alerts watch, on the page too.
  // Every field is optional: an older gateway (or a part not configured) leaves a row at "–".
  function healthRow(id, level, text, detail) {
    const row = $(id);
    row.className = `health-row ${level}`;
    const dd = row.querySelector("dd");
    dd.replaceChildren(document.createTextNode(text));
    if (detail) dd.append(el("span", "detail", detail));
  }

  function kinds(counts) {
    return Object.entries(counts || {}).filter(([, n]) => n).sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k.replace(/_/g, " ")} ${fmtInt.format(n)}`).join(", ");
  }

  function renderHealth(s, alerts) {
    const agi = s.fastagi;
    if (agi && agi.errors) {
      const recent = agi.recent || 0, total = agi.total || 0;
      const sessions = agi.sessions || {};
      const done = (sessions.ok || 0) + (sessions.error || 0);
      const detail = total ? `${fmtInt.format(total)} since start: ${kinds(agi.errors)}` : `${fmtInt.format(done)} sessions, no error`;
      healthRow("health-fastagi", recent ? "warn" : "ok",
        recent ? `${fmtInt.format(recent)} error${recent > 1 ? "s" : ""} in ${agi.recent_minutes || 10} min` : "no recent error", detail);
      if (recent) alerts.push(["warn", `FastAGI: ${fmtInt.format(recent)} error${recent > 1 ? "s" : ""} in the last ${agi.recent_minutes || 10} minutes (${kinds(agi.errors)} since start): check the dialplan's AGI() lines and the gateway's log.`]);
    }
    const st = s.state_store;
    if (st && st.kind) {
      const errors = kinds(st.errors);
      if (st.up) healthRow("health-state", "ok", `${st.kind} · up`, errors ? `errors since start: ${errors}` : "");
      else {
        healthRow("health-state", "bad", `${st.kind} · DOWN`, st.last_error || (errors ? `errors: ${errors}` : "not answering"));
        alerts.push(["bad", `Call-history store (${st.kind}) unavailable: calls whose rules need a count, a refusal or an opt-out are refused (state_unavailable)${st.last_error ? `: ${st.last_error.replace(/\.+$/, "")}` : ""}.`]);
      }
    }
    const a = s.audit;
    if (a === null) healthRow("health-audit", "off", "not configured", "");
    else if (a && a.available !== undefined) {
      const detail = `queue ${fmtInt.format(a.queue_depth || 0)} · ${fmtInt.format(a.failures || 0)} failure${a.failures === 1 ? "" : "s"} since start`;
      if (a.available) {
        healthRow("health-audit", a.failures ? "warn" : "ok", "writing", a.failures && a.last_error ? `${detail} · last: ${a.last_error}` : detail);
      } else {
        healthRow("health-audit", "bad", "NOT WRITING", `${detail}${a.last_error ? ` · ${a.last_error}` : ""}`);
        alerts.push(["bad", `Audit log not writing (queue ${fmtInt.format(a.queue_depth || 0)}): calls are refused as audit_unavailable until it writes again${a.last_error ? `: ${a.last_error.replace(/\.+$/, "")}` : ""}.`]);
      }
    }
  }

  // -- wiring --------------------------------------------------------------------------------------

  function setConn(kind, text) {
    const b = $("conn-state");
    b.className = `badge badge-${kind}`;
    b.textContent = text;
  }

  function connect() {
    const es = new EventSource("/api/events");
    es.addEventListener("open", () => setConn("live", "live"));
    es.addEventListener("error", () => setConn(es.readyState === EventSource.CLOSED ? "down" : "wait", "reconnecting…"));
    es.addEventListener("summary", (e) => applySummary(JSON.parse(e.data)));
    es.addEventListener("tick", (e) => applyTick(JSON.parse(e.data)));
    es.addEventListener("status", (e) => applyStatus(JSON.parse(e.data)));
    window.addEventListener("beforeunload", () => es.close());
  }

  function group(by) {
    state.groupBy = by;
    for (const [id, v] of [["by-reason", "reason"], ["by-campaign", "campaign"]]) {
      $(id).classList.toggle("on", v === by);
      $(id).setAttribute("aria-pressed", String(v === by));
    }
    renderChart();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("by-reason").addEventListener("click", () => group("reason"));
    $("by-campaign").addEventListener("click", () => group("campaign"));
    new ResizeObserver(() => renderChart()).observe($("chart"));
    fetch("/api/summary", { cache: "no-store" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then(applySummary)
      .catch(() => setConn("down", "gateway unreachable"))
      .finally(connect);
  });
})();
