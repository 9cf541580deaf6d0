// Herald's inbox and preference center: one small module over the public API, no framework.
//
// Login: the link from `herald tokens issue <user>` carries the token in the fragment (#token=...), which never
// reaches a server log; it is kept in localStorage and sent as the Bearer (and as ?token= on /v1/ws).
// Inbox: live frames over /v1/ws, each acked at once; history from GET /v1/notifications (newest first, cursor
// paging). The audit list holds finished notifications only, so a live frame shows first and its outcome merges
// in by notification_id. After a reconnect the page re-reads the list since the newest outcome it had.
// Questions: each action, plus Seen (ack) and Snooze, is a button (an action with input "text" gets a text box too,
// whose words go as `text`); a click sends {"type": "respond"} over the socket
// (POST /v1/notifications/{id}/respond when it is down) and the `response` reply, taken or refused with its reason,
// shows on the item. While a question is open the page re-reads GET /v1/notifications/{id}, so an answer given on
// another channel (an email link, SMS, the API) shows here too; answered or past respond_by, the buttons disable.

const TOKEN_KEY = "herald.token";
const PRIORITIES = ["low", "medium", "high", "critical"];
const CHANNELS = ["push", "email", "sms", "webhook", "chat", "slack", "telegram"];
let savedChatUrls = [];
const PRIORITY_LABELS = { low: "Low", medium: "Medium", high: "High", critical: "Critical" };
const CHANNEL_LABELS = {
  push: "Push", email: "Email", sms: "SMS", webhook: "Webhook", chat: "Chat", slack: "Slack", telegram: "Telegram",
};
const STATUS_LABELS = {
  pending: "Sending…",
  delivered: "Delivered",
  partially_delivered: "Partly delivered",
  confirmed: "Confirmed",
  unconfirmed: "Unconfirmed",
  suppressed_duplicate: "Duplicate, not sent",
  no_channel: "No channel allowed",
  digested: "In your digest",
  failed: "Failed",
  answered: "Answered",
  expired: "Expired",
  silenced: "Silenced, not sent",
  resolved: "Resolved",
  throttled: "Over your hourly limit: in your digest or the hour's summary",
  grouped: "Sent together with the others of its group",
};
// Where an answer came from (Answer.channel); `push` is this page or a browser notification.
const ANSWER_CHANNEL_LABELS = {
  push: "Push", email: "Email link", sms: "SMS", webhook: "Webhook", slack: "Slack", telegram: "Telegram", api: "the API",
};
// The built-in answers every question takes besides its own actions (herald/models/answers.py).
const BUILTIN_ACTIONS = [
  { id: "ack", label: "Seen" },
  { id: "snooze", label: "Snooze 1 h" },
];
// While a question is open the page re-reads it this often: an answer given on another channel shows here too.
const QUESTION_REFRESH_MS = 2000;
const PAGE_SIZE = 20;
const NOT_ACCEPTED = "This token was not accepted. Open a new login link from `herald tokens issue`, or paste a token.";
const SYNC_EVERY_MS = 15000;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 15000;

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  me: null,
  timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
  items: new Map(), // notification_id -> item
  newestCompletedAt: null, // the sync watermark: newest completed_at seen in the audit list
  olderCursor: null,
  read: { read_up_to: null, read_ids: {} },
  socket: null,
  telegramChatId: null, // the bound Telegram chat, sent back unchanged with the contact
  reconnectAttempts: 0,
  reconnectTimer: null,
  syncTimer: null,
  pollTimer: null,
  questionTimer: null,
  answering: new Map(), // notification_id -> {action_id, error}: an answer sent and not yet confirmed
  drafts: new Map(), // `${notification_id}/${action_id}` -> the words typed for an action with input "text"
  stopped: true,
  preferences: null,
};

// --- API ---------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
    this.details = error.details || (error.message ? [{ field: error.field, message: error.message }] : []);
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 401 && state.me) signOut(NOT_ACCEPTED);
    throw new ApiError(response.status, data);
  }
  return data;
}

const userPath = (suffix) => `/v1/users/${encodeURIComponent(state.me.user_id)}${suffix}`;

// --- login and views ----------------------------------------------------------------------------------

function tokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (!token) return null;
  history.replaceState(null, "", `${location.pathname}${location.search}#inbox`); // out of the address bar
  return token;
}

async function signIn(token) {
  stopLive();
  state.token = token;
  let me;
  try {
    me = await api("GET", "/v1/me");
  } catch (err) {
    state.token = null;
    throw err instanceof ApiError && err.status === 401 ? new Error(NOT_ACCEPTED) : err;
  }
  if (me.kind !== "user") {
    state.token = null;
    throw new Error("This is not a user token: use the one `herald tokens issue <user>` printed.");
  }
  localStorage.setItem(TOKEN_KEY, token);
  state.me = me;
  $("whoami").textContent = me.user_id;
  $("nav").hidden = false;
  $("session").hidden = false;
  state.stopped = false;
  await loadPreferences().catch(() => {});
  showView(currentView());
  await Promise.all([loadReadMarks(), loadFirstPage()]).catch((err) => showInboxError(err));
  connect();
  state.pollTimer = setInterval(() => sync(), SYNC_EVERY_MS);
  state.questionTimer = setInterval(() => refreshOpenQuestions(), QUESTION_REFRESH_MS);
}

