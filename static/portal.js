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
    if (!messages || location.hash) return;
    if (messages.scrollHeight > messages.clientHeight) {
      messages.scrollTop = messages.scrollHeight;
    } else if (window.matchMedia("(max-width: 600px)").matches && messages.querySelector(".message")) {
      // Phones scroll the page itself: bring the newest message and the composer into view.
      document.getElementById("composer").scrollIntoView({block: "end"});
    }
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
    // A deleted or restored message replaced the focused button: keep keyboard users in place.
    var swapped = event.detail.elt && event.detail.elt.id && document.getElementById(event.detail.elt.id);
    if (swapped && swapped.matches("article.message")) swapped.focus();
    var refused = document.querySelector('#message-text[aria-invalid="true"]');
    if (refused) refused.focus();
    if (target.id === "messages") {
      target.scrollTop = target.scrollHeight;
      var text = document.getElementById("message-text");
      if (text) text.focus();
    }
  });

  // htmx swaps nothing on an error status: say what happened instead of doing nothing.
  function showRequestError(text) {
    var box = document.getElementById("request-error");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    box.scrollIntoView({block: "nearest"});
  }

  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("request-error");
    if (box) box.hidden = true;
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var text = "Something went wrong on our side. Please try again.";
    if (status === 404) {
      text = "That is no longer available to you. Reload the page to see what is.";
    } else if (status === 400) {
      text = "The page was out of date. Reload it and try again.";
    }
    showRequestError(text);
    // A refused send: say it where the writer is looking too.
    var composer = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("#composer");
    if (composer) {
      var note = composer.querySelector(".request-error") || document.createElement("p");
      note.className = "field-error request-error";
      note.setAttribute("role", "alert");
      note.textContent = text;
      composer.querySelector(".composer-actions").before(note);
    }
  });

  document.addEventListener("htmx:sendError", function () {
    showRequestError("Could not reach the portal. Check your connection and try again.");
  });
})();
