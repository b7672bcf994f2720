/*
 * 数据大屏: polls GET /api/v1/campaigns/<slug>/dashboard every few seconds and updates the page
 * in place (no reload). The optional dashboard token is read from location.hash
 * (#token=tpd_...), never from the path or the query, and sent as a Bearer token.
 *
 * Every text that comes from people (names, team names, action names) goes in through
 * textContent: nothing from the API is ever parsed as HTML. Avatars are never loaded (they
 * live on other hosts): an initial stands in for them.
 *
 * Number formats (deterministic, from the API's grams; tests/e2e/test_dashboard_browser.py
 * mirrors them):
 *   mg        = Math.round(grams * 1000)                (exact: the API sends at most 3 decimals)
 *   kg        = mg rounded half away from zero to whole grams, shown as kg with 3 decimals
 *   t         = mg rounded half away from zero to whole kg, shown as t with 3 decimals
 *   percent   = floor(reduction_mg * 10000 / target_mg) hundredths of a percent, 2 decimals
 *               ("0.00" when the target is 0)
 *   trees     = the API's trees (already 0.1 tree), 1 decimal
 *   counts    = integers
 *   integer parts are grouped by three with ","
 */
(function () {
  "use strict";

  var body = document.body;
  var API_URL = body.getAttribute("data-api");
  var REFRESH_MS = parseInt(body.getAttribute("data-refresh-ms"), 10) || 5000;
  var NOT_FOUND_TEXT = "活动不存在或需要访问令牌";
  var PALETTE = ["#3ddc84", "#22c3ee", "#ffb547", "#a78bfa", "#ff6b9a", "#5eead4",
                 "#facc15", "#60a5fa", "#f97316", "#c084fc", "#34d399", "#f472b6"];

  var state = {
    refreshes: 0,
    timer: null,
    inFlight: false,
    lineChart: null,
    actionChart: null,
    lastSignature: { timeseries: null, actions: null }
  };
  // For people and tests looking at the page: it is loaded once and updated in place.
  window.tanpuDashboard = { loadedAt: Date.now(), refreshes: 0, lastAsOf: null };

  // --- formatting ---------------------------------------------------------------------------

  function groupDigits(digits) {
    var out = "";
    for (var i = 0; i < digits.length; i++) {
      if (i > 0 && (digits.length - i) % 3 === 0) { out += ","; }
      out += digits.charAt(i);
    }
    return out;
  }

  function toMg(grams) {
    return BigInt(Math.round(Number(grams) * 1000));
  }

  function roundDiv(value, divisor) {
    // value / divisor rounded half away from zero (BigInt)
    var negative = value < 0n;
    var magnitude = negative ? -value : value;
    var rounded = (magnitude + divisor / 2n) / divisor;
    return negative ? -rounded : rounded;
  }

  function fixed3(thousandths) {
    var negative = thousandths < 0n;
    var magnitude = negative ? -thousandths : thousandths;
    var whole = (magnitude / 1000n).toString();
    var frac = (magnitude % 1000n).toString().padStart(3, "0");
    return (negative ? "-" : "") + groupDigits(whole) + "." + frac;
  }

  function formatKg(grams) {
    return fixed3(roundDiv(toMg(grams), 1000n));
  }

  function formatTonnes(grams) {
    return fixed3(roundDiv(toMg(grams), 1000000n));
  }

  function formatPercent(reductionG, targetG) {
    var targetMg = toMg(targetG);
    if (targetMg <= 0n) { return "0.00"; }
    var hundredths = (toMg(reductionG) * 10000n) / targetMg;
    if (hundredths < 0n) { hundredths = 0n; }
    return groupDigits((hundredths / 100n).toString()) + "." +
      (hundredths % 100n).toString().padStart(2, "0");
  }

  function formatTrees(trees) {
    var tenths = BigInt(Math.round(Number(trees) * 10));
    return groupDigits((tenths / 10n).toString()) + "." + (tenths % 10n).toString();
  }

  function formatCount(n) {
    return groupDigits(BigInt(Math.round(Number(n))).toString());
  }

  function kgNumber(grams) {
    // chart values only (display), never compared
    return Number(grams) / 1000;
  }

  // --- DOM helpers (text only) ---------------------------------------------------------------

  function byTestId(id) {
    return document.querySelector('[data-testid="' + id + '"]');
  }

  function setText(id, text) {
    var el = byTestId(id);
    if (el && el.textContent !== text) { el.textContent = text; }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.appendChild(document.createTextNode(text)); }
    return node;
  }

  function initialOf(name) {
    var chars = Array.from(String(name || "").trim());
    return chars.length ? chars[0].toUpperCase() : "?";
  }

  function shortDate(iso) {
    // "2026-11-25" -> "11-25"
    return String(iso).slice(5);
  }

  // --- rendering -----------------------------------------------------------------------------

  function renderHeader(campaign) {
    setText("campaign-name", String(campaign.name));
    document.title = "数据大屏 · " + String(campaign.name);
    setText("campaign-period", String(campaign.starts_on) + " 至 " + String(campaign.ends_on));
  }

  function renderSummary(summary) {
    setText("reduction-kg", formatKg(summary.reduction_g));
    setText("reduction-t", formatTonnes(summary.reduction_g));
    setText("target-kg", formatKg(summary.target_g));
    var pct = formatPercent(summary.reduction_g, summary.target_g);
    setText("progress-pct", pct);
    setText("trees", formatTrees(summary.trees));
    setText("participants", formatCount(summary.participants));
    setText("active-today", formatCount(summary.active_today));
    setText("records", formatCount(summary.records));

    var fill = Math.max(0, Math.min(100, parseFloat(pct.replace(/,/g, ""))));
    var ring = document.querySelector(".ring-fill");
    if (ring) {
      ring.setAttribute("stroke-dasharray", (fill * 10).toFixed(1) + " 1000");
      ring.setAttribute("visibility", fill > 0 ? "visible" : "hidden");
    }
  }

  function chartDefaults() {
    var Chart = window.Chart;
    Chart.defaults.color = "#8aa4c2";
    Chart.defaults.font.family = getComputedStyle(body).fontFamily;
    Chart.defaults.font.size = 15;
    Chart.defaults.borderColor = "rgba(255,255,255,0.08)";
  }

  function renderTimeseries(rows) {
    var empty = !rows.length;
    byTestId("timeseries-empty").hidden = !empty;
    var labels = rows.map(function (r) { return shortDate(r.date); });
    var values = rows.map(function (r) { return kgNumber(r.cumulative_g); });
    var signature = JSON.stringify([labels, values]);
    if (!window.Chart || signature === state.lastSignature.timeseries) { return; }
    state.lastSignature.timeseries = signature;
    if (!state.lineChart) {
      var ctx = document.getElementById("chart-cumulative");
      state.lineChart = new window.Chart(ctx, {
        type: "line",
        data: { labels: labels, datasets: [{
          label: "累计减排 (kg)", data: values, borderColor: "#3ddc84", borderWidth: 3,
          backgroundColor: "rgba(61,220,132,0.15)", fill: true, tension: 0.3,
          cubicInterpolationMode: "monotone",
          pointRadius: 3, pointBackgroundColor: "#3ddc84"
        }] },
        options: {
          responsive: true, maintainAspectRatio: false, animation: { duration: 600 },
          plugins: { legend: { display: false } },
          scales: {
            x: { grid: { display: false } },
            y: { beginAtZero: true, ticks: { callback: function (v) { return v + " kg"; } } }
          }
        }
      });
    } else {
      state.lineChart.data.labels = labels;
      state.lineChart.data.datasets[0].data = values;
      state.lineChart.update();
    }
  }

  function renderActions(rows) {
    var sorted = rows.slice().sort(function (a, b) { return Number(b.reduction_g) - Number(a.reduction_g); });
    byTestId("actions-empty").hidden = sorted.length > 0;
    var list = byTestId("action-list");
    var items = [];
    sorted.forEach(function (row, i) {
      var li = el("li");
      li.setAttribute("data-testid", "action-row");
      li.setAttribute("data-action", String(row.action));
      var swatch = el("span", "swatch");
      swatch.style.background = PALETTE[i % PALETTE.length];
      var name = el("span", "action-name", String(row.name));
      name.setAttribute("data-testid", "action-name");
      var kg = el("span", "action-kg", formatKg(row.reduction_g));
      kg.setAttribute("data-testid", "action-kg");
      li.appendChild(swatch);
      li.appendChild(name);
      li.appendChild(kg);
      items.push(li);
    });
    list.replaceChildren.apply(list, items);

    var labels = sorted.map(function (r) { return String(r.name); });
    var values = sorted.map(function (r) { return kgNumber(r.reduction_g); });
    var signature = JSON.stringify([labels, values]);
    if (!window.Chart || signature === state.lastSignature.actions) { return; }
    state.lastSignature.actions = signature;
    var colors = sorted.map(function (_, i) { return PALETTE[i % PALETTE.length]; });
    if (!state.actionChart) {
      var ctx = document.getElementById("chart-actions");
      state.actionChart = new window.Chart(ctx, {
        type: "doughnut",
        data: { labels: labels, datasets: [{
          data: values, backgroundColor: colors, borderColor: "#0a2038", borderWidth: 2
        }] },
        options: {
          responsive: true, maintainAspectRatio: false, cutout: "58%",
          animation: { duration: 600 }, plugins: { legend: { display: false } }
        }
      });
    } else {
      state.actionChart.data.labels = labels;
      state.actionChart.data.datasets[0].data = values;
      state.actionChart.data.datasets[0].backgroundColor = colors;
      state.actionChart.update();
    }
  }

  function rankCell(rank) {
    var td = el("td", "c-rank");
    var badge = el("span", "rank-badge", String(rank));
    badge.setAttribute("data-testid", "row-rank");
    td.appendChild(badge);
    return td;
  }

  function whoCell(name) {
    var td = el("td");
    var who = el("div", "who");
    who.appendChild(el("span", "avatar", initialOf(name)));
    var label = el("span", "who-name", String(name));
    label.setAttribute("data-testid", "row-name");
    who.appendChild(label);
    td.appendChild(who);
    return td;
  }

  function numCell(testId, text) {
    var td = el("td", "num", text);
    td.setAttribute("data-testid", testId);
    return td;
  }

  // One top-10 table: rank, name, then the cells ``cells(row)`` returns.
  function renderTop(name, rowTestId, rows, cells) {
    var tbody = byTestId(name);
    byTestId(name + "-empty").hidden = rows.length > 0;
    var trs = rows.slice(0, 10).map(function (row) {
      var tr = el("tr");
      tr.setAttribute("data-testid", rowTestId);
      tr.setAttribute("data-rank", String(row.rank));
      tr.appendChild(rankCell(row.rank));
      tr.appendChild(whoCell(row.name));
      cells(row).forEach(function (cell) { tr.appendChild(cell); });
      return tr;
    });
    tbody.replaceChildren.apply(tbody, trs);
  }

  function renderTeams(rows) {
    renderTop("top-teams", "top-team-row", rows, function (row) {
      return [numCell("row-active-members", formatCount(row.active_members)),
              numCell("row-reduction-kg", formatKg(row.reduction_g)),
              numCell("row-total-kg", formatKg(row.total_g))];
    });
  }

  function renderIndividuals(rows) {
    renderTop("top-individuals", "top-individual-row", rows, function (row) {
      return [numCell("row-reduction-kg", formatKg(row.reduction_g))];
    });
  }

  function asOfText(asOf) {
    var when = new Date(asOf);
    if (isNaN(when.getTime())) { return String(asOf); }
    var pad = function (n) { return String(n).padStart(2, "0"); };
    return when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" + pad(when.getDate()) + " " +
      pad(when.getHours()) + ":" + pad(when.getMinutes()) + ":" + pad(when.getSeconds());
  }

  function render(data) {
    renderHeader(data.campaign || {});
    renderSummary(data.summary || {});
    renderTimeseries(data.timeseries || []);
    renderActions(data.by_action || []);
    renderTeams(data.top_teams || []);
    renderIndividuals(data.top_individuals || []);
  }

  // --- state and polling ---------------------------------------------------------------------

  function setState(name, message) {
    body.setAttribute("data-state", name);
    setText("status-text", message);
    byTestId("error").hidden = name !== "not-found";
  }

  function tokenFromHash() {
    var hash = window.location.hash.replace(/^#/, "");
    if (!hash) { return null; }
    var token = new URLSearchParams(hash).get("token");
    return token ? token.trim() : null;
  }

  function markUpdated(asOf) {
    state.refreshes += 1;
    window.tanpuDashboard.refreshes = state.refreshes;
    window.tanpuDashboard.lastAsOf = asOf;
    body.setAttribute("data-updated-at", String(asOf));
    var status = byTestId("status");
    status.setAttribute("data-updated-at", String(asOf));
    status.setAttribute("data-refreshes", String(state.refreshes));
    setText("as-of", asOfText(asOf));
  }

  function refresh() {
    if (state.inFlight) { return Promise.resolve(); }
    state.inFlight = true;
    var headers = { "Accept": "application/json" };
    var token = tokenFromHash();
    if (token) { headers["Authorization"] = "Bearer " + token; }
    return fetch(API_URL, { headers: headers, cache: "no-store", credentials: "omit" })
      .then(function (response) {
        if (response.status === 404) {
          setState("not-found", NOT_FOUND_TEXT);
          if (!state.refreshes) { setText("campaign-name", "数据大屏"); }
          return null;
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        if (!data) { return; }
        render(data);
        markUpdated(data.as_of);
        setState("ok", "实时更新中 · " + asOfText(data.as_of).slice(11));
      })
      .catch(function () {
        if (body.getAttribute("data-state") !== "not-found") {
          setState("stale", "数据更新失败，稍后自动重试");
        }
      })
      .then(function () {
        state.inFlight = false;
      });
  }

  // One pending timer at most: every schedule replaces the previous one.
  function loop() {
    refresh().then(function () {
      window.clearTimeout(state.timer);
      state.timer = window.setTimeout(loop, REFRESH_MS);
    });
  }

  window.addEventListener("hashchange", loop);

  if (window.Chart) { chartDefaults(); }
  loop();
})();
