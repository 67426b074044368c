// @ts-check
/**
 * The page: joins the room named by the address, renders members and
 * messages. All text from other people goes into the page with
 * `textContent`, never as HTML.
 * @module
 */

import { randomId, validateNick, validateRoomId } from './protocol.js';
import { ChatLog } from './chatlog.js';
import { colourOf } from './names.js';
import { copyField } from './clipboard.js';
import { byId, showStatus } from './dom.js';
import { wireComposer } from './composer.js';
import { Room } from './room.js';
import { isShown } from './history.js';
import { E2eError, base64urlEncode, makeSecret, parseSecret } from './e2e.js';
import { Store } from './store.js';
import { openVerify, showVerified } from './verify.js';
import { mentionMatcher } from './format.js';
import { wireMentions } from './complete.js';
import { Attention } from './attention.js';
import { wireShare } from './share.js';
import { registerServiceWorker } from './install.js';
import { keptHistory, wireExport, wireSearch } from './finder.js';
import { PrivateView } from './privateview.js';
import { Files } from './files.js';
import { FileCards, wireAttach } from './fileview.js';
import { Conversation } from './conversation.js';

const NICK_STORAGE_KEY = 'peerchat.nick';
const RELAY_STORAGE_KEY = 'peerchat.relayOnly';
/** The nickname this browser is in a room under, until it leaves: a reload comes straight back. */
const JOINED_STORAGE_PREFIX = 'peerchat.joined.';
/** The newest message of a room the reader had when they last left it. */
const SEEN_STORAGE_PREFIX = 'peerchat.seen.';
/** The link of the room last joined: where the installed app opens. */
const LAST_ROOM_KEY = 'peerchat.lastRoom';
const NARROW = '(max-width: 720px)';

const ui = {
  roomLink: /** @type {HTMLInputElement} */ (byId('room-link')),
  copyLink: /** @type {HTMLButtonElement} */ (byId('copy-link')),
  status: byId('server-status'),
  joinView: byId('join-view'),
  joinForm: /** @type {HTMLFormElement} */ (byId('join-form')),
  nick: /** @type {HTMLInputElement} */ (byId('nick')),
  joinError: byId('join-error'),
  joinButton: /** @type {HTMLButtonElement} */ (byId('join-button')),
  hideIp: /** @type {HTMLInputElement} */ (byId('hide-ip')),
  privacyBadge: byId('privacy-badge'),
  detailsButton: /** @type {HTMLButtonElement} */ (byId('details-button')),
  details: /** @type {HTMLDialogElement} */ (byId('details')),
  detailsBody: byId('details-body'),
  detailsClose: /** @type {HTMLButtonElement} */ (byId('details-close')),
  verify: {
    dialog: /** @type {HTMLDialogElement} */ (byId('verify')),
    title: byId('verify-title'),
    help: byId('verify-help'),
    number: byId('safety-number'),
    qr: byId('safety-qr'),
    state: byId('verify-state'),
    mark: /** @type {HTMLButtonElement} */ (byId('mark-verified')),
  },
  verifyClose: /** @type {HTMLButtonElement} */ (byId('verify-close')),
  badRoomView: byId('bad-room-view'),
  chatView: byId('chat-view'),
  membersPanel: /** @type {HTMLDetailsElement} */ (byId('members-panel')),
  members: byId('members'),
  memberCount: byId('member-count'),
  log: byId('log'),
  composer: /** @type {HTMLFormElement} */ (byId('composer')),
  message: /** @type {HTMLTextAreaElement} */ (byId('message')),
  composerNote: byId('composer-note'),
  typing: byId('typing'),
  clearHistory: /** @type {HTMLButtonElement} */ (byId('clear-history')),
  leaveRoom: /** @type {HTMLButtonElement} */ (byId('leave-room')),
  retry: byId('retry'),
  retryIn: byId('retry-in'),
  retryNow: /** @type {HTMLButtonElement} */ (byId('retry-now')),
  mentionList: byId('mention-list'),
  composerHint: byId('composer-hint'),
};

/**
 * localStorage, where the browser allows it.
 * @param {string} name
 * @param {string | null} value null to remove
 */
function remember(name, value) {
  try {
    if (value === null) localStorage.removeItem(name);
    else localStorage.setItem(name, value);
  } catch {
    // Storage may be disabled: then nothing is remembered.
  }
}

/** @param {string} name */
function recall(name) {
  try {
    return localStorage.getItem(name);
  } catch {
    return null;
  }
}

const log = new ChatLog(ui.log);
/** @param {string} text */
const notice = (text) => log.notice(text);
/** Our messages whose delivery may still change, by number. */
const undelivered = new Set();

/** @type {Attention | null} counts what arrives while the reader is away */
let attention = null;
/** @type {PrivateView | null} the private conversations */
let privateView = null;
/**
 * While a private conversation is in view: the room's newest message the
 * reader had seen (kept as the room's "seen" mark for a reload), and how
 * many from others came since.
 * @type {{seen: import('./chatlog.js').OrderKey | null, unread: number} | null}
 */
