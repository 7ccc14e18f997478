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
    var messages = document.querySelector("#feed .messages");
    if (!messages || location.hash) return;
    if (messages.scrollHeight > messages.clientHeight) {
      messages.scrollTop = messages.scrollHeight;
    } else if (window.matchMedia("(max-width: 600px)").matches && messages.querySelector(".message")) {
      // Phones scroll the page itself: bring the newest message and the composer into view.
      document.querySelector("#feed form.composer").scrollIntoView({block: "end"});
    }
  }

  // Schedule a service: show the repeat fields only when the visit repeats, and the weekdays
  // only for weekly. Without this script every field shows and the server ignores the unused.
  function showRepeatFields(select) {
    var form = select.form;
    var fields = form && form.querySelector("[data-repeat-fields]");
    if (!fields) return;
    fields.hidden = select.value === "none";
    Array.prototype.forEach.call(fields.querySelectorAll("[data-repeat-only]"), function (part) {
      part.hidden = part.getAttribute("data-repeat-only") !== select.value;
    });
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("select[data-repeat]")) showRepeatFields(event.target);
  });

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("select[data-repeat]"), showRepeatFields);
  });

  document.addEventListener("DOMContentLoaded", scrollFeedToEnd);

  // "Copy" beside a read-only link (the calendar link): copies it, and says so.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("aria-describedby") || "");
    if (!field) return;
    field.select();
    var say = function (text) { if (status) status.textContent = text; };
    var fallback = function () {
      say(document.execCommand && document.execCommand("copy") ? "Copied." : "Select the link and copy it.");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () { say("Copied."); }, fallback);
    } else {
      fallback();
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (!target) return;
    if (target.id === "feed") {
      scrollFeedToEnd();
      var selected = target.querySelector('[role="tab"][aria-selected="true"]');
      if (selected) selected.focus();
    }
    // A deleted or restored message replaced the focused button: keep keyboard users in place.
    // Only then: a message the live feed updated must not pull the focus out of the composer.
    var swapped = event.detail.elt && event.detail.elt.id && document.getElementById(event.detail.elt.id);
    var focusLost = !document.activeElement || document.activeElement === document.body;
    if (swapped && swapped.matches("article.message") && focusLost) swapped.focus();
    var refused = document.querySelector('#message-text[aria-invalid="true"]');
    if (refused) refused.focus();
    if (target.classList.contains("messages")) {
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
    } else if (status === 413) {
      text = "These files are too large to send together. Send them in a few messages.";
    } else if (status === 400) {
      text = "The page was out of date. Reload it and try again.";
    } else if (status === 503) {
      text = "The portal is briefly unavailable, so nothing was saved. Try again in a minute.";
    }
    showRequestError(text);
    // A refused send: say it where the writer is looking too.
    var composer = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("form.composer");
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

// The composer's files: picker, drag and drop, paste; previews that can be removed; progress.
(function () {
  "use strict";
  document.documentElement.classList.replace("no-js", "js");

  // Chosen files per feed (the composer's action URL): a refused send swaps in a new composer
  // form, and the files must survive that; a successful send clears them.
  var chosen = {};

  function composerOf(element) {
    return element && element.closest ? element.closest("form.composer") : null;
  }

  function filesOf(form) {
    var key = form.getAttribute("action");
    if (!chosen[key]) chosen[key] = [];
    return chosen[key];
  }

  function sizeLabel(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1048576) return Math.round(bytes / 1024) + " KB";
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  function showComposerError(form, text) {
    var note = form.querySelector(".request-error");
    if (!note && !text) return;
    if (!note) {
      note = document.createElement("p");
      note.className = "field-error request-error";
      note.setAttribute("role", "alert");
      form.querySelector(".composer-actions").before(note);
    }
    if (!text) {
      note.remove();
      return;
    }
    note.textContent = text;
  }

  function problemWith(form, files) {
    var maxFiles = Number(form.dataset.maxFiles);
    var maxFileBytes = Number(form.dataset.maxFileBytes);
    var maxRequestBytes = Number(form.dataset.maxRequestBytes);
    if (files.length > maxFiles) return "Attach at most " + maxFiles + " files to one message.";
    var total = 0;
    for (var i = 0; i < files.length; i++) {
      if (files[i].size === 0) return "“" + files[i].name + "” is empty.";
      if (files[i].size > maxFileBytes) {
        return "“" + files[i].name + "” is larger than " + Math.floor(maxFileBytes / 1048576) + " MB.";
      }
      total += files[i].size;
    }
    // Leave room for the form's own fields and the multipart framing.
    if (total > maxRequestBytes - 65536) {
      return "These files are too large to send together. Send them in a few messages.";
    }
    return "";
  }

  // The real <input type=file> carries the files, so the form posts them with or without htmx.
  function sync(form) {
    var files = filesOf(form);
    var input = form.querySelector("#message-files");
    var transfer = new DataTransfer();
    files.forEach(function (file) { transfer.items.add(file); });
    input.files = transfer.files;
    renderPreviews(form, files);
    showComposerError(form, problemWith(form, files));
  }

  function renderPreviews(form, files) {
    var list = form.querySelector("#attachment-previews");
    list.querySelectorAll("img").forEach(function (img) { URL.revokeObjectURL(img.src); });
    list.replaceChildren();
    list.hidden = files.length === 0;
    files.forEach(function (file, index) {
      var item = document.createElement("li");
      item.className = "preview";
      if (file.type.indexOf("image/") === 0 && file.type !== "image/heic" && file.type !== "image/heif") {
        var img = document.createElement("img");
        img.src = URL.createObjectURL(file);
        img.alt = "";
        // Not a picture the browser can show (perhaps not a picture at all): show a chip.
        img.addEventListener("error", function () {
          var type = document.createElement("span");
          type.className = "file-type";
          type.textContent = (file.name.split(".").pop() || "file").slice(0, 5).toUpperCase();
          img.replaceWith(type);
        });
        item.appendChild(img);
      } else {
        var type = document.createElement("span");
        type.className = "file-type";
        type.textContent = (file.name.split(".").pop() || "file").slice(0, 5).toUpperCase();
        item.appendChild(type);
      }
      var name = document.createElement("span");
      name.className = "preview-name";
      name.textContent = file.name + " · " + sizeLabel(file.size);
      item.appendChild(name);
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "preview-remove";
      remove.setAttribute("aria-label", "Remove " + file.name);
      remove.textContent = "×";
      remove.addEventListener("click", function () {
        filesOf(form).splice(index, 1);
        sync(form);
        form.querySelector("#message-text").focus();
      });
      item.appendChild(remove);
      list.appendChild(item);
    });
  }

  function add(form, fileList) {
    var files = filesOf(form);
    Array.prototype.forEach.call(fileList, function (file) { files.push(file); });
    sync(form);
  }

  document.addEventListener("change", function (event) {
    if (event.target.id !== "message-files") return;
    var form = composerOf(event.target);
    var picked = Array.prototype.slice.call(event.target.files);
    add(form, picked);
  });

  function carriesFiles(event) {
    return event.dataTransfer && event.dataTransfer.types.indexOf("Files") >= 0;
  }

  document.addEventListener("dragover", function (event) {
    if (!carriesFiles(event)) return;
    // A file dropped beside the composer must not replace the page (and lose the draft).
    event.preventDefault();
    var form = composerOf(event.target);
    if (form) form.classList.add("dragging");
  });
  document.addEventListener("dragleave", function (event) {
    var form = composerOf(event.target);
    if (form && !form.contains(event.relatedTarget)) form.classList.remove("dragging");
  });
  document.addEventListener("drop", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    var form = composerOf(event.target) || document.querySelector("#feed form.composer");
    // While another feed opens, this one takes nothing, files included.
    if (!form || !event.dataTransfer.files.length || form.closest(".switching")) return;
    form.classList.remove("dragging");
    add(form, event.dataTransfer.files);
  });

  document.addEventListener("paste", function (event) {
    var form = composerOf(event.target);
    if (!form || !event.clipboardData || !event.clipboardData.files.length) return;
    // Copies from office programs carry a picture of the text too: keep the text then.
    if (event.clipboardData.types.indexOf("text/plain") >= 0) return;
    event.preventDefault();
    add(form, event.clipboardData.files);
  });

  // Enter in "Send at" schedules: the form's default button (Send) would post it now. Without
  // JavaScript the portal refuses a send that carries a time, saying to press Schedule.
  document.addEventListener("keydown", function (event) {
    var field = event.target;
    if (event.key !== "Enter" || !field.matches || !field.matches("form.composer input[name=send_at]")) {
      return;
    }
    event.preventDefault();
    var schedule = field.form.querySelector('button[name="action"][value="schedule"]');
    if (schedule && !schedule.disabled) schedule.click();
  });

  // Saved replies: the picker's search narrows its list; a reply chosen is filled in for the
  // client by the portal and inserted where the cursor is, its files named below the box.
  document.addEventListener("input", function (event) {
    if (!event.target.matches || !event.target.matches(".saved-reply-search")) return;
    var words = event.target.value.toLowerCase().trim();
    event.target.closest(".saved-reply-picker").querySelectorAll("li[data-search]")
      .forEach(function (item) {
        item.hidden = words !== "" && item.dataset.search.indexOf(words) === -1;
      });
  });
  // Enter in the search inserts the one reply left, never sends the message being written.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !event.target.matches || !event.target.matches(".saved-reply-search")) {
      return;
    }
    event.preventDefault();
    var left = Array.prototype.filter.call(
      event.target.closest(".saved-reply-picker").querySelectorAll("li[data-search]"),
      function (item) { return !item.hidden; });
    if (left.length === 1) left[0].querySelector("a[data-saved-reply]").click();
  });

  function savedFilesChoice(form, reply) {
    var holder = form.querySelector("#saved-reply-files");
    holder.textContent = "";
    if (!reply.files.length) return;
    var label = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = "saved_reply";
    box.value = reply.id;
    box.checked = true;
    label.append(box, " Send the files of “" + reply.title + "” with it: " + reply.files.join(", "));
    holder.append(label);
  }

  document.addEventListener("click", function (event) {
    var choice = event.target.closest && event.target.closest("a[data-saved-reply]");
    var form = choice && choice.closest("form.composer");
    if (!form || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    fetch(choice.href, {credentials: "same-origin", headers: {"HX-Request": "true"}})
      .then(function (response) {
        if (!response.ok) throw new Error("failed");
        return response.json();
      })
      .then(function (reply) {
        var box = form.querySelector("#message-text");
        var start = box.selectionStart, end = box.selectionEnd;
        box.value = box.value.slice(0, start) + reply.text + box.value.slice(end);
        box.selectionStart = box.selectionEnd = start + reply.text.length;
        savedFilesChoice(form, reply);
        form.querySelector("details.saved-replies").open = false;
        box.focus();
      })
      .catch(function () {
        form.querySelector("#saved-reply-files").textContent =
          "That saved reply could not be inserted. Check your connection and try again.";
      });
  });

  // Switching feeds. Until the other feed has arrived, this one and its composer are out of use:
  // nothing can be typed or sent into the feed being left. The new feed replaces feed and
  // composer together. What was typed stays with its own feed, for when it is opened again in
  // this page; it never goes into another feed's composer.
  var drafts = {};
  var COMPOSER_CONTROLS = "form.composer textarea, form.composer input[type=file], " +
    "form.composer input[name=send_at], form.composer button";

  function isFeedTab(element) {
    return Boolean(element && element.matches && element.matches('#feed [role="tab"]'));
  }

  function setSwitching(feed, tab) {
    var panel = feed.querySelector(".tab-panel");
    var switching = Boolean(tab);
    feed.classList.toggle("switching", switching);
    panel.inert = switching;
    if (switching) {
      panel.setAttribute("aria-busy", "true");
    } else {
      panel.removeAttribute("aria-busy");
    }
    panel.querySelectorAll(COMPOSER_CONTROLS).forEach(function (control) {
      if (switching && !control.disabled) {
        control.disabled = true;
        control.dataset.switchingDisabled = "1";
      } else if (!switching && control.dataset.switchingDisabled) {
        control.disabled = false;
        delete control.dataset.switchingDisabled;
      }
    });
    feed.querySelector(".feed-switching").textContent =
      switching ? "Opening " + tab.dataset.label + "…" : "";
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var tab = event.detail.elt;
    if (!isFeedTab(tab) || event.defaultPrevented) return;
    var feed = tab.closest("#feed");
    var form = feed.querySelector("form.composer");
    // A send still on its way takes the text with it: its success clears this again below.
    if (form) drafts[form.getAttribute("action")] = form.querySelector("#message-text").value;
    setSwitching(feed, tab);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var tab = event.detail.elt;
    // Still in the page: the other feed did not come (an error, or another tab's click took
    // over), so this one is usable again, its text as it was.
    if (isFeedTab(tab) && document.body.contains(tab)) setSwitching(tab.closest("#feed"), null);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (!event.detail.target || event.detail.target.id !== "feed") return;
    var form = document.querySelector("#feed form.composer");
    if (!form) return;
    var text = form.querySelector("#message-text");
    var draft = drafts[form.getAttribute("action")];
    if (draft && !text.value) text.value = draft;
    if (filesOf(form).length) sync(form);
  });

  // Unsend gives the text back: into its feed's composer, after anything typed there since,
  // and into that feed's draft, in case the answer comes while another feed is open. (The
  // request itself is listened to: htmx reports nothing of a form that has left the page.)
  function giveBack(action, text) {
    if (!text) return;
    var form = document.querySelector("#feed form.composer");
    var box = form && form.getAttribute("action") === action ? form.querySelector("#message-text") : null;
    var current = box ? box.value : drafts[action] || "";
    var combined = current.trim() ? current.replace(/\s+$/, "") + "\n\n" + text : text;
    drafts[action] = combined;
    if (box) {
      box.value = combined;
      box.dataset.focusAfterSwap = "1";  // once the tombstone is in (it takes the focus too)
    }
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("form.unsend")) return;
    var xhr = event.detail.xhr;
    xhr.addEventListener("load", function () {
      if (xhr.status !== 200) return;
      var holder = document.createElement("template");
      holder.innerHTML = xhr.responseText;
      var given = holder.content.querySelector("template.unsent-text");
      if (given) giveBack(given.dataset.action, given.content.textContent);
    });
  });
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll(".messages template.unsent-text").forEach(function (given) {
      given.remove();  // swapped in with the tombstone; its text went back above
    });
    var box = document.querySelector('#message-text[data-focus-after-swap]');
    if (box) {
      delete box.dataset.focusAfterSwap;
      if (!box.disabled) box.focus();
    }
  });

  // Refuse before sending what the server would refuse anyway, and show upload progress.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = composerOf(event.detail.elt);
    if (!form || event.detail.elt !== form) return;
    var problem = problemWith(form, filesOf(form));
    if (problem) {
      event.preventDefault();
      showComposerError(form, problem);
      return;
    }
    // Sent, the fresh composer starts empty: the files chosen go, and so does a draft kept of
    // the text while another feed opened meanwhile. Refused (HX-Retarget), both stay.
    var key = form.getAttribute("action");
    var sending = form.querySelector("#message-text").value;
    var xhr = event.detail.xhr;
    xhr.addEventListener("load", function () {
      if (xhr.status !== 200 || xhr.getResponseHeader("HX-Retarget")) return;
      chosen[key] = [];
      if (drafts[key] === sending) delete drafts[key];
    });
  });
  // Upload progress only (htmx's progress events also count the response coming back).
  document.addEventListener("htmx:beforeSend", function (event) {
    var form = composerOf(event.detail.elt);
    if (!form || event.detail.elt !== form || !filesOf(form).length) return;
    var bar = form.querySelector("#upload-progress");
    event.detail.xhr.upload.addEventListener("progress", function (progress) {
      if (!progress.lengthComputable) return;
      bar.hidden = false;
      bar.value = Math.round((progress.loaded / progress.total) * 100);
    });
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = composerOf(event.detail.elt);
    if (!form || event.detail.elt !== form) return;
    var bar = form.querySelector("#upload-progress");
    if (bar) bar.hidden = true;
  });
  document.addEventListener("htmx:afterSettle", function () {
    // Only a refused send comes back with an error: then the chosen files go into it.
    var form = document.querySelector("#feed form.composer");
    if (form && form.querySelector("#composer-error") && filesOf(form).length &&
        !form.querySelector("#message-files").files.length) {
      sync(form);
    }
  });
})();

