// countersign: the browser half of the passkey (WebAuthn) ceremonies, served as
// /passkeys.js. No library and no other host: the server's JSON options carry binary
// fields as base64url text, which navigator.credentials wants as ArrayBuffers, and the
// credential it answers goes back as JSON with base64url fields again.
//
// Elements it acts on (the pages render them; nothing here runs without them):
// - [data-passkey-login]: a button, "Sign in with a passkey" (login page);
// - [data-passkey-mfa]: a button, "Use a passkey" (the second-factor page);
// - [data-passkey-register]: a form with a `name` field, "Add a passkey" (security page);
// - [data-passkey-rename] forms (a `name` field) and [data-passkey-remove] buttons, each
//   with the passkey's id as the attribute's value (security page);
// - [data-passkey-code]: a field for the current code that adding and removing a passkey
//   send along when the page asks for one (security page).
// Each sits inside a [data-passkeys] element that holds the CSRF token (data-csrf), the
// URL to go to after a sign-in (data-return-to), and a [data-passkey-status] element
// for messages.
(() => {
  "use strict";

  const toBuffer = (text) => {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(b64 + "===".slice((b64.length + 3) % 4));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  };

  const toText = (buffer) => {
    if (!buffer) return null;
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  const withIds = (list) => (list || []).map((c) => ({ ...c, id: toBuffer(c.id) }));

  const creationOptions = (options) => {
    const pk = { ...options.publicKey };
    pk.challenge = toBuffer(pk.challenge);
    pk.user = { ...pk.user, id: toBuffer(pk.user.id) };
    if (pk.excludeCredentials) pk.excludeCredentials = withIds(pk.excludeCredentials);
    return { publicKey: pk };
  };

  const requestOptions = (options) => {
    const pk = { ...options.publicKey };
    pk.challenge = toBuffer(pk.challenge);
    if (pk.allowCredentials) pk.allowCredentials = withIds(pk.allowCredentials);
    return { publicKey: pk };
  };

  const registrationJSON = (credential) => ({
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: toText(credential.response.attestationObject),
      clientDataJSON: toText(credential.response.clientDataJSON),
      transports: credential.response.getTransports ? credential.response.getTransports() : [],
    },
    extensions: credential.getClientExtensionResults(),
  });

  const assertionJSON = (credential) => ({
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    response: {
      authenticatorData: toText(credential.response.authenticatorData),
      clientDataJSON: toText(credential.response.clientDataJSON),
      signature: toText(credential.response.signature),
      userHandle: toText(credential.response.userHandle),
    },
    extensions: credential.getClientExtensionResults(),
  });

  const call = async (method, url, csrf, body) => {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-CSRF-Token": csrf,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let answer = {};
    try {
      answer = await response.json();
    } catch (_) {
      // 204, or not JSON: nothing to read.
    }
    if (!response.ok) {
      throw new Error(answer.message || `The server answered ${response.status}.`);
    }
    return answer;
  };

  const explain = (error) => {
    if (error && error.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This authenticator already holds a passkey for this account.";
    }
    return (error && error.message) || "Something went wrong.";
  };

  const contextOf = (element) => {
    const box = element.closest("[data-passkeys]");
    const status = box && box.querySelector("[data-passkey-status]");
    const code = box && box.querySelector("[data-passkey-code]");
    return {
      csrf: (box && box.dataset.csrf) || "",
      // The step-up code, when the page asks for one and it was typed.
      withCode: (body) => (code && code.value.trim() ? { ...body, code: code.value.trim() } : body),
      returnTo: (box && box.dataset.returnTo) || "/",
      say: (text, failed) => {
        if (!status) return;
        status.textContent = text;
        status.hidden = !text;
        status.className = failed ? "error" : "notice";
      },
    };
  };

  // The sign-in buttons: ask, assert, follow the answer.
  const signIn = (button, begin, finish) => {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const ctx = contextOf(button);
      button.disabled = true;
      ctx.say("", false);
      try {
        const started = await call("POST", begin, ctx.csrf, {});
        const credential = await navigator.credentials.get(requestOptions(started.options));
        await call("POST", finish, ctx.csrf, {
          state: started.state,
          credential: assertionJSON(credential),
        });
        window.location.assign(ctx.returnTo);
      } catch (error) {
        ctx.say(explain(error), true);
        button.disabled = false;
      }
    });
  };

  const register = (form) => {
    form.hidden = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const ctx = contextOf(form);
      const submit = form.querySelector("button");
      if (submit) submit.disabled = true;
      ctx.say("", false);
      try {
        const started = await call("POST", "/api/account/passkeys/register/begin", ctx.csrf, ctx.withCode({}));
        const credential = await navigator.credentials.create(creationOptions(started.options));
        const done = await call("POST", "/api/account/passkeys/register/finish", ctx.csrf, {
          state: started.state,
          credential: registrationJSON(credential),
          name: form.elements.name.value || "Passkey",
        });
        const codes = document.querySelector("[data-passkey-codes]");
        if (done.recovery_codes && codes) {
          const list = codes.querySelector("ol") || codes.appendChild(document.createElement("ol"));
          list.replaceChildren(...done.recovery_codes.map((code) => {
            const item = document.createElement("li");
            const text = document.createElement("code");
            text.textContent = code;
            item.appendChild(text);
            return item;
          }));
          codes.hidden = false;
          ctx.say(`Passkey "${done.passkey.name}" added. Keep these recovery codes somewhere safe: they are shown once.`, false);
        } else {
          window.location.reload();
        }
      } catch (error) {
        ctx.say(explain(error), true);
      } finally {
        if (submit) submit.disabled = false;
      }
    });
  };

  const manage = (element, act) => {
    element.addEventListener(element.tagName === "FORM" ? "submit" : "click", async (event) => {
      event.preventDefault();
      const ctx = contextOf(element);
      try {
        await act(ctx);
        window.location.reload();
      } catch (error) {
        ctx.say(explain(error), true);
      }
    });
  };

  const supported = !!(window.PublicKeyCredential && navigator.credentials);
  const ready = () => {
    if (!supported) {
      document.querySelectorAll("[data-passkey-unsupported]").forEach((e) => { e.hidden = false; });
    } else {
      document.querySelectorAll("[data-passkey-login]").forEach((b) =>
        signIn(b, "/api/passkey/login/begin", "/api/passkey/login/finish"));
      document.querySelectorAll("[data-passkey-mfa]").forEach((b) =>
        signIn(b, "/login/mfa/passkey/begin", "/login/mfa/passkey"));
      document.querySelectorAll("[data-passkey-register]").forEach(register);
    }
    document.querySelectorAll("[data-passkey-rename]").forEach((form) =>
      manage(form, (ctx) => call("PATCH",
        `/api/account/passkeys/${encodeURIComponent(form.dataset.passkeyRename)}`,
        ctx.csrf, { name: form.elements.name.value })));
    document.querySelectorAll("[data-passkey-remove]").forEach((button) =>
      manage(button, (ctx) => call("DELETE",
        `/api/account/passkeys/${encodeURIComponent(button.dataset.passkeyRemove)}`,
        ctx.csrf, ctx.withCode({}))));
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