let roomAway = null;

/**
 * Shows the room's unread count on "← Room" while a private conversation
 * is in view.
 */
function renderRoomUnread() {
  const back = byId('private-back');
  const unread = roomAway?.unread ?? 0;
  if (unread === 0) {
    back.replaceChildren('← Room');
    return;
  }
  const count = document.createElement('span');
  count.className = 'unread';
  count.textContent = String(unread);
  const hidden = document.createElement('span');
  hidden.className = 'visually-hidden';
  hidden.textContent = ' unread';
  back.replaceChildren('← Room ', count, hidden);
}
/** @type {{files: Files, cards: FileCards} | null} file transfers and their cards */
let transfers = null;

/**
 * Puts the card of a file offer in its message, and fetches the file.
 * @param {ChatLog} chatLog
 * @param {string | null} party the other member of a private conversation
 * @param {import('./room.js').ChatMessage} msg
 */
function showFile(chatLog, party, msg) {
  if (!msg.file || !transfers) return;
  const item = chatLog.byKey.get(`${msg.authorId}/${msg.seq}`);
  const text = /** @type {HTMLElement | null | undefined} */ (item?.querySelector('.msg-text'));
  if (text && !text.querySelector('.file-card')) transfers.cards.card(text, msg.file, msg.own);
  transfers.files.offered(party, msg);
}
/** The page's title without a room name. */
const BASE_TITLE = document.title;
/** @type {Conversation | null} replies, reactions, edits, deletions, the room's name */
let conversation = null;

/**
 * @param {Room} room
 * @param {import('./room.js').ChatMessage} msg
 * @param {boolean} [kept] from this device's history, shown as the page opens
 */
function showMessage(room, msg, kept = false) {
  if (!msg.own) {
    const shown = log.message(msg);
    showFile(log, null, msg);
    const text = msg.file ? `sent a file: ${msg.file.name}` : msg.text;
    if (shown && !kept) attention?.arrived({ author: msg.author, text, mentionsMe: shown.mentionsMe });
    if (shown && !kept && roomAway) {
      roomAway.unread += 1;
      renderRoomUnread();
    }
    return;
  }
  const status = room.delivery(msg.seq);
  log.message(msg, status);
  showFile(log, null, msg);
  if (status.state !== 'delivered') undelivered.add(msg.seq);
  // Bounded like the history: the oldest of ours stop being refreshed.
  if (undelivered.size > 1000) undelivered.delete(Math.min(...undelivered));
}

let refreshQueued = false;

/**
 * Refreshes our messages' delivery states, once a frame however many
 * acknowledgements arrive.
 * @param {Room} room
 */
function refreshDelivery(room) {
  if (refreshQueued) return;
  refreshQueued = true;
  requestAnimationFrame(() => {
    refreshQueued = false;
    refreshDeliveryNow(room);
  });
}

/** @param {Room} room */
function refreshDeliveryNow(room) {
  for (const seq of undelivered) {
    const status = room.delivery(seq);
    log.setStatus(room.selfId, seq, status);
    if (status.state === 'delivered') undelivered.delete(seq);
  }
}

/** @param {Room} room */
function renderTyping(room) {
  const nicks = room.typingNicks();
  ui.typing.textContent =
    nicks.length === 0
      ? ''
      : nicks.length === 1
        ? `${nicks[0]} is typing…`
        : nicks.length <= 3
          ? `${nicks.slice(0, -1).join(', ')} and ${nicks.at(-1)} are typing…`
          : 'Several people are typing…';
}

/**
 * The room the address names: `/r/ROOM_ID#SECRET`. A bare `/` starts a new
 * room, with a new secret. The secret is only ever in the fragment, which
 * browsers never send to a server.
 * @returns {{id: string, secret: Uint8Array} | {problem: 'bad_room' | 'missing_secret' | 'bad_secret'} | undefined}
 *   undefined: the page is on its way to another address (the installed
 *   app opens the room last joined)
 */
function roomFromAddress() {
  if (location.pathname === '/' && new URLSearchParams(location.search).has('app')) {
    // The installed app opens the room last joined (its whole link, kept
    // on this device).
    const last = recall(LAST_ROOM_KEY);
    if (last && new URL(last, location.href).origin === location.origin) {
      location.replace(last);
      return undefined;
    }
    history.replaceState(null, '', '/');
  }
  if (location.pathname === '/' || location.pathname === '') {
    const id = randomId();
    const fragment = makeSecret();
    history.replaceState(null, '', `/r/${id}${location.search}#${fragment}`);
    return { id, secret: parseSecret(fragment) };
  }
  const match = /^\/r\/([^/]+)\/?$/.exec(location.pathname);
  try {
    if (!match) throw new Error('not a room path');
    validateRoomId(match[1]);
  } catch {
    return { problem: 'bad_room' };
  }
  try {
    return { id: match[1], secret: parseSecret(location.hash) };
  } catch (e) {
    return { problem: e instanceof E2eError && e.code === 'missing_secret' ? 'missing_secret' : 'bad_secret' };
  }
}