// Close the socket and stop every timer: before signing out, and before signing in again with another link.
function stopLive() {
  state.stopped = true;
  clearTimeout(state.reconnectTimer);
  clearTimeout(state.syncTimer);
  clearInterval(state.pollTimer);
  clearInterval(state.questionTimer);
  state.answering.clear();
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close(1000, "signed out");
  state.reconnectAttempts = 0;
  state.items.clear();
  state.newestCompletedAt = null;
  state.olderCursor = null;
}

function signOut(message) {
  localStorage.removeItem(TOKEN_KEY);
  stopLive();
  state.token = null;
  state.me = null;
  renderInbox();
  $("nav").hidden = true;
  $("session").hidden = true;
  $("login-error").textContent = message || "";
  showView("login");
}

function currentView() {
  const view = location.hash.replace("#", "");
  return view === "preferences" ? "preferences" : "inbox";
}

function showView(view, focus = false) {
  if (!state.me) view = "login";
  for (const name of ["login", "inbox", "preferences"]) $(`${name}-view`).hidden = name !== view;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = view === "preferences" ? "Preferences · Herald" : "Herald";
  updateUnreadCount();
  if (focus) $(`${view}-heading`).focus();
}

// --- time and labels ------------------------------------------------------------------------------------

function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
  try {
    return new Intl.DateTimeFormat(undefined, { ...options, timeZone: state.timeZone }).format(date);
  } catch {
    return new Intl.DateTimeFormat(undefined, { ...options, timeZone: "UTC" }).format(date);
  }
}

function effectiveTimeZone(preferences) {
  return (preferences && preferences.time_zone) || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

// --- inbox state --------------------------------------------------------------------------------------

function upsertFromFrame(frame) {
  const existing = state.items.get(frame.notification_id) || {};
  state.items.set(frame.notification_id, {
    status: "pending",
    channels: {},
    ...existing,
    notification_id: frame.notification_id,
    agent_id: frame.agent_id,
    priority: frame.priority,
    title: frame.title,
    body: frame.body || "",
    created_at: frame.created_at,
    actions: frame.actions || existing.actions || [],
    respond_by: frame.respond_by ?? existing.respond_by ?? null,
    live: true,
  });
}

function upsertFromSummary(summary) {
  const existing = state.items.get(summary.notification_id) || {};
  state.items.set(summary.notification_id, {
    ...existing,
    notification_id: summary.notification_id,
    agent_id: summary.agent_id,
    priority: summary.priority,
    status: summary.status,
    channels: summary.channels || {},
    completed_at: summary.completed_at,
    title: summary.title ?? existing.title ?? null,
    body: summary.body ?? existing.body ?? "",
    created_at: summary.created_at || existing.created_at || summary.completed_at,
    group_delivery: summary.group_delivery ?? existing.group_delivery ?? null,
    ...questionFields(summary, existing),
  });
  if (!state.newestCompletedAt || summary.completed_at > state.newestCompletedAt) {
    state.newestCompletedAt = summary.completed_at;
  }
}

// What a notification view or summary says about a question: its actions, deadline, answer and ack.
function questionFields(view, existing) {
  return {
    actions: view.actions && view.actions.length ? view.actions : existing.actions || [],
    respond_by: view.respond_by ?? existing.respond_by ?? null,
    answer: view.answer ?? existing.answer ?? null,
    acknowledged: view.acknowledged ?? existing.acknowledged ?? null,
    // A question to a group: what the group decided ("Approved by ada and grace"), answered by this person or not.
    decision: view.decision ?? existing.decision ?? null,
  };
}

// A notification re-read with GET /v1/notifications/{id}: the live state of a question still waiting.
function upsertFromView(view) {
  const existing = state.items.get(view.notification_id);
  if (!existing) return;
  state.items.set(view.notification_id, {
    ...existing,
    status: view.status,
    channels: view.channels || existing.channels,
    ...questionFields(view, existing),
  });
}

const isQuestion = (item) => Boolean(item.actions && item.actions.length);

// Whether a question still takes answers: not answered, not finished, its deadline not passed (pure).
function questionOpen(item, now = Date.now()) {
  if (!isQuestion(item) || item.answer) return false;
  if (item.status !== "pending") return false;
  return !(item.respond_by && new Date(item.respond_by).getTime() <= now);
}

// Re-read every open question, so an answer given elsewhere (an email link, SMS, the API) reaches the page,
// and re-render, so a deadline that passed disables the buttons.
async function refreshOpenQuestions() {
  if (state.stopped) return;
  const open = [...state.items.values()].filter((item) => isQuestion(item) && item.status === "pending" && !item.answer);
  if (!open.length) return;
  await Promise.all(
    open.map(async (item) => {
      try {
        upsertFromView(await api("GET", `/v1/notifications/${encodeURIComponent(item.notification_id)}`));
      } catch {
        // offline or not started yet: the next round asks again
      }
    }),
  );
  renderInbox();
}

// --- answering ------------------------------------------------------------------------------------------

function actionLabel(item, actionId) {
  const action = [...(item.actions || []), ...BUILTIN_ACTIONS].find((a) => a.id === actionId);
  return action ? action.label : actionId;
}

// An action with input "text" is answered in the person's words (at most 2000 characters, as the server bounds them).
const ANSWER_TEXT_MAX_CHARS = 2000;
const takesText = (action) => action.input === "text";
const draftKey = (id, actionId) => `${id}/${actionId}`;

// Send the answer over the live socket when it is open (the reply is a `response` frame), else over HTTP.
// `text`: the words typed for an action with input "text" (the server refuses it for any other).
async function respond(item, actionId, text) {
  const id = item.notification_id;
  state.answering.set(id, { action_id: actionId, error: null });
  renderInbox();
  const body = text === undefined ? { action_id: actionId } : { action_id: actionId, text };
  const socket = state.socket;
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "respond", notification_id: id, ...body }));
    return;
  }
  try {
    const answer = await api("POST", `/v1/notifications/${encodeURIComponent(id)}/respond`, body);
    answerTaken(id, actionId, answer);
  } catch (err) {
    answerRefused(id, err.message);
  }
}

