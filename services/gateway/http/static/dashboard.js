// Operators' dashboard: reads /v1/kpis (JSON mirror of GatewayService/GetDossierKpis) and draws
// the table and two SVG charts; reads /v1/follow-up/kpis (GetFollowUpKpis) for the directive
// follow-up panels: plan progress (tasks done / total), directives slow to implement, petitions per
// agency and kind. No libraries, no network beyond this gateway.
// Authentication: a dev token given once in the address (#token=...) is kept in sessionStorage
// and sent as a bearer token; with mutual TLS the browser's client certificate is enough.
"use strict";

const TEXT = {
  vi: {
    title: "Bảng điều hành giải quyết hồ sơ", agency: "Cơ quan", from: "Từ ngày", to: "Đến ngày", period: "Kỳ",
    day: "Ngày", month: "Tháng", quarter: "Quý", year: "Năm", refresh: "Cập nhật",
    received: "Tiếp nhận", resolved: "Đã giải quyết", onTime: "Đúng hạn (%)", overdue: "Quá hạn",
    currentlyOverdue: "Đang quá hạn", apologyCoverage: "Xin lỗi / quá hạn (%)",
    online3: "Trực tuyến mức 3 (%)", online4: "Trực tuyến mức 4 (%)", total: "Tổng cộng",
    chartVolume: "Hồ sơ tiếp nhận và đã giải quyết theo cơ quan", chartOnTime: "Tỷ lệ đúng hạn theo cơ quan (%)",
    note: "Số liệu từ mô hình đọc của cổng dữ liệu, cập nhật mỗi 10 giây.",
    loading: "Đang tải…", updated: "Cập nhật lúc", empty: "Chưa có số liệu", error: "Lỗi",
    followUpTitle: "Theo dõi thực hiện nhiệm vụ và đơn thư",
    plansTitle: "Tiến độ kế hoạch, chỉ đạo (nhiệm vụ hoàn thành / tổng số)", directive: "Văn bản, kế hoạch",
    leadAgency: "Cơ quan chủ trì", progress: "Hoàn thành / tổng", donePercent: "Tỷ lệ (%)", doneOnTime: "Đúng hạn",
    tasksOverdue: "Trễ hạn", extended: "Gia hạn", allAgencies: "Tất cả",
    slowTitle: "Chỉ đạo chậm triển khai (có nhiệm vụ quá hạn)", slowNone: "Không có chỉ đạo chậm triển khai",
    overdueTasks: "nhiệm vụ quá hạn", openTasks: "đang thực hiện", issuedBy: "ban hành",
    handlingAgency: "Cơ quan giải quyết", petitionKind: "Loại đơn", petitionsReceived: "Tiếp nhận",
    answered: "Đã trả lời", answeredOnTime: "Trả lời đúng hạn", petitionsOverdue: "Quá hạn", open: "Đang giải quyết",
    PETITION_KIND_FEEDBACK: "Phản ánh, kiến nghị", PETITION_KIND_COMPLAINT: "Khiếu nại", PETITION_KIND_DENUNCIATION: "Tố cáo",
  },
  en: {
    title: "Dossier processing dashboard", agency: "Agency", from: "From", to: "To", period: "Period",
    day: "Day", month: "Month", quarter: "Quarter", year: "Year", refresh: "Refresh",
    received: "Received", resolved: "Resolved", onTime: "On time (%)", overdue: "Overdue",
    currentlyOverdue: "Currently overdue", apologyCoverage: "Apologies / overdue (%)",
    online3: "Online level 3 (%)", online4: "Online level 4 (%)", total: "Total",
    chartVolume: "Dossiers received and resolved per agency", chartOnTime: "On-time rate per agency (%)",
    note: "Figures from the gateway's read model, refreshed every 10 seconds.",
    loading: "Loading…", updated: "Updated at", empty: "No figures yet", error: "Error",
    followUpTitle: "Directive follow-up and petitions",
    plansTitle: "Progress of plans and directives (tasks done / total)", directive: "Directive or plan",
    leadAgency: "Lead agency", progress: "Done / total", donePercent: "Done (%)", doneOnTime: "On time",
    tasksOverdue: "Overdue", extended: "Extended", allAgencies: "All",
    slowTitle: "Directives slow to implement (overdue tasks)", slowNone: "No directive is behind",
    overdueTasks: "overdue tasks", openTasks: "open", issuedBy: "issued by",
    handlingAgency: "Handling agency", petitionKind: "Kind", petitionsReceived: "Received",
    answered: "Answered", answeredOnTime: "Answered on time", petitionsOverdue: "Overdue", open: "Open",
    PETITION_KIND_FEEDBACK: "Feedback", PETITION_KIND_COMPLAINT: "Complaint", PETITION_KIND_DENUNCIATION: "Denunciation",
  },
};

