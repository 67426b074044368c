// @ts-check
/**
 * Telling the reader that something arrived while they were elsewhere:
 * the tab's title counts new messages and, apart, mentions of them
 * (`(3 · @1) peerchat`) until they come back; optionally, a desktop
 * notification and a sound. Notifications are asked for on a click in the
 * Notifications dialog, and the choice is remembered on this device.
 * Mentions of the reader notify whenever notifications are on.
 * @module
 */

const LEVEL_KEY = 'peerchat.alerts';
const SOUND_KEY = 'peerchat.sound';

/**
 * @typedef {'off' | 'mentions' | 'all'} Level
 * @typedef {{author: string, text: string, mentionsMe: boolean}} Arrival
 */

/**
 * The tab's title with what arrived unseen.
 * @param {string} base
 * @param {number} unread
 * @param {number} mentions
 */
export function titleWith(base, unread, mentions) {
  if (unread === 0) return base;
  return mentions > 0 ? `(${unread} · @${mentions}) ${base}` : `(${unread}) ${base}`;
}

/** @param {string} name */
function recall(name) {
  try {
    return localStorage.getItem(name);
  } catch {
    return null;
  }
}

/**
 * @param {string} name
 * @param {string} value
 */
function remember(name, value) {
  try {
    localStorage.setItem(name, value);
  } catch {
    // Then the choice lasts as long as the page.
  }
}

export class Attention {
  /**
   * @param {{button: HTMLButtonElement, dialog: HTMLDialogElement, close: HTMLButtonElement,
   *   sound: HTMLInputElement, note: HTMLElement, roomId: string}} parts
   */
  constructor({ button, dialog, close, sound, note, roomId }) {
    this.button = button;
    this.dialog = dialog;
    this.note = note;
    this.roomId = roomId;
    this.base = document.title;
    this.unread = 0;
    this.mentions = 0;
    /** @type {Level} */
    this.level = /** @type {Level} */ (['mentions', 'all'].includes(recall(LEVEL_KEY) ?? '') ? recall(LEVEL_KEY) : 'off');
    this.sound = recall(SOUND_KEY) === '1';
    /** @type {AudioContext | null} */
    this.audio = null;
    /** @type {Arrival[]} arrivals of this task, notified together */
    this.batch = [];
    /** @type {Notification | null} the last shown without the service worker */
    this.shown = null;

    this.radios = /** @type {HTMLInputElement[]} */ ([...dialog.querySelectorAll('input[name="alert-level"]')]);
    this.soundBox = sound;
    button.addEventListener('click', () => {
      this.showChoice();
      dialog.showModal();
    });
    close.addEventListener('click', () => dialog.close());
    for (const radio of this.radios) {
      radio.addEventListener('change', () => void this.choose(/** @type {Level} */ (radio.value)));
    }
    sound.addEventListener('change', () => {
      this.sound = sound.checked;
      remember(SOUND_KEY, this.sound ? '1' : '0');
      // Started on a click, so the browser lets it play later.
      if (this.sound) this.chime();
    });
    // Audio may start only after the reader did something on the page.
    const unlock = () => {
      if (this.sound) this.audioContext();
    };
    addEventListener('pointerdown', unlock, { once: true, capture: true });
    addEventListener('keydown', unlock, { once: true, capture: true });
    const back = () => {
      if (this.attending()) this.reset();
    };
    document.addEventListener('visibilitychange', back);
    addEventListener('focus', back);
    this.label();
  }

  /** Whether the reader is looking at this tab. */
  attending() {
    return document.visibilityState === 'visible' && document.hasFocus();
  }

  /**
   * A message from someone else was shown.
   * @param {Arrival} arrival
   */
  arrived(arrival) {
    if (this.attending()) return;
    this.unread += 1;
    if (arrival.mentionsMe) this.mentions += 1;
    document.title = titleWith(this.base, this.unread, this.mentions);
    if (this.level === 'off') return;
    if (this.level === 'mentions' && !arrival.mentionsMe) return;
    if (this.batch.length === 0) queueMicrotask(() => this.alert());
    this.batch.push(arrival);
  }

  /** The page's own title changed (a room name, say). @param {string} base */
  setBase(base) {
    this.base = base;
    document.title = titleWith(base, this.unread, this.mentions);
  }

