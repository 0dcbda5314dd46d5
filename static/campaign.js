/* The send pages, enhanced: without this script every page works (forms post, the progress
   page refreshes itself through <noscript>). With it, the progress page asks for its numbers
   every 2 seconds and updates in place, Pause and Continue answer without a reload, and the
   send form shows the time fields only when "Schedule" is chosen. */
(function () {
  "use strict";

  var POLL_MS = 2000;

  function each(selector, callback, root) {
    Array.prototype.forEach.call((root || document).querySelectorAll(selector), callback);
  }

  function formatted(value) {
    return typeof value === "number" ? value.toLocaleString("en-US") : String(value);
  }

  /* --- The send form: the time fields belong to "Schedule" ------------------------------ */

  function enhanceSendForm(form) {
    var schedule = form.querySelector("[data-schedule]");
    if (!schedule) {
      return;
    }
    function update() {
      var later = form.querySelector("input[name=when][value=later]");
      schedule.hidden = !(later && later.checked);
    }
    each("input[name=when]", function (radio) {
      radio.addEventListener("change", update);
    }, form);
    update();
  }

  /* --- The progress page ---------------------------------------------------------------- */

  function ProgressPage(root) {
    this.root = root;
    this.url = root.getAttribute("data-progress-url");
    this.finished = root.getAttribute("data-finished") === "1";
    this.timer = null;
  }

  ProgressPage.prototype.apply = function (data) {
    each("[data-field]", function (element) {
      var name = element.getAttribute("data-field");
      if (!(name in data) || name === "message") {
        return;
      }
      var value = data[name];
      if (name === "paused_reason") {
        element.hidden = !value;
      }
      if (value === "" && element.hasAttribute("data-empty")) {
        value = element.getAttribute("data-empty");
      }
      element.textContent = formatted(value);
      if (name === "status_label") {
        element.className = "status status-" + data.status;
      }
    }, this.root);
    var bar = this.root.querySelector("progress");
    if (bar) {
      bar.max = data.total || 1;
      bar.value = data.total ? data.settled : (data.finished ? 1 : 0);
      bar.textContent = data.percent + "%";
    }
    each("[data-action]", function (element) {
      element.hidden = data.actions.indexOf(element.getAttribute("data-action")) < 0;
    }, this.root);
    this.root.setAttribute("data-status", data.status);
    /* A send that ended while the page was open: load the page again for its report. */
    if (data.finished && !this.finished) {
      this.finished = true;
      window.location.reload();
    }
  };

  ProgressPage.prototype.say = function (message) {
    var line = this.root.querySelector("[data-field=message]");
    if (line) {
      line.textContent = message || "";
    }
  };

  ProgressPage.prototype.fetchJson = function (url, options) {
    options = options || {};
    options.credentials = "same-origin";
    options.cache = "no-store";
    options.headers = { Accept: "application/json" };
    return window.fetch(url, options).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (!response.ok || type.indexOf("application/json") < 0) {
        throw new Error("no progress (" + response.status + ")");
      }
      return response.json();
    });
  };

  ProgressPage.prototype.poll = function () {
    var page = this;
    page.timer = null;
    page.fetchJson(page.url).then(function (data) {
      page.apply(data);
    }).catch(function () {
      /* A lost connection or an expired login: try again at the next tick. */
    }).then(function () {
      if (!page.finished) {
        page.schedule();
      }
    });
  };

  ProgressPage.prototype.schedule = function () {
    var page = this;
    if (page.timer === null) {
      page.timer = window.setTimeout(function () { page.poll(); }, POLL_MS);
    }
  };

  ProgressPage.prototype.enhanceButton = function (form) {
    var page = this;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      if (button) {
        button.disabled = true;
      }
      page.fetchJson(form.action, { method: "POST", body: new FormData(form) }).then(function (data) {
        page.apply(data);
        page.say(data.message);
      }).catch(function () {
        /* Without an answer the ordinary post still works, and shows the outcome. */
        form.submit();
      }).then(function () {
        if (button) {
          button.disabled = false;
        }
      });
    });
  };

  ProgressPage.prototype.start = function () {
    var page = this;
    each("form[data-enhance]", function (form) { page.enhanceButton(form); }, page.root);
    if (!page.finished) {
      page.schedule();
    }
  };

  document.addEventListener("DOMContentLoaded", function () {
    each("form[data-send-form]", enhanceSendForm);
    var root = document.querySelector("[data-progress-url]");
    if (root && window.fetch && window.FormData) {
      new ProgressPage(root).start();
    }
  });
}());