let lang = localStorage.getItem("citydata.lang") || "vi";
let lastData = null;
let lastFollowUp = null;

function t(key) { return TEXT[lang][key] || key; }

function token() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem("citydata.token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("citydata.token");
}

function num(value) { return Number(value || 0); }
function count(value) { return num(value).toLocaleString(lang === "vi" ? "vi-VN" : "en-US"); }
function pct(ratio) { return (num(ratio) * 100).toFixed(1); }

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = "CityData · " + t("title");
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-lang]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === lang)));
  if (lastData) render(lastData);
  if (lastFollowUp) renderFollowUp(lastFollowUp);
}

function query() {
  const form = new FormData(document.getElementById("filters"));
  const params = new URLSearchParams({ group_by: "agency,period", period: form.get("period") || "month" });
  for (const name of ["agency", "from", "to"]) {
    if (form.get(name)) params.set(name, form.get(name));
  }
  return params;
}

function authHeaders() {
  const headers = {};
  const bearer = token();
  if (bearer) headers.Authorization = "Bearer " + bearer;
  return headers;
}

async function load() {
  await Promise.all([loadDossiers(), loadFollowUp()]);
}

async function loadDossiers() {
  const status = document.getElementById("status");
  status.className = "";
  status.textContent = t("loading");
  const headers = authHeaders();
  try {
    const response = await fetch("/v1/kpis?" + query(), { headers });
    const body = await response.json();
    if (!response.ok) throw new Error(body.code + ": " + body.message);
    lastData = body;
    render(body);
    status.textContent = t("updated") + " " + new Date().toLocaleTimeString(lang === "vi" ? "vi-VN" : "en-US");
    document.body.dataset.loaded = "true";
  } catch (err) {
    status.className = "error";
    status.textContent = t("error") + ": " + err.message;
    document.body.dataset.loaded = "error";
  }
}

// The follow-up panels fail on their own (an agency may hold the dossier KPIs right only).
async function loadFollowUp() {
  const status = document.getElementById("follow-up-status");
  const params = new URLSearchParams();
  const agency = new FormData(document.getElementById("filters")).get("agency");
  if (agency) params.set("agency", agency);
  try {
    const response = await fetch("/v1/follow-up/kpis?" + params, { headers: authHeaders() });
    const body = await response.json();
    if (!response.ok) throw new Error(body.code + ": " + body.message);
    lastFollowUp = body;
    renderFollowUp(body);
    status.className = "";
    status.textContent = "";
    document.body.dataset.followUp = "true";
  } catch (err) {
    status.className = "error";
    status.textContent = t("error") + ": " + err.message;
    document.body.dataset.followUp = "error";
  }
}

function taskCells(row) {
  return [
    ["progress", `${count(row.done)}/${count(row.total)}`],
    ["donePercent", num(row.donePercent).toFixed(2)],
    ["doneOnTime", count(row.doneOnTime)],
    ["overdue", count(row.overdue)],
    ["extended", count(row.extended)],
  ].map(([key, value]) => `<td data-kpi="${key}">${value}</td>`).join("");
}