// The full photo view: arrow keys step through the message's photos, Escape goes back.
document.addEventListener("keydown", function (event) {
  "use strict";
  if (!document.querySelector(".photo-view") || event.target.closest("input, textarea, select")) return;
  if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
  var link = {
    ArrowLeft: 'a[rel="prev"]', ArrowRight: 'a[rel="next"]', Escape: "#photo-back",
  }[event.key];
  var target = link && document.querySelector(link);
  if (target) {
    event.preventDefault();
    target.click();
  }
});

// Live feeds: the poller asks for what came after the newest message shown. It skips polls
// while the tab is hidden, backs off after failures, and catches up when the tab returns.
(function () {
  "use strict";

  function shownIds() {
    return Array.prototype.map.call(
      document.querySelectorAll("#feed .messages > article.message"),
      function (article) { return Number(article.id.replace("message-", "")); }
    );
  }

  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt.id !== "feed-poller") return;
    var ids = shownIds();
    event.detail.parameters.after = ids.length ? Math.max.apply(null, ids) : 0;
    event.detail.parameters.oldest = ids.length ? Math.min.apply(null, ids) : 0;
  });

  // Other pollers (the unread badge) simply wait while the tab is hidden.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt.hasAttribute("data-poll") && document.hidden) event.preventDefault();
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var poller = event.detail.elt;
    if (poller.id !== "feed-poller") return;
    var failures = Number(poller.dataset.pollFailures || 0);
    var skip = Number(poller.dataset.pollSkip || 0);
    if (document.hidden || skip > 0) {
      poller.dataset.pollSkip = String(Math.max(skip - 1, 0));
      event.preventDefault();
      return;
    }
    poller.dataset.pollSkip = String(Math.min(Math.pow(2, failures) - 1, 30));
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var poller = event.detail.elt;
    if (poller.id !== "feed-poller") return;
    if (event.detail.successful) {
      poller.dataset.pollFailures = "0";
      poller.dataset.pollSkip = "0";
    } else {
      poller.dataset.pollFailures = String(Number(poller.dataset.pollFailures || 0) + 1);
    }
  });

  // Someone else's message may arrive while one's own send is on its way: never show it twice.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var fragment = event.detail.fragment;
    if (!fragment || !event.detail.target || !event.detail.target.classList.contains("messages")) return;
    fragment.querySelectorAll("article.message").forEach(function (article) {
      if (document.getElementById(article.id)) article.remove();
    });
  });

  // Polls send a deletion again for a while (portal/feeds/routes.py): a tombstone already in
  // place stays as it is, rather than being replaced under the reader.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.matches("article.message.deleted")) event.detail.shouldSwap = false;
  });

  // And a poll may bring one's own message before the send's answer does: the older copy goes.
  document.addEventListener("htmx:afterSwap", function (event) {
    var list = event.detail.target;
    if (!list || !list.classList.contains("messages")) return;
    var shown = {};
    var articles = list.querySelectorAll(":scope > article.message");
    for (var i = articles.length - 1; i >= 0; i--) {
      if (shown[articles[i].id]) articles[i].remove();
      shown[articles[i].id] = true;
    }
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && document.getElementById("feed-poller")) {
      htmx.trigger(document.body, "poll-now");
    }
  });
})();