  /** @private */
  reset() {
    this.unread = 0;
    this.mentions = 0;
    document.title = this.base;
    void this.dismiss();
  }

  /**
   * Notifies what arrived in this task: one message by itself, several
   * (history catching up, say) in one notification that counts them.
   * @private
   */
  alert() {
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    const mentioned = batch.filter((a) => a.mentionsMe);
    let title;
    let body;
    if (batch.length === 1) {
      const [only] = batch;
      title = only.mentionsMe ? `${only.author} mentioned you` : only.author;
      body = only.text.length > 200 ? `${only.text.slice(0, 200)}…` : only.text;
    } else {
      title = `${batch.length} new messages`;
      body = mentioned.length > 0 ? `${mentioned.length === 1 ? 'One mentions' : `${mentioned.length} mention`} you.` : `From ${[...new Set(batch.map((a) => a.author))].join(', ')}.`;
    }
    void this.notify(title, body);
    if (this.sound) this.chime();
  }

  /**
   * @private
   * @param {string} title
   * @param {string} body
   */
  async notify(title, body) {
    if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
    // It stays until the reader comes back to the tab (then `dismiss`
    // takes it away) or acts on it: left to itself, the browser takes a
    // notification away after some seconds, and a reader away from the
    // screen for longer would never see it.
    const options = { body, tag: this.tag(), icon: '/icons/icon-192.png', renotify: true, requireInteraction: true };
    try {
      // Phones show notifications only through the service worker.
      const registration = await navigator.serviceWorker?.getRegistration();
      if (registration?.active) {
        await registration.showNotification(title, options);
        return;
      }
      const shown = new Notification(title, options);
      this.shown = shown;
      shown.addEventListener('click', () => {
        focus();
        shown.close();
      });
    } catch (e) {
      console.warn('peerchat: could not notify', e);
    }
  }

  /**
   * The reader is back: closes this room's notification, which told of
   * what they now see.
   * @private
   */
  async dismiss() {
    this.shown?.close();
    this.shown = null;
    if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
    try {
      const registration = await navigator.serviceWorker?.getRegistration();
      for (const shown of (await registration?.getNotifications({ tag: this.tag() })) ?? []) shown.close();
    } catch (e) {
      console.warn('peerchat: could not close a notification', e);
    }
  }

  /**
   * The tag of this room's notifications: a new one replaces the last.
   * @private
   */
  tag() {
    return `peerchat-${this.roomId}`;
  }

  /**
   * The reader picked a level in the dialog: asks the browser's
   * permission for notifications if needed.
   * @private
   * @param {Level} level
   */
  async choose(level) {
    this.level = level;
    remember(LEVEL_KEY, level);
    this.note.textContent = '';
    this.label();
    if (level === 'off') return;
    if (typeof Notification === 'undefined') {
      this.note.textContent = 'This browser cannot show notifications here; the sound and the tab’s title can still tell you.';
      return;
    }
    let permission = Notification.permission;
    if (permission === 'default') permission = await Notification.requestPermission();
    if (permission === 'denied') {
      this.note.textContent =
        'The browser blocks notifications from this site: allow them in the site’s settings. Until then the sound and the tab’s title still tell you.';
    }
  }

  /** @private */
  showChoice() {
    for (const radio of this.radios) radio.checked = radio.value === this.level;
    this.soundBox.checked = this.sound;
  }

  /** @private */
  label() {
    this.button.textContent =
      this.level === 'off' ? 'Notifications: off' : this.level === 'mentions' ? 'Notifications: mentions' : 'Notifications: on';
  }

  /** @private */
  audioContext() {
    if (!this.audio && typeof AudioContext !== 'undefined') this.audio = new AudioContext();
    if (this.audio?.state === 'suspended') void this.audio.resume();
    return this.audio;
  }

  /**
   * A short two-note chime, made on the spot (no sound file).
   * @private
   */
  chime() {
    const audio = this.audioContext();
    if (!audio) return;
    const start = audio.currentTime + 0.01;
    for (const [i, frequency] of [880, 1320].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = 'sine';
      osc.frequency.value = frequency;
      const at = start + i * 0.12;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.15, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + 0.32);
    }
  }
}