// The server's reply to a `respond` frame: {"type": "response", notification_id, action_id, accepted, answer | code, reason}.
function onResponseFrame(message) {
  if (!message.notification_id) return;
  if (message.accepted) answerTaken(message.notification_id, message.action_id, message.answer);
  else answerRefused(message.notification_id, message.reason || message.code || "the answer was not taken");
}

function answerTaken(id, actionId, answer) {
  state.answering.delete(id);
  for (const key of [...state.drafts.keys()]) if (key.startsWith(`${id}/`)) state.drafts.delete(key);
  const item = state.items.get(id);
  if (item && answer) {
    const builtin = BUILTIN_ACTIONS.some((a) => a.id === actionId);
    if (builtin) item.acknowledged = item.acknowledged || answer;
    else item.answer = answer;
    announce(`Answered ${actionLabel(item, actionId)}: ${item.title || item.agent_id}`);
  }
  renderInbox();
  refreshOpenQuestions();
  syncSoon();
}

function answerRefused(id, reason) {
  state.answering.set(id, { action_id: null, error: reason });
  renderInbox();
  refreshOpenQuestions(); // a refusal (already answered, too late) usually means the page is behind
}

function answeredText(item, answer, verb) {
  const who = answer.user_id === (state.me && state.me.user_id) ? "you" : answer.user_id;
  const where = ANSWER_CHANNEL_LABELS[answer.channel] || answer.channel;
  return `${verb} by ${who} via ${where}, ${formatTime(answer.answered_at)}`;
}

function renderQuestion(item, titleId) {
  const open = questionOpen(item);
  const pending = state.answering.get(item.notification_id);
  const sending = Boolean(pending && pending.action_id);
  const acked = Boolean(item.acknowledged);
  const group = element("div", { className: "answer-buttons", role: "group", "aria-label": "Answer", "aria-describedby": titleId });
  const boxes = [];
  for (const action of item.actions) {
    const button = element("button", {
      type: "button",
      className: "answer primary",
      "data-action": action.id,
      text: action.label,
      disabled: !open || sending,
    });
    if (takesText(action)) {
      // A text box beside its button: the button sends what was typed (kept across re-renders as a draft).
      const key = draftKey(item.notification_id, action.id);
      const box = element("textarea", {
        className: "answer-text",
        "data-draft": key,
        "data-action": action.id,
        maxlength: ANSWER_TEXT_MAX_CHARS,
        rows: 3,
        "aria-label": `${action.label}: your answer`,
        placeholder: `${action.label}…`,
        disabled: !open || sending,
      });
      box.value = state.drafts.get(key) || "";
      box.addEventListener("input", () => state.drafts.set(key, box.value));
      button.addEventListener("click", () => respond(item, action.id, box.value));
      boxes.push(box);
    } else {
      button.addEventListener("click", () => respond(item, action.id));
    }
    group.append(button);
  }
  // An escalation's step offers its ack as "Acknowledge" among its own actions: no second button for it.
  for (const action of BUILTIN_ACTIONS.filter((b) => !(item.actions || []).some((a) => a.id === b.id))) {
    const button = element("button", {
      type: "button",
      className: "answer secondary",
      "data-action": action.id,
      text: action.label,
      disabled: !open || sending || acked,
    });
    button.addEventListener("click", () => respond(item, action.id));
    group.append(button);
  }
  const lines = [];
  if (item.answer) {
    lines.push(element("p", { className: "answered", text: answeredText(item, item.answer, `“${actionLabel(item, item.answer.action_id)}”`) }));
    if (item.answer.text) lines.push(element("p", { className: "answer-words", text: item.answer.text }));
  } else if (item.decision) {
    lines.push(element("p", { className: "decided", text: `The group decided: ${item.decision.text}` }));
  } else if (!open) {
    const when = item.respond_by ? `, ${formatTime(item.respond_by)}` : "";
    lines.push(element("p", { className: "expired", text: `Expired: no longer takes answers${when}` }));
  } else if (item.respond_by) {
    lines.push(element("p", { className: "deadline", text: `Answer by ${formatTime(item.respond_by)}` }));
  }
  if (acked) {
    lines.push(element("p", { className: "acknowledged", text: answeredText(item, item.acknowledged, actionLabel(item, item.acknowledged.action_id)) }));
  }
  if (sending) lines.push(element("p", { className: "sending", text: `Sending “${actionLabel(item, pending.action_id)}”…` }));
  if (pending && pending.error) lines.push(element("p", { className: "answer-error", role: "alert", text: `Not taken: ${pending.error}` }));
  return element("div", { className: "question" }, ...(item.answer ? [] : boxes), group, ...lines);
}

function isRead(item) {
  if (state.read.read_ids && item.notification_id in state.read.read_ids) return true;
  const upTo = state.read.read_up_to;
  return Boolean(upTo && item.created_at && new Date(item.created_at) <= new Date(upTo));
}

function sortedItems() {
  const at = (item) => new Date(item.created_at || item.completed_at || 0).getTime();
  return [...state.items.values()].sort((a, b) => at(b) - at(a) || (a.notification_id < b.notification_id ? 1 : -1));
}

async function loadReadMarks() {
  state.read = await api("GET", userPath("/notifications/read"));
  renderInbox();
}

