// The login page: posts the token once and gets a session cookie back. A token in the URL
// fragment (#token=...) is taken from there and wiped from the address bar and history at once:
// fragments are never sent to the server, so the token reaches no access log.
"use strict";
(function () {
  const form = document.getElementById("login");
  const input = document.getElementById("token");
  const out = document.getElementById("login-error");

  async function login(token) {
    out.textContent = "";
    const body = new URLSearchParams({ token: token });
    let resp;
    try {
      resp = await fetch("/ui/login", { method: "POST", body: body, credentials: "same-origin" });
    } catch (e) {
      out.textContent = "cannot reach the agent: " + e;
      return;
    }
    if (resp.ok) {
      window.location.replace("/ui/");
      return;
    }
    let msg = resp.status + " " + resp.statusText;
    try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
    out.textContent = msg;
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    login(input.value.trim());
  });

  const frag = new URLSearchParams(window.location.hash.slice(1));
  const tok = frag.get("token");
  if (tok) {
    history.replaceState(null, "", window.location.pathname);
    login(tok);
  }
})();