// Unsend: the seconds left count down beside it; at the end Delete takes its place.
(function () {
  "use strict";

  // The seconds count from when the form arrived, a second early: the portal's clock decides,
  // and a click takes time to get there.
  function start(root) {
    var forms = Array.prototype.slice.call(root.querySelectorAll("form.unsend[data-unsend-seconds]"));
    if (root.matches && root.matches("form.unsend[data-unsend-seconds]")) forms.push(root);
    forms.forEach(function (form) {
      if (!form.dataset.deadline) {
        form.dataset.deadline = String(Date.now() + (Number(form.dataset.unsendSeconds) - 1) * 1000);
      }
    });
  }

  function tick() {
    start(document);
    document.querySelectorAll("form.unsend[data-deadline]").forEach(function (form) {
      var left = Math.ceil((Number(form.dataset.deadline) - Date.now()) / 1000);
      if (left > 0) {
        form.querySelector(".unsend-left").textContent = left + " s left · nobody notified yet";
        return;
      }
      var remove = form.parentElement.querySelector("[data-after-unsend]");
      var hadFocus = form.contains(document.activeElement);
      form.remove();
      if (remove) {
        remove.hidden = false;
        if (hadFocus) remove.focus();
      }
    });
  }

  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:load", function (event) { start(event.detail.elt); });
})();