async function loadFirstPage() {
  const page = await api("GET", `/v1/notifications?limit=${PAGE_SIZE}`);
  for (const summary of page.items) upsertFromSummary(summary);
  state.olderCursor = page.next_cursor;
  hideInboxError();
  renderInbox();
}

async function loadOlder() {
  if (!state.olderCursor) return;
  const button = $("load-older");
  button.disabled = true;
  try {
    const page = await api("GET", `/v1/notifications?limit=${PAGE_SIZE}&cursor=${encodeURIComponent(state.olderCursor)}`);
    for (const summary of page.items) upsertFromSummary(summary);
    state.olderCursor = page.next_cursor;
    renderInbox();
    announce(`${page.items.length} older notifications loaded`);
  } catch (err) {
    showInboxError(err);
  } finally {
    button.disabled = false;
  }
}

// Re-read the audit list since the newest outcome already seen: what finished while the socket was down, and
// the outcomes of live frames. Every page of it, so nothing between two syncs is skipped.
async function sync() {
  if (state.stopped) return;
  let path = `/v1/notifications?limit=100`;
  if (state.newestCompletedAt) path += `&since=${encodeURIComponent(state.newestCompletedAt)}`;
  try {
    let cursor = null;
    for (let pages = 0; pages < 20; pages += 1) {
      const page = await api("GET", cursor ? `${path}&cursor=${encodeURIComponent(cursor)}` : path);
      for (const summary of page.items) upsertFromSummary(summary);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    hideInboxError();
    renderInbox();
  } catch (err) {
    if (!(err instanceof ApiError)) return; // offline: the reconnect will sync again
    showInboxError(err);
  }
}

function syncSoon(delay = 1500) {
  clearTimeout(state.syncTimer);
  state.syncTimer = setTimeout(() => sync(), delay);
}

async function markRead(ids) {
  try {
    state.read = await api("POST", userPath("/notifications/read"), { notification_ids: ids });
    renderInbox();
  } catch (err) {
    showInboxError(err);
  }
}

async function markAllRead() {
  const newest = sortedItems()[0];
  const now = new Date().toISOString();
  const upTo = newest && newest.created_at && newest.created_at > now ? newest.created_at : now;
  try {
    state.read = await api("POST", userPath("/notifications/read"), { up_to: upTo });
    renderInbox();
    announce("All notifications marked read");
  } catch (err) {
    showInboxError(err);
  }
}

// --- inbox rendering ----------------------------------------------------------------------------------

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function channelSummary(item) {
  const delivered = Object.entries(item.channels || {})
    .filter(([, result]) => result.status === "delivered")
    .map(([channel]) => CHANNEL_LABELS[channel] || channel);
  return delivered.length ? ` via ${delivered.join(", ")}` : "";
}

function renderItem(item) {
  const read = isRead(item);
  const titleId = `title-${item.notification_id}`;
  let status = STATUS_LABELS[item.status] || item.status;
  if (isQuestion(item) && item.answer) status = STATUS_LABELS.answered;
  else if (isQuestion(item) && questionOpen(item)) status = "Waiting for your answer";
  else if (item.status === "grouped" && !item.group_delivery) status = "Grouped: waiting to go with the others";
  else if (item.status === "grouped") status = `${status} (${item.group_delivery.size} in one message)`;
  const title = item.title || `Notification from ${item.agent_id}`;
  const li = element("li", {
    className: `item ${read ? "read" : "unread"}`,
    "data-id": item.notification_id,
    "data-priority": item.priority,
    "data-status": item.status,
  });
  const markButton = element("button", {
    type: "button",
    className: "mark-read link-button",
    text: read ? "Read" : "Mark read",
    disabled: read,
    "aria-describedby": titleId,
  });
  markButton.addEventListener("click", () => markRead([item.notification_id]));
  li.append(
    element(
      "article",
      { "aria-labelledby": titleId },
      element(
        "div",
        { className: "meta" },
        element("span", { className: `priority priority-${item.priority}`, text: PRIORITY_LABELS[item.priority] || item.priority }),
        element("span", { className: "agent", text: item.agent_id }),
        element("time", { datetime: item.created_at, text: formatTime(item.created_at) }),
      ),
      element(
        "h2",
        { id: titleId, className: "title", tabindex: "-1" },
        read ? null : element("span", { className: "visually-hidden", text: "Unread: " }),
        document.createTextNode(title),
      ),
      item.body ? element("p", { className: "body", text: item.body }) : null,
      isQuestion(item) ? renderQuestion(item, titleId) : null,
      element(
        "div",
        { className: "foot" },
        element("span", { className: `status status-${item.status}`, text: `${status}${isQuestion(item) && channelSummary(item) ? ` (sent${channelSummary(item)})` : channelSummary(item)}` }),
        markButton,
      ),
    ),
  );
  return li;
}

function renderInbox() {
  const list = $("inbox-list");
  const items = sortedItems();
  const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest("li.item")?.dataset.id;
  // Someone typing an answer keeps the caret where it was when the inbox re-renders around them.
  const typing = document.activeElement?.dataset?.draft;
  const caret = typing ? [document.activeElement.selectionStart, document.activeElement.selectionEnd] : null;
  list.replaceChildren(...items.map(renderItem));
  const box = typing && list.querySelector(`textarea[data-draft="${CSS.escape(typing)}"]:not([disabled])`);
  if (box) {
    box.focus();
    box.setSelectionRange(...caret);
  } else if (focusedId) {
    const item = list.querySelector(`li[data-id="${CSS.escape(focusedId)}"]`);
    const button = item?.querySelector("button:not([disabled])");
    (button || item?.querySelector("h2"))?.focus();
  }
  $("inbox-empty").hidden = items.length > 0 || !state.me;
  $("load-older").hidden = !state.olderCursor;
  $("mark-all-read").disabled = !items.some((item) => !isRead(item));
  updateUnreadCount();
}

function updateUnreadCount() {
  const unread = [...state.items.values()].filter((item) => !isRead(item)).length;
  const badge = $("unread-count");
  badge.hidden = unread === 0;
  badge.replaceChildren(document.createTextNode(`${unread}`), element("span", { className: "visually-hidden", text: " unread" }));
  const base = currentView() === "preferences" && state.me ? "Preferences · Herald" : "Herald";
  document.title = unread ? `(${unread}) ${base}` : base;
}

function announce(text) {
  const announcer = $("announcer");
  announcer.textContent = "";
  setTimeout(() => (announcer.textContent = text), 50);
}

function showInboxError(err, prefix = "Could not load notifications") {
  const banner = $("inbox-error");
  banner.textContent = `${prefix}: ${err.message}`;
  banner.hidden = false;
}

function hideInboxError() {
  $("inbox-error").hidden = true;
}

// --- the live connection ------------------------------------------------------------------------------

function setConnection(kind, text) {
  const node = $("connection");
  node.dataset.state = kind;
  node.textContent = text;
}

function connect() {
  if (state.stopped) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/v1/ws?token=${encodeURIComponent(state.token)}`);
  state.socket = socket;
  setConnection("connecting", "Connecting…");
  socket.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.type === "ready") {
      state.reconnectAttempts = 0;
      setConnection("live", "Live");
      sync(); // catch up on what finished while the socket was down (or since the first page loaded)
    } else if (message.type === "notification" && message.notification_id) {
      upsertFromFrame(message);
      // Ack at once: the pipeline counts push as delivered only when a client confirms it.
      socket.send(JSON.stringify({ type: "ack", notification_id: message.notification_id }));
      renderInbox();
      announce(`${PRIORITY_LABELS[message.priority] || ""} notification from ${message.agent_id}: ${message.title}`);
      syncSoon();
    } else if (message.type === "resolved" && message.notification_id) {
      // Its agent resolved it: the item says so (and a question's buttons close); the list's outcome follows.
      socket.send(JSON.stringify({ type: "ack", notification_id: message.notification_id }));
      const item = state.items.get(message.notification_id);
      if (item) {
        item.status = "resolved";
        renderInbox();
      }
      syncSoon();
    } else if (message.type === "response") {
      onResponseFrame(message);
    } else if (message.type === "error") {
      showInboxError(new Error(message.message || "no reason given"), "The server refused a message");
    }
  });
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    for (const [id, pending] of state.answering) {
      if (pending.action_id) state.answering.set(id, { action_id: null, error: "the connection dropped before the server replied; try again" });
    }
    if (state.stopped) return;
    if (event.code === 1008) {
      signOut("The server refused this token. Open a new login link.");
      return;
    }
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  const attempt = state.reconnectAttempts;
  state.reconnectAttempts += 1;
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** attempt);
  const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2); // jitter: not every tab at once
  setConnection("offline", `Reconnecting in ${Math.max(1, Math.round(delay / 1000))} s…`);
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(connect, delay);
}

// --- preferences --------------------------------------------------------------------------------------

function priorityOptions(select, { inherit = null, any = null } = {}) {
  const options = [];
  if (inherit) options.push(element("option", { value: "", text: inherit }));
  if (any) options.push(element("option", { value: "", text: any }));
  for (const priority of PRIORITIES) options.push(element("option", { value: priority, text: `${PRIORITY_LABELS[priority]} and up` }));
  select.replaceChildren(...options);
}

function channelSetting(value) {
  if (value === true || value === false) return { enabled: value, min_priority: null };
  if (value && typeof value === "object") return { enabled: value.enabled ?? null, min_priority: value.min_priority ?? null };
  return { enabled: null, min_priority: null };
}

function channelValue(enabled, minPriority) {
  if (minPriority) return enabled === null ? { min_priority: minPriority } : { enabled, min_priority: minPriority };
  return enabled === null ? undefined : enabled;
}

function buildChannelRows() {
  const rows = $("channel-rows");
  rows.replaceChildren(
    ...CHANNELS.map((channel) => {
      const onId = `default-${channel}-on`;
      const minId = `default-${channel}-min`;
      const select = element("select", { id: minId, "data-field": `default.${channel}.min_priority` });
      priorityOptions(select, { any: "Any priority" });
      const testButton = element("button", { type: "button", className: "test-button", "data-channel": channel, text: "Send test" });
      testButton.addEventListener("click", () => sendTest(channel, testButton));
      return element(
        "div",
        { className: "channel-row", "data-channel": channel, role: "group", "aria-label": CHANNEL_LABELS[channel] },
        element(
          "div",
          { className: "field checkbox" },
          element("input", { id: onId, type: "checkbox", "data-field": `default.${channel}` }),
          element("label", { for: onId, text: CHANNEL_LABELS[channel] }),
        ),
        element(
          "div",
          { className: "field" },
          element("label", { for: minId, text: `${CHANNEL_LABELS[channel]}: lowest priority` }),
          select,
        ),
        element(
          "div",
          { className: "test" },
          testButton,
          element("span", { className: "status test-status", id: `test-status-${channel}`, role: "status" }),
        ),
      );
    }),
  );
}

function agentEntry(agentId, switches = {}) {
  const slug = agentId.replace(/[^A-Za-z0-9_-]/g, "_");
  const fieldset = element("fieldset", { className: "agent-entry", "data-agent": agentId });
  fieldset.append(element("legend", { text: agentId }));
  const grid = element("div", { className: "agent-grid" });
  for (const channel of CHANNELS) {
    const setting = channelSetting(switches[channel]);
    const onId = `agent-${slug}-${channel}-on`;
    const minId = `agent-${slug}-${channel}-min`;
    const on = element("select", { id: onId, "data-channel": channel, "data-role": "enabled", "data-field": `agents.${agentId}.${channel}` });
    on.replaceChildren(
      element("option", { value: "", text: "Inherit" }),
      element("option", { value: "on", text: "On" }),
      element("option", { value: "off", text: "Off" }),
    );
    on.value = setting.enabled === null ? "" : setting.enabled ? "on" : "off";
    const min = element("select", { id: minId, "data-channel": channel, "data-role": "min", "data-field": `agents.${agentId}.${channel}.min_priority` });
    priorityOptions(min, { inherit: "Inherit" });
    min.value = setting.min_priority || "";
    grid.append(
      element("div", { className: "field" }, element("label", { for: onId, text: CHANNEL_LABELS[channel] }), on),
      element("div", { className: "field" }, element("label", { for: minId, text: `${CHANNEL_LABELS[channel]}: lowest priority` }), min),
    );
  }
  const allId = `agent-${slug}-min`;
  const all = element("select", { id: allId, "data-role": "all-min", "data-field": `agents.${agentId}.min_priority` });
  priorityOptions(all, { inherit: "Inherit" });
  all.value = switches.min_priority || "";
  grid.append(element("div", { className: "field" }, element("label", { for: allId, text: "Lowest priority on any channel" }), all));
  const remove = element("button", { type: "button", className: "link-button remove-agent", text: `Remove ${agentId}` });
  remove.addEventListener("click", () => {
    fieldset.remove();
    $("new-agent-id").focus();
  });
  fieldset.append(grid, remove);
  return fieldset;
}

function fillPreferences(preferences) {
  state.preferences = preferences;
  const defaults = preferences.default || {};
  for (const channel of CHANNELS) {
    const setting = channelSetting(defaults[channel]);
    $(`default-${channel}-on`).checked = setting.enabled !== false;
    $(`default-${channel}-min`).value = setting.min_priority || "";
  }
  $("default-min-priority").value = defaults.min_priority || "";
  $("agent-entries").replaceChildren(...Object.entries(preferences.agents || {}).map(([id, switches]) => agentEntry(id, switches)));
  $("time-zone").value = preferences.time_zone || "";
  const quiet = preferences.quiet_hours;
  $("quiet-enabled").checked = Boolean(quiet);
  if (quiet) {
    const [from, to] = quiet.window.split("-");
    $("quiet-from").value = from;
    $("quiet-to").value = to;
    $("quiet-during").value = quiet.during || "hold";
  }
  const digest = preferences.digest || { cadence: "off" };
  $("digest-cadence").value = digest.cadence;
  $("digest-hour").value = String(digest.hour ?? 8);
  $("digest-priorities").value = digest.priorities || "low";
  updateDependentFields();
}

// max_per_hour (throttling) and notify_resolved have no control on this page yet: a save keeps what was saved over
// the API or the CLI, at each level (and max_per_hour on each channel), rather than dropping it.
function keepSaved(level, saved) {
  if (!saved) return level;
  if (saved.max_per_hour != null) level.max_per_hour = saved.max_per_hour;
  if (saved.notify_resolved != null) level.notify_resolved = saved.notify_resolved;
  for (const channel of CHANNELS) {
    const was = saved[channel];
    const limit = was && typeof was === "object" ? was.max_per_hour : null;
    if (limit == null) continue;
    const value = level[channel];
    if (value === undefined) level[channel] = { max_per_hour: limit };
    else if (typeof value === "boolean") level[channel] = { enabled: value, max_per_hour: limit };
    else level[channel] = { ...value, max_per_hour: limit };
  }
  return level;
}

function readPreferences() {
  const defaults = {};
  for (const channel of CHANNELS) {
    const value = channelValue($(`default-${channel}-on`).checked, $(`default-${channel}-min`).value || null);
    if (value !== undefined) defaults[channel] = value;
  }
  if ($("default-min-priority").value) defaults.min_priority = $("default-min-priority").value;
  const agents = {};
  for (const entry of $("agent-entries").querySelectorAll(".agent-entry")) {
    const switches = {};
    for (const channel of CHANNELS) {
      const on = entry.querySelector(`select[data-role="enabled"][data-channel="${channel}"]`).value;
      const min = entry.querySelector(`select[data-role="min"][data-channel="${channel}"]`).value;
      const value = channelValue(on === "" ? null : on === "on", min || null);
      if (value !== undefined) switches[channel] = value;
    }
    const all = entry.querySelector('select[data-role="all-min"]').value;
    if (all) switches.min_priority = all;
    agents[entry.dataset.agent] = keepSaved(switches, state.preferences?.agents?.[entry.dataset.agent]);
  }
  const preferences = { default: keepSaved(defaults, state.preferences?.default), agents };
  const zone = $("time-zone").value.trim();
  if (zone) preferences.time_zone = zone;
  if ($("quiet-enabled").checked) {
    preferences.quiet_hours = { window: `${$("quiet-from").value}-${$("quiet-to").value}`, during: $("quiet-during").value };
  }
  const cadence = $("digest-cadence").value;
  if (cadence !== "off") {
    preferences.digest = { cadence, priorities: $("digest-priorities").value };
    if (cadence === "daily") preferences.digest.hour = Number($("digest-hour").value);
  }
  return preferences;
}

function updateDependentFields() {
  const quiet = $("quiet-enabled").checked;
  for (const id of ["quiet-from", "quiet-to", "quiet-during"]) $(id).disabled = !quiet;
  const cadence = $("digest-cadence").value;
  $("digest-hour").disabled = cadence !== "daily";
  $("digest-priorities").disabled = cadence === "off";
}

async function loadPreferences() {
  const preferences = await api("GET", userPath("/preferences"));
  fillPreferences(preferences);
  state.timeZone = effectiveTimeZone(preferences);
  let contact = {};
  try {
    contact = await api("GET", userPath("/contact"));
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  $("contact-email").value = contact.email || "";
  $("contact-phone").value = contact.phone || "";
  $("contact-webhook").value = contact.webhook_url || "";
  // Chat URLs read back masked (`discord://…`); sent back as they are, each keeps the saved URL at its index.
  savedChatUrls = contact.chat_urls || [];
  $("contact-slack").value = contact.slack_user_id || "";
  // Bound by the bot (`herald telegram link`), not typed here: kept as it is when the form is saved.
  state.telegramChatId = contact.telegram_chat_id ?? null;
  const notes = [];
  if (state.telegramChatId !== null) notes.push("A Telegram chat is bound to you.");
  if (contact.phone_rejected) notes.push(`The SMS provider refused this number (${contact.phone_rejected}); saving clears the mark.`);
  if (contact.webhook_disabled) notes.push(`The webhook endpoint was disabled (${contact.webhook_disabled}); saving clears the mark.`);
  $("contact-notes").textContent = notes.join(" ");
  $("contact-notes").hidden = notes.length === 0;
  await refreshPushState();
}

// Show each of the API's 422 problems next to its field: aria-describedby points at the message, the field is
// marked invalid, and the first one gets focus. A field the form lacks gets the message at the form's foot.
function clearErrors(form) {
  for (const node of form.querySelectorAll(".field-error[data-generated]")) node.remove();
  for (const field of form.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
    const ids = (field.getAttribute("aria-describedby") || "").split(" ").filter((id) => id && !id.startsWith("error-"));
    if (ids.length) field.setAttribute("aria-describedby", ids.join(" "));
    else field.removeAttribute("aria-describedby");
  }
  form.querySelector(".form-error").textContent = "";
}

function fieldFor(form, path) {
  let parts = (path || "").split(".");
  while (parts.length) {
    const found = [...form.querySelectorAll("[data-field]")].find((node) => node.dataset.field === parts.join("."));
    if (found) return found;
    parts = parts.slice(0, -1);
  }
  return null;
}

function showErrors(form, err) {
  const details = err.details && err.details.length ? err.details : [{ field: err.field, message: err.message }];
  const leftover = [];
  let first = null;
  for (const detail of details) {
    const field = fieldFor(form, detail.field);
    if (!field) {
      leftover.push(detail.field ? `${detail.field}: ${detail.message}` : detail.message);
      continue;
    }
    const id = `error-${field.id}`;
    let message = document.getElementById(id);
    if (!message) {
      message = element("p", { id, className: "field-error", "data-generated": true });
      field.closest(".field").append(message);
    }
    message.textContent = message.textContent ? `${message.textContent} ${detail.message}` : detail.message;
    field.setAttribute("aria-invalid", "true");
    const ids = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (!ids.includes(id)) field.setAttribute("aria-describedby", [...ids, id].join(" "));
    first = first || field;
  }
  form.querySelector(".form-error").textContent = leftover.length
    ? leftover.join(" ")
    : `Not saved: ${details.length === 1 ? "one field needs" : `${details.length} fields need`} a change.`;
  (first || form.querySelector("button[type=submit]")).focus();
}

async function savePreferences(event) {
  event.preventDefault();
  const form = $("preferences-form");
  clearErrors(form);
  $("preferences-status").textContent = "Saving…";
  try {
    const saved = await api("PUT", userPath("/preferences"), readPreferences());
    fillPreferences(saved);
    state.timeZone = effectiveTimeZone(saved);
    renderInbox();
    $("preferences-status").textContent = "Preferences saved.";
  } catch (err) {
    $("preferences-status").textContent = "";
    if (err instanceof ApiError) showErrors(form, err);
    else form.querySelector(".form-error").textContent = `Not saved: ${err.message}`;
  }
}

async function saveContact(event) {
  event.preventDefault();
  const form = $("contact-form");
  clearErrors(form);
  $("contact-status").textContent = "Saving…";
  const contact = {};
  const fields = [["email", "contact-email"], ["phone", "contact-phone"], ["webhook_url", "contact-webhook"], ["slack_user_id", "contact-slack"]];
  for (const [key, id] of fields) {
    const value = $(id).value.trim();
    if (value) contact[key] = value;
  }
  if (state.telegramChatId !== null && state.telegramChatId !== undefined) contact.telegram_chat_id = state.telegramChatId;
  try {
    if (savedChatUrls.length) contact.chat_urls = savedChatUrls;
    await api("PUT", userPath("/contact"), contact);
    $("contact-notes").hidden = true;
    $("contact-status").textContent = "Contact saved.";
  } catch (err) {
    $("contact-status").textContent = "";
    if (err instanceof ApiError) showErrors(form, err);
    else form.querySelector(".form-error").textContent = `Not saved: ${err.message}`;
  }
}

function addAgent() {
  const input = $("new-agent-id");
  const agentId = input.value.trim();
  const error = $("new-agent-error");
  error.textContent = "";
  input.removeAttribute("aria-invalid");
  const exists = [...document.querySelectorAll(".agent-entry")].some((entry) => entry.dataset.agent === agentId);
  if (!/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/.test(agentId) || exists) {
    error.textContent = exists
      ? "That agent already has an entry."
      : "An agent id is 1-128 letters, digits and . _ : @ -, starting with a letter or digit.";
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  const entry = agentEntry(agentId);
  $("agent-entries").append(entry);
  input.value = "";
  entry.querySelector("select").focus();
}

// "Send me a test notification": an ordinary notification from agent `herald` on this channel only; the row
// shows its outcome once the pipeline finished it.
async function sendTest(channel, button) {
  const status = $(`test-status-${channel}`);
  button.disabled = true;
  status.textContent = "Sending…";
  try {
    const sent = await api("POST", userPath("/test-notification"), { channel });
    for (let i = 0; i < 60; i += 1) {
      const view = await api("GET", sent.status_url);
      if (view.status !== "pending") {
        const result = (view.channels || {})[channel];
        const detail = result && result.error ? `: ${result.error}` : "";
        status.textContent = `${STATUS_LABELS[view.status] || view.status}${channelSummary(view)}${detail}`;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    status.textContent = "Still sending; see the inbox for its outcome.";
  } catch (err) {
    status.textContent = `Not sent: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

// --- Web Push -----------------------------------------------------------------------------------------

function applicationServerKey(base64url) {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

async function currentSubscription() {
  if (!pushSupported()) return null;
  const registration = await navigator.serviceWorker.getRegistration("/");
  return registration ? registration.pushManager.getSubscription() : null;
}

async function refreshPushState() {
  const subscription = await currentSubscription().catch(() => null);
  $("enable-push").hidden = Boolean(subscription);
  $("disable-push").hidden = !subscription;
  if (subscription) $("push-status").textContent = "Browser notifications are on for this browser.";
}

async function enablePush() {
  const status = $("push-status");
  const button = $("enable-push");
  if (!pushSupported()) {
    status.textContent = "This browser does not support Web Push.";
    return;
  }
  button.disabled = true;
  try {
    let key;
    try {
      key = (await api("GET", "/v1/vapid-public-key")).public_key;
    } catch (err) {
      status.textContent =
        err instanceof ApiError && err.code === "vapid_not_configured"
          ? "This Herald server has no Web Push key yet (VAPID_PRIVATE_KEY; see `herald vapid generate`)."
          : `Could not get the server's push key: ${err.message}`;
      return;
    }
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      status.textContent = "Notifications are blocked for this site; allow them in the browser's site settings.";
      return;
    }
    status.textContent = "Registering…";
    const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    const subscription =
      (await registration.pushManager.getSubscription()) ||
      (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: applicationServerKey(key) }));
    await api("POST", userPath("/push-subscriptions"), subscription.toJSON());
    status.textContent = "Browser notifications are on for this browser.";
    await refreshPushState();
  } catch (err) {
    status.textContent = `Could not turn on browser notifications: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

async function disablePush() {
  const status = $("push-status");
  try {
    const subscription = await currentSubscription();
    if (subscription) {
      await api("DELETE", userPath("/push-subscriptions"), { endpoint: subscription.endpoint }).catch((err) => {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
      });
      await subscription.unsubscribe();
    }
    status.textContent = "Browser notifications are off for this browser.";
    await refreshPushState();
  } catch (err) {
    status.textContent = `Could not turn off browser notifications: ${err.message}`;
  }
}

// --- start ----------------------------------------------------------------------------------------------

function setUpForms() {
  priorityOptions($("default-min-priority"), { any: "Any priority" });
  buildChannelRows();
  $("digest-hour").replaceChildren(
    ...Array.from({ length: 24 }, (_, hour) => element("option", { value: String(hour), text: `${String(hour).padStart(2, "0")}:00` })),
  );
  if (Intl.supportedValuesOf) {
    $("time-zones").replaceChildren(...Intl.supportedValuesOf("timeZone").map((zone) => element("option", { value: zone })));
  }
  $("quiet-enabled").addEventListener("change", updateDependentFields);
  $("digest-cadence").addEventListener("change", updateDependentFields);
  $("preferences-form").addEventListener("submit", savePreferences);
  $("contact-form").addEventListener("submit", saveContact);
  $("add-agent").addEventListener("click", addAgent);
  $("new-agent-id").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      addAgent();
    }
  });
  $("enable-push").addEventListener("click", enablePush);
  $("disable-push").addEventListener("click", disablePush);
  $("mark-all-read").addEventListener("click", markAllRead);
  $("load-older").addEventListener("click", loadOlder);
  $("logout").addEventListener("click", () => signOut("Signed out."));
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("login-token");
    try {
      await signIn(input.value.trim());
      input.value = "";
    } catch (err) {
      $("login-error").textContent = err.message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
}

async function start() {
  setUpForms();
  window.addEventListener("hashchange", () => {
    const token = tokenFromFragment();
    if (token) signIn(token).catch((err) => signOut(err.message));
    else {
      showView(currentView(), true);
      if (state.me && currentView() === "inbox") sync();
    }
  });
  const token = tokenFromFragment() || localStorage.getItem(TOKEN_KEY);
  if (!token) {
    signOut();
    return;
  }
  try {
    await signIn(token);
  } catch (err) {
    signOut(err.message);
  }
}

start();
