// New campaign / Configure: the schedule's live preview, the schedule kind and channel switches, copy buttons.
// Plain JavaScript, no library: served from the plugin's package.
(function () {
  "use strict";

  function each(selector, callback, root) {
    Array.prototype.forEach.call((root || document).querySelectorAll(selector), callback);
  }

  // Copy buttons: <button data-copy-target="id of a <pre>">.
  each("button[data-copy-target]", function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copyTarget);
      if (!source) { return; }
      var done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.textContent).then(done, function () { select(source); });
      } else {
        select(source);
        try { document.execCommand("copy"); done(); } catch (error) { /* selected: the user copies */ }
      }
    });
  });

  function select(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  var form = document.getElementById("cr-definition");
  if (!form) { return; }
  var elements = form.elements;

  function slot(name) { return form.querySelector('[data-slot="' + name + '"]'); }

  function mode() {
    var checked = form.querySelector('input[name="schedule.mode"]:checked');
    return checked ? checked.value : "cron";
  }

  function showMode() {
    var current = mode();
    slot("schedule.cron").hidden = current !== "cron";
    slot("schedule.preset").hidden = current !== "preset";
  }

  each("input[data-channel-toggle]", function (toggle) {
    toggle.addEventListener("change", function () {
      document.getElementById("cr-channel-" + toggle.dataset.channelToggle).dataset.enabled = toggle.checked ? "on" : "";
    });
  });

  var description = document.getElementById("cr-preview-description");
  var table = document.getElementById("cr-preview-times");
  var zone = document.getElementById("cr-preview-zone");
  var asked = 0;

  function showPreview(data, ok) {
    var body = table.querySelector("tbody");
    body.textContent = "";
    description.className = ok ? "" : "cr-error";
    description.textContent = ok ? data.description : (data.detail || "The schedule cannot be previewed.");
    description.dataset.state = ok ? "ok" : "error";
    var times = ok ? data.times : [];
    var oneZone = ok && data.one_zone;  // the campaign's zone is UTC: one column, not "In UTC | In UTC"
    document.getElementById("cr-preview-local").hidden = oneZone;
    times.forEach(function (time, index) {
      var row = document.createElement("tr");
      (oneZone ? [String(index + 1), time.utc] : [String(index + 1), time.local, time.utc]).forEach(function (value) {
        var cell = document.createElement("td");
        cell.textContent = value;
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    zone.textContent = ok ? data.timezone : "the campaign's timezone";
    table.hidden = times.length === 0;
  }

  function preview() {
    var number = ++asked;
    var query = new URLSearchParams({
      mode: mode(),
      cron: elements["schedule.cron"].value,
      preset: elements["schedule.preset"].value,
      timezone: elements["schedule.timezone"].value
    });
    fetch(form.dataset.previewUrl + "?" + query.toString(), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (data) { return {ok: response.ok, data: data}; });
      })
      .then(function (answer) { if (number === asked) { showPreview(answer.data, answer.ok); } })
      .catch(function () { /* offline or logged out: the save still validates */ });
  }

  var timer = null;
  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(preview, 250);
  }

  ["schedule.cron", "schedule.timezone", "schedule.preset"].forEach(function (name) {
    elements[name].addEventListener("input", later);
    elements[name].addEventListener("change", later);
  });
  each('input[name="schedule.mode"]', function (radio) {
    radio.addEventListener("change", function () { showMode(); later(); });
  });
  showMode();
  preview();
})();
