// Small enhancements on top of htmx; every page works without this file.
(function () {
  "use strict";

  // ARIA tabs: arrow keys, Home and End move between the feed tabs.
  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest('[role="tab"]');
    if (!tab) return;
    var tabs = Array.prototype.slice.call(tab.parentElement.querySelectorAll('[role="tab"]'));
    var index = tabs.indexOf(tab);
    var next = {ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1}[event.key];
    if (next === undefined) return;
    event.preventDefault();
    tabs[(next + tabs.length) % tabs.length].focus();
  });

  function scrollFeedToEnd() {
    var messages = document.getElementById("messages");
    if (messages && !location.hash) messages.scrollTop = messages.scrollHeight;
  }

  document.addEventListener("DOMContentLoaded", scrollFeedToEnd);

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (!target) return;
    if (target.id === "feed") {
      scrollFeedToEnd();
      var selected = target.querySelector('[role="tab"][aria-selected="true"]');
      if (selected) selected.focus();
    }
    if (target.id === "messages") {
      target.scrollTop = target.scrollHeight;
      var text = document.getElementById("message-text");
      if (text) text.focus();
    }
  });

  // The form-error fragment replaces the composer; keep the writer's cursor in it.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "composer") {
      var text = document.getElementById("message-text");
      if (text) text.focus();
    }
  });
})();
