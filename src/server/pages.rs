//! The demo web pages, modelled on Azure MFA's "Additional security
//! verification": an enrollment page that shows the QR code with the Code and
//! URL under it, and a sign-in page with "Contact me" (a push, the number to
//! type, then the outcome) or "Use verification code". Plain server-rendered
//! HTML; the only script polls the sign-in's status. Served on loopback by
//! default, or with `demo_pages = true`.

use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::api::{self, Failure, SigninRequest};
use super::{AppState, now};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/enroll", get(enroll_form).post(enroll))
        .route("/demo", get(demo_form))
        .route("/demo/push", post(demo_push))
        .route("/demo/status/{id}", get(demo_status))
        .route("/demo/code", post(demo_code))
}

/// Text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — Countersign</title>
<style>
body {{ font-family: "Segoe UI", system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }}
h1 {{ font-weight: 400; font-size: 1.6rem; }}
.box {{ border: 1px solid #ccc; padding: 1rem 1.25rem; margin: 1rem 0; }}
button {{ background: #0067b8; color: #fff; border: 0; padding: .5rem 1.25rem; font-size: 1rem; cursor: pointer; }}
button.secondary {{ background: #e0e0e0; color: #1b1b1b; }}
input {{ font-size: 1rem; padding: .4rem; }}
.number {{ font-size: 3rem; letter-spacing: .2rem; }}
.error {{ color: #a80000; }} .ok {{ color: #107c10; }}
dt {{ font-weight: 600; }} code {{ font-size: 1.1rem; }}
</style></head><body><h1>{title}</h1>
{body}
</body></html>"#,
        title = escape(title)
    ))
}

async fn index() -> Html<String> {
    page("Countersign server", r#"<p><a href="/enroll">Configure mobile app</a> (enroll the Countersign app)</p><p><a href="/demo">Demo sign-in</a></p>"#)
}

async fn enroll_form() -> Html<String> {
    page(
        "Additional security verification",
        r#"<p>Secure your account by adding phone verification to your password.</p>
<form method="post" action="/enroll" class="box">
<p><label>User name <input name="user" id="user" autocomplete="username" required></label></p>
<p>How should we contact you? <b>Mobile app</b></p>
<p><label><input type="radio" name="mode" value="notifications" checked> Receive notifications for verification</label><br>
<label><input type="radio" name="mode" value="code"> Use verification code</label></p>
<button id="setup" type="submit">Set up</button></form>"#,
    )
}

#[derive(Deserialize)]
struct UserForm {
    user: String,
}

/// Creates the user if needed (a demo convenience) and a fresh activation.
async fn enroll(State(state): State<AppState>, Form(form): Form<UserForm>) -> Response {
    let user = form.user.trim().to_owned();
    if user.is_empty() || user.len() > 128 {
        return page("Additional security verification", r#"<p class="error">Enter a user name.</p><p><a href="/enroll">Back</a></p>"#).into_response();
    }
    // Anyone reaching the page could otherwise enroll a device for an
    // existing user and receive their requests: only users with no device
    // yet are enrolled here; others need an administrator.
    let enrolled = match state.store.devices_of(&user).await {
        Ok(devices) => !devices.is_empty(),
        Err(error) => return Failure::from(error).into_response(),
    };
    if enrolled {
        return page("Additional security verification", &format!(r#"<p class="error" id="enrolled">{} already has a device. To add another, ask an administrator (<code>countersign-server activate NAME</code>).</p>"#, escape(&user))).into_response();
    }
    let created = async {
        if !state.store.user_exists(&user).await? {
            state.store.add_user(&user, &state.config.organization, now()).await?;
        }
        api::new_activation(&state, &user).await
    };
    match created.await {
        Ok(activation) => page(
            "Configure mobile app",
            &format!(
                r#"<p>Complete the following steps to configure your mobile app.</p>
<ol><li>Install the Countersign app.</li>
<li>In the app, add an account and choose "Work or school account".</li>
<li>Scan the image below.</li></ol>
<div class="box"><img id="qr" alt="Activation QR code" width="240" height="240" src="data:image/png;base64,{png}">
<p>If you are unable to scan the image, enter the following information in your app.</p>
<dl><dt>Code:</dt><dd><code id="code">{code}</code></dd><dt>URL:</dt><dd><code id="url">{url}</code></dd></dl></div>
<p>The code is valid for 10 minutes and can be used once. When the app shows the account, <a href="/demo">try a sign-in</a>.</p>"#,
                png = activation.qr_png_base64,
                code = escape(&activation.code),
                url = escape(&activation.url)
            ),
        )
        .into_response(),
        Err(failure) => failure.into_response(),
    }
}

async fn demo_form() -> Html<String> {
    page(
        "Sign in",
        r#"<form method="post" action="/demo/push" class="box">
<p><label>User name <input name="user" id="user" autocomplete="username" required></label></p>
<p><button id="contact" type="submit">Contact me</button>
<button id="use-code" class="secondary" type="submit" formaction="/demo/code">Use verification code</button></p></form>"#,
    )
}

/// "Contact me": push, show the number, and poll for the outcome.
async fn demo_push(State(state): State<AppState>, Form(form): Form<UserForm>) -> Response {
    let request = SigninRequest { user: form.user.trim().into(), app: "Countersign demo sign-in".into(), ip: "127.0.0.1".into(), location: "This computer".into() };
    match api::create_signin(&state, request).await {
        Ok(created) => {
            let number = created.number.map(|n| format!(r#"<p>Enter the number shown to sign in.</p><p class="number" id="number">{n}</p>"#)).unwrap_or_default();
            page(
                "Approve sign-in request",
                &format!(
                    r#"<div class="box">{number}<p id="status">We've sent a notification to your Countersign app. Waiting for your answer…</p></div>
<script>
const messages = {{ approved: ["ok", "Approved. You are signed in."], denied: ["error", "Denied. You are not signed in."],
  reported: ["error", "Reported as not you. Further requests are blocked for a while."], expired: ["error", "The request expired. Try again."] }};
async function poll() {{
  for (let i = 0; i < 20; i++) {{
    const response = await fetch("/demo/status/{id}?wait=25");
    const body = await response.json();
    if (body.status !== "pending") {{
      const [cls, text] = messages[body.status] || ["error", body.status];
      const el = document.getElementById("status"); el.className = cls; el.textContent = text; el.dataset.status = body.status; return;
    }}
  }}
}}
poll();
</script>"#,
                    id = escape(&created.id)
                ),
            )
            .into_response()
        }
        Err(Failure::NotFound(_)) => page("Sign in", r#"<p class="error">No such user: enroll first.</p><p><a href="/enroll">Configure mobile app</a></p>"#).into_response(),
        Err(Failure::Blocked(_)) => page("Sign in", r#"<p class="error" id="blocked">Sign-in requests for this user are blocked for a while because one was reported as not theirs.</p>"#).into_response(),
        Err(failure) => failure.into_response(),
    }
}

async fn demo_status(State(state): State<AppState>, Path(id): Path<String>, axum::extract::Query(wait): axum::extract::Query<api::Wait>) -> Response {
    match api::wait_for(&state, &id, wait.wait).await {
        Ok(status) => Json(status).into_response(),
        Err(failure) => failure.into_response(),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    user: String,
    #[serde(default)]
    code: Option<String>,
}

/// "Use verification code": the box and Verify, then the verdict.
async fn demo_code(State(state): State<AppState>, Form(form): Form<CodeForm>) -> Response {
    let user = escape(form.user.trim());
    let form_html = format!(
        r#"<form method="post" action="/demo/code" class="box"><input type="hidden" name="user" value="{user}">
<p>Enter the code displayed in your Countersign app.</p><p><input name="code" id="code" inputmode="numeric" autocomplete="one-time-code" required>
<button id="verify" type="submit">Verify</button></p></form>"#
    );
    let Some(code) = form.code else { return page("Enter code", &form_html).into_response() };
    match api::check_totp(&state, &form.user, &code).await {
        Ok(true) => page("Enter code", r#"<p class="ok" id="result">Verified. You are signed in.</p>"#).into_response(),
        Ok(false) => page("Enter code", &format!(r#"<p class="error" id="result">That code is not right, or was already used. Try the next one.</p>{form_html}"#)).into_response(),
        Err(failure) => failure.into_response(),
    }
}