/** What the page says instead of the room, by problem. */
const ROOM_PROBLEMS = {
  bad_room: null, // the page's own text
  missing_secret: {
    title: 'This room link is incomplete',
    text: 'The link is missing the room’s secret, the part after #, which keeps your conversation private from the server. Ask for the full link, including the part after #.',
  },
  bad_secret: {
    title: 'This room link is damaged',
    text: 'The room’s secret, the part after # in the link, is not complete. Ask for the full link again, including the part after #.',
  },
  insecure: {
    title: 'This page needs a secure connection',
    text: 'peerchat encrypts everything in your browser, which browsers allow only on secure pages. Open it with https://, or at http://localhost or http://127.0.0.1.',
  },
};

/**
 * @param {string} id the member's peer id: its colour
 * @param {string} nick
 */
function avatar(id, nick) {
  const el = document.createElement('span');
  el.className = 'avatar';
  el.setAttribute('aria-hidden', 'true');
  el.textContent = [...nick][0]?.toUpperCase() ?? '?';
  el.dataset.colour = String(colourOf(id));
  return el;
}

/** Shows the conversation in place of the join form. */
function showRoom() {
  if (!ui.chatView.hidden) return;
  ui.joinView.hidden = true;
  ui.chatView.hidden = false;
  if (matchMedia(NARROW).matches) ui.membersPanel.open = false;
}

/** @param {Room} room */
function renderMembers(room) {
  for (const m of room.members.values()) log.person(m.id, m.nick);
  if (room.nick) log.person(room.selfId, room.nick);
  const items = [];
  if (room.nick) {
    const li = memberItem(room.selfId, room.nick, 'you', 'you');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary member-verify';
    button.textContent = 'Rename';
    button.setAttribute('aria-label', 'Rename yourself');
    button.setAttribute('aria-haspopup', 'dialog');
    button.addEventListener('click', () => openRename(room));
    const actions = document.createElement('span');
    actions.className = 'member-actions';
    actions.append(button);
    li.append(actions);
    items.push(li);
  }
  for (const m of room.members.values()) {
    const li = memberItem(m.id, m.nick, m.state, m.state.replace('_', ' '));
    const identity = room.identities.get(m.id);
    if (identity?.verified || identity?.changed) {
      const mark = document.createElement('span');
      mark.className = 'member-mark';
      mark.dataset.mark = identity.verified ? 'verified' : 'changed';
      mark.textContent = identity.verified ? '✓ verified' : '⚠ safety number changed';
      li.querySelector('.member-line')?.append(mark);
    }
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary member-verify';
    button.textContent = 'Verify';
    button.setAttribute('aria-label', `Verify ${m.nick}`);
    button.disabled = !identity;
    button.title = identity ? `Compare your safety number with ${m.nick}’s` : `Available once you are connected to ${m.nick}`;
    button.addEventListener('click', () => void openVerify(ui.verify, room, m.id, m.nick));
    const actions = document.createElement('span');
    actions.className = 'member-actions';
    actions.append(button);
    if (privateView) actions.append(privateView.button(m.id, m.nick));
    li.append(actions);
    items.push(li);
  }
  ui.members.replaceChildren(...items);
  ui.memberCount.textContent = `(${items.length})`;
  privateView?.renderUnread(byId('private-unread'));
  const nicks = [...room.members.values()].map((m) => m.nick);
  log.setMentions(mentionMatcher(room.nick ? [...nicks, room.nick] : nicks, room.nick));
}

const rename = {
  dialog: /** @type {HTMLDialogElement} */ (byId('rename-dialog')),
  form: /** @type {HTMLFormElement} */ (byId('rename-form')),
  nick: /** @type {HTMLInputElement} */ (byId('rename-nick')),
  error: byId('rename-error'),
  save: /** @type {HTMLButtonElement} */ (byId('rename-save')),
  cancel: /** @type {HTMLButtonElement} */ (byId('rename-cancel')),
};

/**
 * Opens the dialog that asks the server for a new nickname.
 * @param {Room} room
 */
function openRename(room) {
  rename.nick.value = room.nick ?? '';
  rename.error.textContent = '';
  rename.nick.removeAttribute('aria-invalid');
  rename.save.disabled = false;
  rename.save.textContent = 'Rename';
  rename.form.onsubmit = (e) => {
    e.preventDefault();
    const nick = rename.nick.value.trim();
    if (!nick) return;
    if (nick === room.nick) {
      rename.dialog.close();
      return;
    }
    rename.save.disabled = true;
    rename.save.textContent = 'Renaming…';
    room.rename(nick);
  };
  rename.cancel.onclick = () => rename.dialog.close();
  rename.dialog.showModal();
  rename.nick.select();
}