// Logging out also turns off app notifications on this device, so that on a shared computer
// the next person does not see the previous one's. Logging out never waits on it for long.
document.addEventListener("submit", function (event) {
  "use strict";
  var form = event.target;
  if (!form.matches("form[data-logout]") || form.dataset.pushDone) return;
  if (!("serviceWorker" in navigator) || !window.fetch) return;
  event.preventDefault();
  form.dataset.pushDone = "1";
  var token = form.querySelector('input[name="csrf_token"]').value;
  var finished = false;
  var finish = function () {
    if (!finished) form.submit();
    finished = true;
  };
  setTimeout(finish, 1500);
  navigator.serviceWorker.getRegistration()
    .then(function (registration) {
      return registration && registration.pushManager.getSubscription();
    })
    .then(function (subscription) {
      if (!subscription) return null;
      return fetch(form.dataset.unsubscribeUrl, {
        method: "POST", credentials: "same-origin", keepalive: true,
        headers: {"Content-Type": "application/json", "X-CSRFToken": token},
        body: JSON.stringify({endpoint: subscription.endpoint}),
      }).then(function () { return subscription.unsubscribe(); });
    })
    .catch(function () { return null; })
    .then(finish);
});

// The phone's menu: the button folds and unfolds it; Escape folds it and gives the button back
// its focus. Wider screens always show it whole.
(function () {
  "use strict";
  var button = document.getElementById("menu-button");
  if (!button) return;
  var bar = button.closest(".topbar");
  button.hidden = false;
  // The phone's bar folds the menu only now that its button works (portal.css).
  document.documentElement.classList.add("menu-ready");

  function setOpen(open) {
    bar.classList.toggle("menu-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
  }

  button.addEventListener("click", function () {
    setOpen(button.getAttribute("aria-expanded") !== "true");
  });
  bar.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && bar.classList.contains("menu-open")) {
      setOpen(false);
      button.focus();
    }
  });
  window.matchMedia("(max-width: 760px)").addEventListener("change", function (event) {
    if (!event.matches) setOpen(false);
  });
})();

