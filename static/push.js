// "Notifications on this device": registers the service worker, asks permission, subscribes with
// the portal's VAPID key and saves the subscription. Loaded by preferences/_push_device.html only.
(function () {
  "use strict";

  var section = document.getElementById("push-device");
  if (!section) return;
  var controls = section.querySelector("[data-push-controls]");
  var status = section.querySelector("[data-push-status]");
  var enableRow = section.querySelector("[data-push-enable-row]");
  var disableRow = section.querySelector("[data-push-disable-row]");
  var enableButton = enableRow.querySelector("button");
  var disableButton = disableRow.querySelector("button");
  var csrfToken = (JSON.parse(document.body.getAttribute("hx-headers") || "{}"))["X-CSRFToken"];
  var key = section.dataset.applicationServerKey;
  var knownDevices = (section.dataset.knownDevices || "").split(" ").filter(Boolean);
  var iosSteps = section.querySelector("[data-install-ios]");

  var MESSAGES = {
    unconfigured: "App notifications are not set up on this portal yet.",
    unsupported: "This browser cannot show notifications from the portal. An up-to-date Chrome, " +
      "Edge, Firefox or Safari can.",
    // iOS delivers web push only to a site added to the Home Screen and opened from there.
    iosInstall: "On an iPhone or iPad, notifications come to the portal's app on your Home Screen:",
    iosUpdate: "Notifications in the app need iOS 16.4 or later: update your iPhone or iPad, " +
      "then open the portal from your Home Screen again.",
    denied: "Notifications are blocked for this site. Allow them in your browser's site " +
      "settings, then reload this page.",
    off: "Notifications are off on this device.",
    enabled: "Notifications are on for this device.",
    working: "One moment…",
    dismissed: "Notifications were not allowed. Choose Enable again when you are ready.",
    loggedOut: "Your session has ended. Reload the page and log in again.",
    failed: "That did not work. Check your connection and try again.",
  };

  function show(state, message) {
    section.dataset.pushState = state;
    section.querySelector("[data-push-nojs]").hidden = true;
    controls.hidden = false;
    status.textContent = message || MESSAGES[state];
    enableRow.hidden = state !== "off";
    disableRow.hidden = state !== "enabled";
    iosSteps.hidden = state !== "iosInstall";
    enableButton.disabled = disableButton.disabled = false;
  }

  function supported() {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window &&
      window.isSecureContext && window.crypto && window.crypto.subtle;
  }

  function onIos() {
    // iPadOS presents itself as a Mac; only its touch screen tells it apart.
    return /iPhone|iPad|iPod/.test(navigator.userAgent) ||
      (/Macintosh/.test(navigator.userAgent) && navigator.maxTouchPoints > 1);
  }

  function installed() {
    return navigator.standalone === true || window.matchMedia("(display-mode: standalone)").matches;
  }

  function keyBytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function sameKey(subscription) {
    var current = subscription.options && subscription.options.applicationServerKey;
    if (!current) return true;  // the browser does not tell; assume it is ours
    var a = new Uint8Array(current), b = keyBytes(key);
    return a.length === b.length && a.every(function (byte, i) { return byte === b[i]; });
  }

  // Whether the server has this browser's subscription for the logged-in person: it sends
  // SHA-256 hashes of that person's endpoints, never the endpoints.
  function isKnown(subscription) {
    var data = new TextEncoder().encode(subscription.endpoint);
    return crypto.subtle.digest("SHA-256", data).then(function (digest) {
      var hex = Array.prototype.map.call(new Uint8Array(digest), function (byte) {
        return ("0" + byte.toString(16)).slice(-2);
      }).join("");
      return knownDevices.indexOf(hex) !== -1;
    });
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      redirect: "manual",  // logged out: the login redirect, not the login page
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken},
      body: JSON.stringify(body),
    }).then(function (response) {
      if (response.type === "opaqueredirect" || response.status === 401) {
        throw new Error("loggedOut");
      }
      if (!response.ok) throw new Error("failed");
      return response.json();
    });
  }

  function registration() {
    return navigator.serviceWorker.register(section.dataset.serviceWorker, {scope: "/"})
      .then(function () { return navigator.serviceWorker.ready; });
  }

  function subscribe(reg) {
    return reg.pushManager.getSubscription().then(function (existing) {
      if (existing && sameKey(existing)) return existing;
      // Made with other keys (the server's were replaced): start again with the current ones.
      return (existing ? existing.unsubscribe() : Promise.resolve()).then(function () {
        return reg.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: keyBytes(key),
        });
      });
    });
  }

  function failure(error) {
    show("off", MESSAGES[error && error.message === "loggedOut" ? "loggedOut" : "failed"]);
  }

  function enable() {
    enableButton.disabled = true;
    status.textContent = MESSAGES.working;
    // Asked from the click itself: browsers only show the prompt after a user's gesture.
    Notification.requestPermission().then(function (permission) {
      if (permission === "denied") return show("denied");
      if (permission !== "granted") return show("off", MESSAGES.dismissed);
      return registration().then(subscribe).then(function (subscription) {
        return post(section.dataset.subscribeUrl, subscription.toJSON()).then(function () {
          show("enabled");
        });
      });
    }).catch(failure);
  }

  function disable() {
    disableButton.disabled = true;
    status.textContent = MESSAGES.working;
    navigator.serviceWorker.getRegistration("/").then(function (reg) {
      return reg && reg.pushManager.getSubscription();
    }).then(function (subscription) {
      if (!subscription) return show("off");
      return post(section.dataset.unsubscribeUrl, {endpoint: subscription.endpoint})
        .then(function () { return subscription.unsubscribe(); })
        .then(function () { show("off"); });
    }).catch(function (error) {
      show("enabled", MESSAGES[error && error.message === "loggedOut" ? "loggedOut" : "failed"]);
    });
  }

  function start() {
    if (!key) return show("unconfigured");
    if (onIos() && !installed()) return show("iosInstall");
    if (!supported()) return show(onIos() ? "iosUpdate" : "unsupported");
    if (Notification.permission === "denied") return show("denied");
    enableButton.addEventListener("click", enable);
    disableButton.addEventListener("click", disable);
    navigator.serviceWorker.getRegistration("/").then(function (reg) {
      return reg ? reg.pushManager.getSubscription() : null;
    }).then(function (subscription) {
      if (!subscription || Notification.permission !== "granted" || !sameKey(subscription)) {
        return show("off");
      }
      // This browser may be subscribed for someone else who used it: then it is "off" for
      // this person, and Enable moves it over.
      return isKnown(subscription).then(function (known) { show(known ? "enabled" : "off"); });
    }).catch(function () { show("off"); });
  }

  // Browsers that can install the portal themselves (Chrome, Edge on Android and computers) say
  // so with beforeinstallprompt; the offer shows only then, and goes once it is installed.
  function offerInstall() {
    var offer = section.querySelector("[data-install-offer]");
    var offerStatus = offer.querySelector("[data-install-status]");
    var installRow = offer.querySelector("[data-install-row]");
    var installButton = installRow.querySelector("button");
    var prompt = null;

    function installedNow() {
      prompt = null;
      installRow.hidden = true;
      offerStatus.textContent = "Installed: open the portal from your home screen or app list.";
    }

    window.addEventListener("beforeinstallprompt", function (event) {
      event.preventDefault();  // offered here, where it is explained, not in a banner
      prompt = event;
      offer.hidden = false;
      installButton.disabled = false;
    });
    window.addEventListener("appinstalled", installedNow);
    installButton.addEventListener("click", function () {
      if (!prompt) return;
      installButton.disabled = true;
      offerStatus.textContent = "Follow your browser's prompt to install the app.";
      prompt.prompt();
      prompt.userChoice.then(function (choice) {
        if (choice.outcome === "accepted") return installedNow();
        // A prompt is shown once; the browser's own menu can still install it later.
        prompt = null;
        installRow.hidden = true;
        offerStatus.textContent = "Not installed. You can install it later from your browser's menu.";
      });
    });
  }

  offerInstall();
  start();
})();