/**
 * The refusal of a rename, for people.
 * @param {{code: string, message: string}} detail
 */
function renameErrorText({ code, message }) {
  switch (code) {
    case 'nick_taken':
      return `“${rename.nick.value.trim()}” is already taken in this room. Pick another nickname.`;
    case 'bad_nick':
      return `That nickname can't be used: ${message.replace(/^invalid nickname: /, '')}.`;
    case 'rate_limited':
      return 'Too many requests at once; try again in a moment.';
    default:
      return `Not renamed: ${message}`;
  }
}

/**
 * @param {string} id
 * @param {string} nick
 * @param {string} state
 * @param {string} label
 */
function memberItem(id, nick, state, label) {
  const li = document.createElement('li');
  li.className = 'member';
  li.dataset.state = state;
  const text = document.createElement('span');
  text.className = 'member-text';
  const name = document.createElement('span');
  name.className = 'member-name';
  name.textContent = nick;
  // Names that look alike are told apart by a short id.
  const tag = document.createElement('span');
  tag.className = 'member-tag';
  tag.textContent = log.names.tag(id, nick);
  const line = document.createElement('span');
  line.className = 'member-line';
  line.append(name, tag);
  const status = document.createElement('span');
  status.className = 'member-state';
  status.textContent = label;
  text.append(line, status);
  li.append(avatar(id, nick), text);
  return li;
}

/**
 * @param {'idle'|'connecting'|'open'|'offline'} state
 * @param {string} text
 */
function setStatus(state, text) {
  showStatus(ui.status, state, text);
}

/** @param {{code: string, message: string}} err */
function joinErrorText({ code, message }) {
  switch (code) {
    case 'nick_taken':
      return `“${ui.nick.value.trim()}” is already taken in this room. Pick another nickname.`;
    case 'room_full':
      return 'This room is full. Try again later, or start a new room.';
    case 'bad_nick':
      return `That nickname can't be used: ${message.replace(/^invalid nickname: /, '')}.`;
    default:
      return message || 'Could not join the room.';
  }
}

/** @param {number} bytes */
function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

const ROUTE_NAMES = /** @type {Record<string, string>} */ ({
  host: 'direct',
  srflx: 'direct, through NAT',
  prflx: 'direct, through NAT',
  relay: 'relayed',
});

/**
 * How we reach our relay, when not over UDP (a network that blocks UDP).
 * @param {string | null} protocol
 */
function viaRelay(protocol) {
  return protocol && protocol !== 'udp' ? `; our relay reached over ${protocol.toUpperCase()}` : '';
}

/** @param {Room} room */
async function renderDetails(room) {
  const rows = await Promise.all(
    [...room.members.values()].map(async (m) => {
      const stats = m.link?.isOpen ? await m.link.stats() : null;
      const tr = document.createElement('tr');
      const relayed = stats !== null && (stats.local === 'relay' || stats.remote === 'relay');
      const route = stats === null ? m.state : relayed ? ROUTE_NAMES.relay : (ROUTE_NAMES[stats.remote] ?? stats.remote);
      const cells = [
        m.nick,
        stats === null ? route : `${route} (${stats.local} ↔ ${stats.remote}, ${stats.protocol}${viaRelay(stats.relayProtocol)})`,
        stats?.rttMs == null ? '–' : `${stats.rttMs.toFixed(1)} ms`,
        stats === null ? '–' : formatBytes(stats.bytesSent),
        stats === null ? '–' : formatBytes(stats.bytesReceived),
      ];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      /** @type {HTMLElement} */ (tr.children[1]).dataset.route = relayed ? 'relay' : stats === null ? 'none' : 'direct';
      return tr;
    }),
  );
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 5;
    td.textContent = 'Nobody else is here yet.';
    tr.append(td);
    rows.push(tr);
  }
  ui.detailsBody.replaceChildren(...rows);
}

/**
 * Shows why the page cannot join a room.
 * @param {keyof typeof ROOM_PROBLEMS} problem
 */
function showRoomProblem(problem) {
  ui.joinView.hidden = true;
  byId('share').hidden = true;
  const words = ROOM_PROBLEMS[problem];
  if (words) {
    byId('bad-room-title').textContent = words.title;
    byId('bad-room-text').textContent = words.text;
  }
  ui.badRoomView.hidden = false;
}

