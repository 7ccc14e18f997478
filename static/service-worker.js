// The portal's service worker, served at /service-worker.js with scope "/": it only shows web push
// notifications and opens the portal when one is clicked. It caches nothing.
"use strict";

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

// Only ever a page of this portal, whatever a payload says.
function portalUrl(url) {
  try {
    var parsed = new URL(url || "/", self.location.origin);
    if (parsed.origin !== self.location.origin) {
      parsed = new URL(parsed.pathname + parsed.search + parsed.hash, self.location.origin);
    }
    return parsed.href;
  } catch (error) {
    return new URL("/", self.location.origin).href;
  }
}

self.addEventListener("push", function (event) {
  var data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = {};
  }
  var title = data.title || "New message";
  var body = data.body || "";
  var url = portalUrl(data.url);
  event.waitUntil(
    // One notification per feed (tag = its address): a newer message replaces the older one and
    // alerts again; the same notification delivered twice (a retry) replaces it quietly.
    self.registration.getNotifications({tag: url}).then(function (shown) {
      var repeat = shown.some(function (notification) {
        return notification.title === title && notification.body === body;
      });
      return self.registration.showNotification(title, {
        body: body,
        tag: url,
        renotify: !repeat,
        data: {url: url},
      });
    })
  );
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = portalUrl(event.notification.data && event.notification.data.url);
  event.waitUntil(
    // The portal's tabs: all are controlled by this worker once it is active (clients.claim).
    self.clients.matchAll({type: "window"}).then(function (tabs) {
      var exact = tabs.find(function (tab) { return tab.url === url; });
      if (exact) return exact.focus();
      if (tabs.length) {
        // Focus first (allowed only right after the click), then show the message's feed.
        return tabs[0].focus().then(function (tab) {
          return (tab || tabs[0]).navigate(url);
        }).catch(function () {
          return self.clients.openWindow(url);
        });
      }
      return self.clients.openWindow(url);
    })
  );
});