// A visit's report: sent with its photos' upload progress. When sending fails (no signal, an
// error), the note, the checklist and the photos stay in the page and it says so; sending
// again is safe: the form's send key makes a repeat the same report. Start visit asks the
// phone where it is only when the business records it (and goes without it if refused).
(function () {
  "use strict";
  var NO_SIGNAL = "Not sent: no connection. Your note, checklist and photos are still here: " +
    "press the button again when you have signal.";

  function send(form, submitter) {
    var said = form.querySelector(".report-said");
    var bar = form.querySelector(".upload-progress");
    var buttons = form.querySelectorAll("button[type=submit]");
    var data = new FormData(form);
    if (submitter && submitter.name) data.append(submitter.name, submitter.value);
    var xhr = new XMLHttpRequest();
    function settle(words) {
      buttons.forEach(function (button) { button.disabled = false; });
      bar.hidden = true;
      said.textContent = words;
    }
    buttons.forEach(function (button) { button.disabled = true; });
    said.textContent = "Sending…";
    // getAttribute: the form's "action" button would shadow form.action.
    xhr.open("POST", form.getAttribute("action"));
    xhr.setRequestHeader("X-Report-Form", "1");
    xhr.timeout = 120000;
    xhr.upload.addEventListener("progress", function (progress) {
      if (!progress.lengthComputable) return;
      bar.hidden = false;
      bar.value = Math.round((progress.loaded / progress.total) * 100);
    });
    xhr.addEventListener("load", function () {
      var sent = xhr.getResponseHeader("Report-Location");
      if (xhr.status >= 200 && xhr.status < 300 && sent) {
        window.location.assign(sent);  // the feed, at the report
      } else if (xhr.status >= 200 && xhr.status < 300) {
        // Another page answered (the login page, the session having ended): not sent.
        settle("Not sent: you were logged out. Log in again in another tab, then press the " +
               "button again: your note, checklist and photos are still here.");
      } else if (xhr.status === 422 || xhr.status === 429) {
        // Refused (a photo the portal cannot take, say): why, with the report kept as it is.
        var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
        var why = Array.prototype.map.call(page.querySelectorAll("main .field-error"),
                                           function (error) { return error.textContent.trim(); });
        settle("Not sent: " + (why.join(" ") || "the portal refused it.") + " Your note, " +
               "checklist and photos are still here: change what it says, then press again.");
      } else {
        settle("Not sent: the portal answered with an error (" + xhr.status + "). Your " +
               "note, checklist and photos are still here: press the button again.");
      }
    });
    xhr.addEventListener("error", function () { settle(NO_SIGNAL); });
    xhr.addEventListener("timeout", function () { settle(NO_SIGNAL); });
    xhr.send(data);
  }

  // Which button sent the form, for browsers without SubmitEvent.submitter.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("form[data-report-form] button[type=submit]");
    if (button) button.form.lastSubmitter = button;
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("form[data-report-form]") && window.FormData) {
      event.preventDefault();
      send(form, event.submitter || form.lastSubmitter);
    } else if (form.matches("form[data-record-location]") && navigator.geolocation &&
               !form.dataset.located) {
      event.preventDefault();
      var go = function () { form.dataset.located = "1"; form.requestSubmit(); };
      navigator.geolocation.getCurrentPosition(function (position) {
        form.elements.latitude.value = position.coords.latitude;
        form.elements.longitude.value = position.coords.longitude;
        go();
      }, go, {timeout: 8000, maximumAge: 60000});
    }
  });
})();