function renderFollowUp(data) {
  const directives = data.directives || [];
  const agencies = data.agencies || [];
  const plans = document.querySelector("#plans tbody");
  plans.innerHTML = directives.length
    ? directives.map((d) => {
        const id = escapeHtml(d.directiveId);
        const own = agencies.filter((a) => a.directiveId === d.directiveId);
        return `<tr class="directive" data-directive="${id}" data-agency=""><td>${escapeHtml(d.directiveNumber || d.directiveId)}</td><td>${t("allAgencies")}</td>${taskCells(d)}</tr>` +
          own.map((a) => `<tr data-directive="${id}" data-agency="${escapeHtml(a.agency)}"><td></td><td>${escapeHtml(a.agency)}</td>${taskCells(a)}</tr>`).join("");
      }).join("")
    : `<tr><td colspan="7">${t("empty")}</td></tr>`;
  document.getElementById("chart-plans").innerHTML = planChart(directives);
  const slow = data.slowDirectives || [];
  document.getElementById("slow").innerHTML = slow.length
    ? slow.map((s) => {
        const d = s.directive || {};
        const name = d.number || d.summary || d.directiveId;
        return `<li data-directive="${escapeHtml(d.directiveId)}" data-overdue="${num(s.overdueTasks)}"><strong>${escapeHtml(name)}</strong>` +
          (d.issuerAgency ? ` (${t("issuedBy")} ${escapeHtml(d.issuerAgency)})` : "") +
          `: <span class="late">${count(s.overdueTasks)} ${t("overdueTasks")}</span> / ${count(s.openTasks)} ${t("openTasks")}` +
          ` — ${(s.overdueAgencies || []).map(escapeHtml).join(", ")}</li>`;
      }).join("")
    : `<li class="none">${t("slowNone")}</li>`;
  const petitions = data.petitions || [];
  document.querySelector("#petitions tbody").innerHTML = petitions.length
    ? petitions.map((p) => `<tr data-agency="${escapeHtml(p.agency)}" data-kind="${escapeHtml(p.kind)}"><td>${escapeHtml(p.agency)}</td><td>${escapeHtml(t(p.kind))}</td>` +
        [["received", p.received], ["answered", p.answered], ["answeredOnTime", p.answeredOnTime], ["overdue", p.overdue], ["open", p.open]]
          .map(([key, value]) => `<td data-kpi="${key}">${count(value)}</td>`).join("") + "</tr>").join("")
    : `<tr><td colspan="7">${t("empty")}</td></tr>`;
}

function planChart(directives) {
  if (!directives.length) return "";
  const width = 520, rowH = 22, left = 150, height = directives.length * rowH + 6;
  const bars = directives.slice(0, 15).map((d, i) => {
    const y = 3 + i * rowH;
    const full = width - left - 60;
    const share = num(d.total) ? num(d.done) / num(d.total) : 0;
    const label = String(d.directiveNumber || d.directiveId).slice(0, 24);
    return `<text x="0" y="${y + 12}">${escapeHtml(label)}</text>` +
      `<rect x="${left}" y="${y}" width="${full}" height="14" fill="var(--line)"></rect>` +
      `<rect x="${left}" y="${y}" width="${share * full}" height="14" fill="var(--good)"><title>${t("progress")}: ${num(d.done)}/${num(d.total)}</title></rect>` +
      `<text x="${left + full + 4}" y="${y + 12}">${num(d.done)}/${num(d.total)}</text>`;
  }).join("");
  return `<svg role="img" viewBox="0 0 ${width} ${height}" width="100%">${bars}</svg>`;
}

const COLUMNS = [
  ["received", (r) => count(r.received)],
  ["resolved", (r) => count(r.resolved)],
  ["onTime", (r) => pct(r.onTimeRatio)],
  ["overdue", (r) => count(r.overdue)],
  ["currentlyOverdue", (r) => count(r.currentlyOverdue)],
  ["apologyCoverage", (r) => pct(r.apologyCoverage)],
  ["online3", (r) => pct(r.onlineLevel3Share)],
  ["online4", (r) => pct(r.onlineLevel4Share)],
];