async function main() {
  // A new fragment is another secret (the full link pasted over an
  // incomplete one, say): start again with it. Browsers do not reload for
  // a change of fragment alone.
  addEventListener('hashchange', () => location.reload());
  if (!isSecureContext) {
    showRoomProblem('insecure');
    return;
  }
  const target = roomFromAddress();
  if (target === undefined) return;
  if ('problem' in target) {
    showRoomProblem(target.problem);
    return;
  }
  const roomId = target.id;
  ui.roomLink.value = `${location.origin}/r/${roomId}#${base64urlEncode(target.secret)}`;
  ui.copyLink.addEventListener('click', () => void copyField(ui.roomLink, ui.copyLink));
  ui.roomLink.addEventListener('focus', () => ui.roomLink.select());

  const wsUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
  const room = new Room(roomId, wsUrl, { secret: target.secret, store: Store.open() });
  // Our member key and the history kept on this device load while the page
  // shows the join form; joining waits for them.
  try {
    log.setSeen(JSON.parse(recall(SEEN_STORAGE_PREFIX + roomId) ?? 'null'));
  } catch {
    // A damaged mark: no divider.
  }
  const files = new Files(room);
  room.files = files;
  transfers = { files, cards: new FileCards(files, (id) => room.nickOf(id)) };
  // For the browser tests: `?testhooks` on a room link exposes the file
  // transfers (to corrupt a piece in flight, say).
  if (new URLSearchParams(location.search).has('testhooks')) Object.assign(window, { peerchatFiles: files });
  privateView = new PrivateView(
    room,
    {
      room: byId('room-view'),
      view: byId('private-view'),
      back: /** @type {HTMLButtonElement} */ (byId('private-back')),
      title: byId('private-title'),
      logs: byId('private-logs'),
      typing: byId('private-typing'),
      form: /** @type {HTMLFormElement} */ (byId('private-composer')),
      box: /** @type {HTMLTextAreaElement} */ (byId('private-message')),
      label: byId('private-label'),
      note: byId('private-note'),
      attach: /** @type {HTMLButtonElement} */ (byId('private-attach')),
      attachInput: /** @type {HTMLInputElement} */ (byId('private-attach-input')),
    },
    {
      changed: () => renderMembers(room),
      file: (chatLog, peer, msg) => showFile(chatLog, peer, msg),
      offer: (file, peer) => files.offer(file, peer),
      arrived: (msg) => attention?.arrived({ author: msg.author, text: msg.text, mentionsMe: true }),
      notice,
      roomShown: (shown) => {
        // Away from the room, what it shows is not read: the mark stays
        // where the reader left it.
        if (!shown) roomAway ??= { seen: log.newest(), unread: 0 };
        else roomAway = null;
        renderRoomUnread();
      },
    },
  );
  conversation = new Conversation({
    log,
    room,
    box: ui.message,
    context: byId('composer-context'),
    contextText: byId('composer-context-text'),
    contextCancel: /** @type {HTMLButtonElement} */ (byId('composer-context-cancel')),
    title: byId('room-title'),
    nameButton: /** @type {HTMLButtonElement} */ (byId('room-name-button')),
    setTitle: (name) => {
      const title = name ? `${name} · ${BASE_TITLE}` : BASE_TITLE;
      if (attention) attention.setBase(title);
      else document.title = title;
    },
    notice,
    show: (msg) => showMessage(room, msg),
  });
  // The log draws a window of the history kept here, and moves it as the
  // reader scrolls.
  log.setSource({
    messages: () => room.history.messages().filter(isShown),
    entry: (/** @type {import('./history.js').Message} */ m) => {
      const msg = room.view(m);
      return msg.own ? { msg, status: room.delivery(msg.seq) } : { msg };
    },
  });
  log.paged = (drawn) => {
    // Drawn from `entry` above: a room message.
    const msg = /** @type {import('./room.js').ChatMessage} */ (drawn);
    showFile(log, null, msg);
    if (msg.own) undelivered.add(msg.seq);
  };
  const ready = room.open().then(async (kept) => {
    // Only the newest window is drawn; the files of those above are still
    // fetched (or resumed).
    const drawnFrom = Math.max(0, kept.length - log.window);
    for (const msg of kept.slice(0, drawnFrom)) if (msg.file && !msg.own) transfers?.files.offered(null, msg);
    for (const msg of kept.slice(drawnFrom)) showMessage(room, msg, true);
    conversation?.showName(false);
    if (kept.length > 0) {
      notice(`${kept.length === 1 ? 'One earlier message' : `${kept.length} earlier messages`} from this device.`);
    }
    privateView?.restore((await room.privates?.restore()) ?? []);
  });
  document.addEventListener('visibilitychange', () => privateView?.visible());

  ui.nick.value = recall(NICK_STORAGE_KEY) ?? '';
  // In this room already (a reload, or the link opened again): come
  // straight back as the same member, without asking.
  const joinedAs = recall(JOINED_STORAGE_PREFIX + roomId);
  if (joinedAs) ui.nick.value = joinedAs;
  // `?relay=1` on a room link asks for relay-only connections.
  const relayParam = new URLSearchParams(location.search).get('relay');
  ui.hideIp.checked = relayParam === '1' || (relayParam === null && recall(RELAY_STORAGE_KEY) === '1');
  ui.nick.focus();
  // Someone about to join: have the server connection ready by then.
  if (ui.nick.value) room.preconnect();
  else ui.nick.addEventListener('input', () => room.preconnect(), { once: true });

  ui.joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const nick = ui.nick.value.trim();
    try {
      validateNick(nick);
    } catch (e) {
      ui.joinError.textContent = joinErrorText({ code: 'bad_nick', message: /** @type {Error} */ (e).message });
      ui.nick.setAttribute('aria-invalid', 'true');
      ui.nick.focus();
      return;
    }
    ui.joinError.textContent = '';
    ui.nick.removeAttribute('aria-invalid');
    ui.joinButton.disabled = true;
    ui.joinButton.textContent = 'Joining…';
    room.relayOnly = ui.hideIp.checked;
    void ready.then(() => room.join(nick));
  });
  // Only a member whose key this browser kept can come back as itself; it
  // sees the conversation kept here at once, even with no network.
  if (joinedAs && recall(`peerchat.key.${roomId}`)) {
    showRoom();
    ui.joinForm.requestSubmit();
  }

  room.addEventListener('join-error', (e) => {
    const detail = /** @type {CustomEvent} */ (e).detail;
    ui.joinError.textContent = joinErrorText(detail);
    ui.chatView.hidden = true;
    ui.joinView.hidden = false;
    ui.nick.setAttribute('aria-invalid', 'true');
    ui.joinButton.disabled = false;
    ui.joinButton.textContent = 'Join';
    ui.nick.focus();
    ui.nick.select();
  });

  room.addEventListener('joined', (e) => {
    const { resumed } = /** @type {CustomEvent} */ (e).detail;
    remember(NICK_STORAGE_KEY, room.nick ?? '');
    remember(RELAY_STORAGE_KEY, room.relayOnly ? '1' : '0');
    remember(JOINED_STORAGE_PREFIX + roomId, room.nick ?? '');
    remember(LAST_ROOM_KEY, ui.roomLink.value);
    ui.privacyBadge.hidden = !room.relayOnly;
    if (room.relayOnly && !room.hasRelay) {
      notice('This server offers no relay, so with “Hide my IP address” on you cannot connect to anyone.');
    }
    showRoom();
    const others = [...room.members.values()].map((m) => m.nick);
    const joinedText = resumed ? `You are back as ${room.nick}.` : `You joined as ${room.nick}.`;
    notice(
      others.length === 0
        ? `${joinedText} Share the room link to invite people.`
        : `${joinedText} Here: ${others.join(', ')}.`,
    );
    renderMembers(room);
    ui.message.focus();
  });

  /** @type {ReturnType<typeof setInterval> | undefined} */
  let countdown;
  let installing = false;
  room.addEventListener('server', (e) => {
    const { state, retryInMs, reason } = /** @type {CustomEvent} */ (e).detail;
    clearInterval(countdown);
    if (state === 'open' && !installing) {
      // Once the server answers (a worker installed on an earlier visit
      // serves the page without it).
      installing = true;
      void registerServiceWorker({ banner: byId('update'), button: /** @type {HTMLButtonElement} */ (byId('update-now')) });
    }
    ui.retry.hidden = state !== 'offline';
    if (state === 'open') {
      setStatus('open', 'Online');
      if (!room.everJoined) ui.joinError.textContent = '';
      return;
    }
    if (state === 'connecting') {
      // Keep saying what is wrong while a retry is under way.
      if (ui.status.dataset.state !== 'offline') setStatus('connecting', 'Connecting…');
      return;
    }
    const others = room.everJoined ? ' Members you are connected to can still chat with you.' : '';
    setStatus(
      'offline',
      reason === 'restarting'
        ? `The server is restarting.${others}`
        : reason === 'lost'
          ? `Lost the connection to the server.${others}`
          : `Cannot reach the server.${others}`,
    );
    if (!room.everJoined && room.nick) {
      // The join goes through by itself once the server answers.
      ui.joinError.textContent =
        'The server does not answer: it may be down or restarting, or this device may be offline. ' +
        'You will join as soon as it answers.';
    }
    const at = Date.now() + (retryInMs ?? 0);
    const tick = () => {
      ui.retryIn.textContent = `Retrying in ${Math.max(1, Math.ceil((at - Date.now()) / 1000))} s.`;
    };
    tick();
    countdown = setInterval(tick, 1000);
  });
  ui.retryNow.addEventListener('click', () => room.signaling.retryNow());

  let relayExplained = false;
  room.addEventListener('no-relay', (e) => {
    const error = /** @type {CustomEvent} */ (e).detail;
    if (relayExplained) return;
    relayExplained = true;
    notice(
      `“Hide my IP address” is on, so you connect only through the server's relay, and the relay cannot be reached${
        error ? ` (${error})` : ''
      }: you cannot connect to anyone, and your messages wait. Leave the room and join again without “Hide my IP address”, or ask whoever runs the server to check its relay (UDP port 3478 must be open).`,
    );
  });
  room.addEventListener('members', () => renderMembers(room));
  room.addEventListener('refused', (e) => notice(/** @type {CustomEvent} */ (e).detail.text));
  room.addEventListener('forged', (e) => {
    const { author, by, count } = /** @type {CustomEvent} */ (e).detail;
    const what = count === 1 ? 'A message' : `${count} messages`;
    notice(
      author === by
        ? `${what} from ${author} ${count === 1 ? 'was' : 'were'} refused: the signature does not match ${author}'s key.`
        : `${what} attributed to ${author}, relayed by ${by}, ${count === 1 ? 'was' : 'were'} refused: ${author} did not sign ${count === 1 ? 'it' : 'them'}.`,
    );
  });
  room.addEventListener('message-verified', (e) => {
    const { authorId, seq } = /** @type {CustomEvent} */ (e).detail;
    log.markVerified(authorId, seq);
    conversation?.refreshAll();
  });
  room.addEventListener('message-removed', (e) => {
    const { authorId, seq, author, by } = /** @type {CustomEvent} */ (e).detail;
    log.remove(authorId, seq);
    conversation?.refreshAll();
    notice(`A message attributed to ${author}, relayed by ${by}, was forged and has been removed.`);
  });
  room.addEventListener('key-changed', (e) => {
    const { nick } = /** @type {CustomEvent} */ (e).detail;
    log.notice(
      `${nick}’s safety number has changed. ${nick} uses another identity key than before: a new browser or device, or someone else. Verify ${nick} again before trusting them.`,
      { warning: true },
    );
  });
  ui.verify.mark.addEventListener('click', () => {
    const peerId = ui.verify.dialog.dataset.peer;
    const member = peerId ? room.members.get(peerId) : undefined;
    if (!peerId || !member) return;
    void room.markVerified(peerId).then(() => showVerified(ui.verify, room, peerId, member.nick));
  });
  ui.verifyClose.addEventListener('click', () => ui.verify.dialog.close());
  room.addEventListener('not-verified', (e) => {
    const { nick, reason } = /** @type {CustomEvent} */ (e).detail;
    notice(`Could not verify ${nick}: ${reason}. The connection was closed.`);
  });
  room.addEventListener('notice', (e) => {
    const { kind, nick, old } = /** @type {CustomEvent} */ (e).detail;
    if (kind === 'renamed') notice(`${old} is now ${nick}`);
    else notice(kind === 'joined' ? `${nick} joined` : `${nick} left`);
  });
  room.addEventListener('renamed', (e) => {
    const { nick } = /** @type {CustomEvent} */ (e).detail;
    // A reload or a new visit comes back under the new nickname.
    remember(NICK_STORAGE_KEY, nick);
    remember(JOINED_STORAGE_PREFIX + roomId, nick);
    if (rename.dialog.open) rename.dialog.close();
    notice(`You are now ${nick}`);
    renderMembers(room);
  });
  room.addEventListener('rename-error', (e) => {
    const detail = /** @type {CustomEvent} */ (e).detail;
    const text = renameErrorText(detail);
    if (rename.dialog.open) {
      rename.error.textContent = text;
      rename.nick.setAttribute('aria-invalid', 'true');
      rename.save.disabled = false;
      rename.save.textContent = 'Rename';
      rename.nick.focus();
      rename.nick.select();
    } else {
      notice(text);
    }
  });
  room.addEventListener('message', (e) => showMessage(room, /** @type {CustomEvent} */ (e).detail));
  room.addEventListener('about', (e) => conversation?.applied(/** @type {CustomEvent} */ (e).detail));
  room.addEventListener('delivery', () => refreshDelivery(room));
  room.addEventListener('typing', () => renderTyping(room));

  // Before the composer, so that Tab and Enter complete a name first.
  wireMentions({ box: ui.message, list: ui.mentionList, hint: ui.composerHint }, () =>
    [...room.members.values()].map((m) => m.nick),
  );
  wireComposer(
    { form: ui.composer, box: ui.message, note: ui.composerNote },
    (text) => {
      if (!room.everJoined) throw new Error('Not in the room yet: you can send once the server answers.');
      if (conversation?.busy) {
        conversation.send(text);
        return;
      }
      void room.send(text).then(
        (m) => showMessage(room, m),
        (e) => notice(`Not sent: ${/** @type {Error} */ (e).message}`),
      );
    },
    () => room.typed(),
  );
  wireAttach(
    {
      button: /** @type {HTMLButtonElement} */ (byId('attach')),
      input: /** @type {HTMLInputElement} */ (byId('attach-input')),
      zone: byId('room-view'),
      box: ui.message,
    },
    (file) => {
      if (!room.everJoined) {
        notice('Not in the room yet: you can send files once the server answers.');
        return;
      }
      ui.composerNote.textContent = '';
      void files.offer(file, null).then(
        (m) => showMessage(room, m),
        (e) => notice(`${file.name} was not sent: ${/** @type {Error} */ (e).message}`),
      );
    },
  );

  wireConversationTools(room, roomId);

  // Clearing asks first, saying what goes (and what stays).
  const clearDialog = /** @type {HTMLDialogElement} */ (byId('clear-dialog'));
  ui.clearHistory.addEventListener('click', () => clearDialog.showModal());
  byId('clear-cancel').addEventListener('click', () => clearDialog.close());
  byId('clear-confirm').addEventListener('click', () => {
    clearDialog.close();
    const cleared = room.clearHistory();
    undelivered.clear();
    log.clear();
    log.setSeen(null);
    privateView?.clear();
    remember(SEEN_STORAGE_PREFIX + roomId, null);
    roomAway &&= { seen: null, unread: 0 };
    renderRoomUnread();
    void cleared.then(
      () => notice('Cleared on this device: the room’s messages, private conversations, received files and unread counts.'),
      (e) => {
        console.warn('peerchat: could not clear this room', e);
        log.notice('Clearing this device did not finish: try again.', { warning: true });
      },
    );
  });

  /** @type {ReturnType<typeof setInterval> | undefined} */
  let detailsTimer;
  ui.detailsButton.addEventListener('click', () => {
    void renderDetails(room);
    ui.details.showModal();
    detailsTimer = setInterval(() => void renderDetails(room), 1000);
  });
  ui.detailsClose.addEventListener('click', () => ui.details.close());
  ui.details.addEventListener('close', () => clearInterval(detailsTimer));

  // Leaving for good tells the others at once; the page then offers to
  // join again.
  ui.leaveRoom.addEventListener('click', () => {
    remember(JOINED_STORAGE_PREFIX + roomId, null);
    room.leave(true);
    location.reload();
  });
  // A tab that goes away keeps our place for a while (`--resume-grace`): a
  // reload comes back as the same member, with the same key, unnoticed,
  // and catches up on what it missed. A tab closed for good is seen to
  // leave when that time is up.
  addEventListener('pagehide', () => {
    // What the reader had seen of the room: not what arrived while a
    // private conversation was in view.
    const newest = roomAway ? roomAway.seen : log.newest();
    if (newest) remember(SEEN_STORAGE_PREFIX + roomId, JSON.stringify(newest));
    room.leave(false);
  });
}