function cells(row) {
  return COLUMNS.map(([key, format]) => `<td data-kpi="${key}">${format(row)}</td>`).join("");
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function render(data) {
  const rows = data.rows || [];
  const body = document.querySelector("#kpis tbody");
  body.innerHTML = rows.length
    ? rows.map((r) => `<tr data-agency="${escapeHtml(r.agencyCode)}" data-period="${escapeHtml(r.period)}"><td>${escapeHtml(r.agencyCode)}</td><td>${escapeHtml(r.period)}</td>${cells(r)}</tr>`).join("")
    : `<tr><td colspan="10">${t("empty")}</td></tr>`;
  const total = data.total || {};
  document.querySelector("#kpis tfoot").innerHTML = `<tr data-total="true"><td colspan="2">${t("total")}</td>${cells(total)}</tr>`;
  renderSummary(total);
  const perAgency = byAgency(rows);
  document.getElementById("chart-volume").innerHTML = volumeChart(perAgency);
  document.getElementById("chart-ontime").innerHTML = onTimeChart(perAgency);
}

function renderSummary(total) {
  const cards = [
    ["received", count(total.received)], ["resolved", count(total.resolved)], ["onTime", pct(total.onTimeRatio)],
    ["currentlyOverdue", count(total.currentlyOverdue)], ["apologyCoverage", pct(total.apologyCoverage)],
    ["online4", pct(total.onlineLevel4Share)],
  ];
  document.getElementById("summary").innerHTML = cards
    .map(([key, value]) => `<div class="card" data-card="${key}"><div class="label">${t(key)}</div><div class="value">${value}</div></div>`)
    .join("");
}

function byAgency(rows) {
  const agencies = new Map();
  for (const r of rows) {
    const a = agencies.get(r.agencyCode) || { agency: r.agencyCode, received: 0, resolved: 0, onTime: 0 };
    a.received += num(r.received);
    a.resolved += num(r.resolved);
    a.onTime += num(r.resolvedOnTime);
    agencies.set(r.agencyCode, a);
  }
  return [...agencies.values()].sort((x, y) => y.received - x.received).slice(0, 15);
}

function volumeChart(agencies) {
  if (!agencies.length) return `<p>${t("empty")}</p>`;
  const width = 520, rowH = 26, left = 90, height = agencies.length * rowH + 30;
  const max = Math.max(1, ...agencies.map((a) => Math.max(a.received, a.resolved)));
  const scale = (v) => (v / max) * (width - left - 50);
  const bars = agencies.map((a, i) => {
    const y = 8 + i * rowH;
    return `<text x="0" y="${y + 14}">${escapeHtml(a.agency)}</text>` +
      `<rect x="${left}" y="${y}" width="${scale(a.received)}" height="10" fill="var(--bar)"><title>${t("received")}: ${a.received}</title></rect>` +
      `<rect x="${left}" y="${y + 11}" width="${scale(a.resolved)}" height="10" fill="var(--bar2)"><title>${t("resolved")}: ${a.resolved}</title></rect>` +
      `<text x="${left + scale(a.received) + 4}" y="${y + 9}">${a.received}</text>` +
      `<text x="${left + scale(a.resolved) + 4}" y="${y + 20}">${a.resolved}</text>`;
  }).join("");
  const legend = `<div class="legend"><i style="background:var(--bar)"></i>${t("received")}<i style="background:var(--bar2)"></i>${t("resolved")}</div>`;
  return `<svg role="img" viewBox="0 0 ${width} ${height}" width="100%">${bars}</svg>${legend}`;
}

function onTimeChart(agencies) {
  const resolved = agencies.filter((a) => a.resolved > 0);
  if (!resolved.length) return `<p>${t("empty")}</p>`;
  const width = 520, rowH = 20, left = 90, height = resolved.length * rowH + 10;
  const bars = resolved.map((a, i) => {
    const share = a.onTime / a.resolved;
    const y = 5 + i * rowH;
    const w = share * (width - left - 60);
    const color = share >= 0.95 ? "var(--good)" : "var(--accent)";
    return `<text x="0" y="${y + 12}">${escapeHtml(a.agency)}</text>` +
      `<rect x="${left}" y="${y}" width="${w}" height="14" fill="${color}"></rect>` +
      `<text x="${left + w + 4}" y="${y + 12}">${(share * 100).toFixed(1)}</text>`;
  }).join("");
  return `<svg role="img" viewBox="0 0 ${width} ${height}" width="100%">${bars}</svg>`;
}

document.querySelectorAll("[data-lang]").forEach((b) => b.addEventListener("click", () => {
  lang = b.dataset.lang;
  localStorage.setItem("citydata.lang", lang);
  applyLanguage();
}));
document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
const initial = new URLSearchParams(location.search);
for (const name of ["agency", "from", "to", "period"]) {
  if (initial.get(name)) document.querySelector(`[name="${name}"]`).value = initial.get(name);
}
if (initial.get("lang") && TEXT[initial.get("lang")]) lang = initial.get("lang");
applyLanguage();
load();
setInterval(load, 10000);