/**
 * The tools around the conversation: sharing the link, notifications,
 * search and export of the history kept here.
 * @param {Room} room
 * @param {string} roomId
 */
function wireConversationTools(room, roomId) {
  wireShare({
    button: /** @type {HTMLButtonElement} */ (byId('share-button')),
    dialog: /** @type {HTMLDialogElement} */ (byId('share-dialog')),
    qr: /** @type {SVGSVGElement} */ (/** @type {unknown} */ (byId('qr'))),
    caption: byId('qr-caption'),
    native: /** @type {HTMLButtonElement} */ (byId('share-native')),
    copy: /** @type {HTMLButtonElement} */ (byId('share-copy')),
    close: /** @type {HTMLButtonElement} */ (byId('share-close')),
    field: ui.roomLink,
  });
  attention = new Attention({
    button: /** @type {HTMLButtonElement} */ (byId('alerts-button')),
    dialog: /** @type {HTMLDialogElement} */ (byId('alerts')),
    close: /** @type {HTMLButtonElement} */ (byId('alerts-close')),
    sound: /** @type {HTMLInputElement} */ (byId('alert-sound')),
    note: byId('alerts-note'),
    roomId,
  });
  /** @type {import('./finder.js').Source} */
  const source = {
    roomId,
    // As shown: the last edit's text; deleted messages left out.
    kept: () =>
      keptHistory(room.store, roomId, () =>
        room.history
          .messages()
          .filter(isShown)
          .map(({ id, author, nick, seq, clock, ts, text }) => ({ id, author, nick, seq, clock, ts, text })),
      ).then((messages) =>
        messages.flatMap((m) => {
          const state = room.history.entryState(m.author, m.seq);
          return state.deleted ? [] : [{ ...m, text: state.text ?? m.text }];
        }),
      ),
    reveal: (author, seq) => log.reveal(author, seq),
  };
  wireSearch(
    {
      button: /** @type {HTMLButtonElement} */ (byId('search-button')),
      dialog: /** @type {HTMLDialogElement} */ (byId('search-dialog')),
      form: /** @type {HTMLFormElement} */ (byId('search-form')),
      words: /** @type {HTMLInputElement} */ (byId('search-words')),
      summary: byId('search-summary'),
      results: byId('search-results'),
      close: /** @type {HTMLButtonElement} */ (byId('search-close')),
    },
    source,
  );
  wireExport(
    {
      button: /** @type {HTMLButtonElement} */ (byId('export-button')),
      dialog: /** @type {HTMLDialogElement} */ (byId('export-dialog')),
      summary: byId('export-summary'),
      text: /** @type {HTMLButtonElement} */ (byId('export-text')),
      json: /** @type {HTMLButtonElement} */ (byId('export-json')),
      close: /** @type {HTMLButtonElement} */ (byId('export-close')),
    },
    source,
  );
}

void main();
