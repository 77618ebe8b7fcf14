//! The demo web pages, modelled on Azure MFA's "Additional security
//! verification": an enrollment page that shows the QR code with the Code and
//! URL under it, and a sign-in page with "Contact me" (by the user's default
//! method: a push with the number to type, a text's code to type, a call to
//! answer with #, or the app's code; "Sign in another way" offers the
//! user's others) or "Use verification code". Plain server-rendered
//! HTML; the only script polls the sign-in's status. Served on loopback by
//! default, or with `demo_pages = true`.
//!
//! The pages enroll users and send pushes without a login, so other sites
//! must not drive them: every request must name this server in `Host`
//! (a loopback name, or `public_url`'s host: DNS rebinding fails), every
//! form post must come from this origin (`Origin`, else `Sec-Fetch-Site`)
//! and carry the form's token, pages are never cached or framed, and
//! "Contact me" sends at most 5 pushes per user and 10 per address a minute.
//! App passwords are listed and revoked on the page only after a right code
//! from the user's app (a signed grant then lasts 10 minutes); made there
//! only with `app_passwords_on_pages`, since the pages have no first factor
//! and anyone may enroll a device for a user who has none.

use axum::extract::{Form, Path, Request, State};
use axum::http::{self, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state, map_response};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;

use super::api::{self, Failure, SigninRequest, TotpVerdict};
use super::guard::{self, Client};
use super::limits::Refusal;
use super::methods::Method;
use super::{AppState, now};
use crate::push::Status;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/enroll", get(enroll_form).post(enroll))
        .route("/demo", get(demo_form))
        .route("/demo/push", post(demo_push))
        .route("/demo/status/{id}", get(demo_status))
        .route("/demo/code", post(demo_code))
        .route("/demo/signin-code", post(demo_signin_code))
        .route("/app-passwords", get(app_passwords_form).post(app_passwords))
        .route("/app-passwords/revoke", post(app_password_revoke))
        .route_layer(from_fn_with_state(state.clone(), same_site))
        .layer(map_response(never_cached_or_framed))
}

/// Host names the pages answer to: loopback, and the public URL's host.
fn host_allowed(state: &AppState, host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, port)| if port.chars().all(|c| c.is_ascii_digit()) { name } else { host }),
    };
    let public = state
        .config
        .public_url
        .as_deref()
        .and_then(|url| url.split_once("://"))
        .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or(""));
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || public.is_some_and(|public| !public.is_empty() && name.eq_ignore_ascii_case(public))
}

/// Refuses requests for another host name, and posts from another origin.
async fn same_site(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Owned copies: a borrow of the request (its body is not Sync) must not
    // live across the await below.
    let headers = request.headers().clone();
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
    let host = header("host");
    if !host_allowed(&state, &host) {
        return Failure::Forbidden("the demo pages answer only to this server's own name".into()).into_response();
    }
    if request.method() == http::Method::POST {
        let origin = header("origin");
        // Browsers send "null" for some same-site posts (privacy modes):
        // then their Sec-Fetch-Site says where the form came from.
        let same_origin = if origin.is_empty() || origin == "null" {
            matches!(header("sec-fetch-site").as_str(), "" | "same-origin" | "none")
        } else {
            origin.split_once("://").is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(&host))
        };
        if !same_origin {
            let client = guard::client(&request);
            state.audit.refused(Refusal::Unauthorized, client, "a demo form posted from another site");
            return Failure::Forbidden("this form was sent from another site".into()).into_response();
        }
    }
    next.run(request).await
}

async fn never_cached_or_framed(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The hidden field every form carries: only this server's pages know it.
fn token_field(state: &AppState) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, state.form_token)
}

fn token_ok(state: &AppState, given: &str) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), state.form_token.as_bytes()))
}

fn expired_form(back: &str) -> Response {
    let mut response = page(
        "Additional security verification",
        &format!(r#"<p class="error" id="expired">This form has expired. <a href="{back}">Open it again</a>.</p>"#),
    )
    .into_response();
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
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
h2 {{ font-weight: 400; font-size: 1.25rem; margin-top: 2rem; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: .35rem .75rem .35rem 0; border-bottom: 1px solid #e0e0e0; }}
.secret {{ font-size: 1.6rem; letter-spacing: .1rem; }}
#other-ways form {{ margin: .5rem 0; }}
</style></head><body><h1>{title}</h1>
{body}
</body></html>"#,
        title = escape(title)
    ))
}

async fn index() -> Html<String> {
    page(
        "Countersign server",
        r#"<p><a href="/enroll">Configure mobile app</a> (enroll the Countersign app)</p><p><a href="/demo">Demo sign-in</a></p>"#,
    )
}

async fn enroll_form(State(state): State<AppState>) -> Html<String> {
    page(
        "Additional security verification",
        &format!(
            r#"<p>Secure your account by adding phone verification to your password.</p>
<form method="post" action="/enroll" class="box">{token}
<p><label>User name <input name="user" id="user" autocomplete="username" required></label></p>
<p>How should we contact you? <b>Mobile app</b></p>
<p><label><input type="radio" name="mode" value="notifications" checked> Receive notifications for verification</label><br>
<label><input type="radio" name="mode" value="code"> Use verification code</label></p>
<button id="setup" type="submit">Set up</button></form>"#,
            token = token_field(&state)
        ),
    )
}

#[derive(Deserialize)]
struct UserForm {
    user: String,
    #[serde(default)]
    csrf: String,
}

/// Creates the user if needed (a demo convenience) and a fresh activation.
async fn enroll(State(state): State<AppState>, Form(form): Form<UserForm>) -> Response {
    if !token_ok(&state, &form.csrf) {
        return expired_form("/enroll");
    }
    let user = form.user.trim().to_owned();
    if user.is_empty() || user.len() > 128 {
        return page("Additional security verification", r#"<p class="error">Enter a user name.</p><p><a href="/enroll">Back</a></p>"#)
            .into_response();
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
<p>The code is valid for 10 minutes and can be used once. When the app shows the account, <a href="/demo">try a sign-in</a>.</p>
<h2>Step 3: Keep using your existing applications</h2>
<p>Some apps, like older mail clients, cannot ask for a second step: each needs an app password. Once the app shows the account, <a id="app-passwords" href="/app-passwords">see your app passwords</a> with a code from the app.</p>"#,
                png = activation.qr_png_base64,
                code = escape(&activation.code),
                url = escape(&activation.url)
            ),
        )
        .into_response(),
        Err(failure) => failure.into_response(),
    }
}

async fn demo_form(State(state): State<AppState>) -> Html<String> {
    page(
        "Sign in",
        &format!(
            r#"<form method="post" action="/demo/push" class="box">{token}
<p><label>User name <input name="user" id="user" autocomplete="username" required></label></p>
<p><button id="contact" type="submit">Contact me</button>
<button id="use-code" class="secondary" type="submit" formaction="/demo/code">Use verification code</button></p></form>"#,
            token = token_field(&state)
        ),
    )
}

/// The app the demo page's sign-ins name: its Verify checks only those,
/// never a relying party's.
const DEMO_APP: &str = "Countersign demo sign-in";

#[derive(Deserialize)]
struct ContactForm {
    user: String,
    #[serde(default)]
    csrf: String,
    /// Empty: the user's default method.
    #[serde(default)]
    method: String,
}

/// What "Sign in another way" offers for `method`.
fn method_label(method: Method) -> &'static str {
    match method {
        Method::Push => "Approve a request on my Countersign app",
        Method::Code => "Use a verification code from my Countersign app",
        Method::Sms => "Text my authentication phone",
        Method::Voice => "Call my phone",
    }
}

/// "Sign in another way": a button for each of the user's other methods.
fn other_ways(state: &AppState, user: &str, used: Method, methods: &[Method]) -> String {
    let buttons: String = methods
        .iter()
        .filter(|method| **method != used)
        .map(|method| {
            format!(
                r#"<form method="post" action="/demo/push">{token}<input type="hidden" name="user" value="{user}"><input type="hidden" name="method" value="{name}"><button class="secondary" id="other-{name}" type="submit">{label}</button></form>"#,
                token = token_field(state),
                user = escape(user),
                name = method.as_str(),
                label = method_label(*method),
            )
        })
        .collect();
    if buttons.is_empty() {
        String::new()
    } else {
        format!(r#"<div class="box" id="other-ways"><p>Sign in another way</p>{buttons}</div>"#)
    }
}

/// Waits for the outcome of sign-in `id` and shows it in `#status`.
fn status_script(id: &str) -> String {
    format!(
        r#"<script>
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
        id = escape(id)
    )
}

/// The box where a code for sign-in `id` is typed (a text's, or the app's).
fn signin_code_form(state: &AppState, id: &str, prompt: &str) -> String {
    format!(
        r#"<form method="post" action="/demo/signin-code" class="box">{token}<input type="hidden" name="id" value="{id}">
<p>{prompt}</p><p><input name="code" id="code" inputmode="numeric" autocomplete="one-time-code" required>
<button id="verify" type="submit">Verify</button></p></form>"#,
        token = token_field(state),
        id = escape(id),
    )
}

/// "Contact me": by the user's default method, or the one picked under
/// "Sign in another way". A push shows the number and waits; a call waits;
/// a text or the app's code asks for the code.
async fn demo_push(State(state): State<AppState>, Extension(Client(client)): Extension<Client>, Form(form): Form<ContactForm>) -> Response {
    if !token_ok(&state, &form.csrf) {
        return expired_form("/demo");
    }
    if !state.allow_demo_push(form.user.trim(), client).await {
        state.audit.refused(Refusal::RateLimited, client, "demo pushes");
        let mut response =
            page("Sign in", r#"<p class="error" id="too-many">Too many requests were sent. Wait a minute, then try again.</p>"#)
                .into_response();
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return response;
    }
    let user = form.user.trim().to_owned();
    let request = SigninRequest {
        user: user.clone(),
        app: DEMO_APP.into(),
        ip: "127.0.0.1".into(),
        location: "This computer".into(),
        method: Some(if form.method.trim().is_empty() { "default".into() } else { form.method.trim().into() }),
        phone: None,
    };
    match api::create_signin(&state, request).await {
        Ok(created) => {
            let others = other_ways(&state, &user, created.method, &created.methods);
            let waiting = |what: &str, number: &str| {
                page(
                    "Approve sign-in request",
                    &format!(
                        r#"<div class="box" data-method="{method}">{number}<p id="status">{what} Waiting for your answer…</p></div>{others}{script}"#,
                        method = created.method.as_str(),
                        script = status_script(&created.id)
                    ),
                )
                .into_response()
            };
            match created.method {
                Method::Push => {
                    let number = created.number.map(|n| format!(r#"<p>Enter the number shown to sign in.</p><p class="number" id="number">{n}</p>"#)).unwrap_or_default();
                    waiting("We've sent a notification to your Countersign app.", &number)
                }
                Method::Voice => waiting("We're calling your phone. Answer it and press the pound key (#) to sign in.", ""),
                Method::Sms => page(
                    "Enter code",
                    &format!("{}{others}", signin_code_form(&state, &created.id, "We've sent a text message with a verification code to your phone. Enter it below.")),
                )
                .into_response(),
                Method::Code => page(
                    "Enter code",
                    &format!("{}{others}", signin_code_form(&state, &created.id, "Enter the code displayed in your Countersign app.")),
                )
                .into_response(),
            }
        }
        Err(Failure::NotFound(_)) => page("Sign in", r#"<p class="error">No such user: enroll first.</p><p><a href="/enroll">Configure mobile app</a></p>"#).into_response(),
        Err(Failure::Blocked(_)) => page("Sign in", r#"<p class="error" id="blocked">Sign-in requests for this user are blocked for a while because one was reported as not theirs.</p>"#).into_response(),
        Err(Failure::Gateway(why) | Failure::Conflict(why)) => page("Sign in", &format!(r#"<p class="error" id="unreached">We could not contact you that way: {}</p><p><a href="/demo">Back</a></p>"#, escape(&why))).into_response(),
        Err(failure) => failure.into_response(),
    }
}

#[derive(Deserialize)]
struct SigninCodeForm {
    id: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// Verify: the code typed for a text or app-code sign-in.
async fn demo_signin_code(
    State(state): State<AppState>,
    Extension(Client(client)): Extension<Client>,
    Form(form): Form<SigninCodeForm>,
) -> Response {
    if !token_ok(&state, &form.csrf) {
        return expired_form("/demo");
    }
    let again = |message: &str| {
        page(
            "Enter code",
            &format!(r#"<p class="error" id="result">{message}</p>{}"#, signin_code_form(&state, &form.id, "Enter the code again.")),
        )
        .into_response()
    };
    let unknown = || page("Enter code", r#"<p class="error" id="result">No such sign-in.</p>"#).into_response();
    match state.store.signin(&form.id).await {
        Ok(Some(signin)) if signin.app == DEMO_APP => {}
        Ok(_) => return unknown(),
        Err(error) => return Failure::from(error).into_response(),
    }
    match api::check_code(&state, &form.id, &form.code, client).await {
        Ok(verdict) if verdict.valid => page("Enter code", r#"<p class="ok" id="result">Verified. You are signed in.</p>"#).into_response(),
        Ok(api::CodeVerdict { retry_after: Some(seconds), .. }) => again(&format!("Too many wrong codes from here. Wait {seconds} s, then try again.")),
        Ok(verdict) if verdict.status == Status::Pending => {
            again(&format!("That code is not right. {} more tries.", verdict.attempts_left))
        }
        Ok(_) => page(
            "Enter code",
            r#"<p class="error" id="result">This sign-in can no longer be verified (too many wrong codes, expired, or already used). <a href="/demo">Start again</a>.</p>"#,
        )
        .into_response(),
        Err(Failure::NotFound(_) | Failure::Conflict(_)) => unknown(),
        Err(failure) => failure.into_response(),
    }
}

async fn demo_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::extract::Query(wait): axum::extract::Query<api::Wait>,
) -> Response {
    match api::wait_for(&state, &id, wait.wait).await {
        Ok(status) => Json(status).into_response(),
        Err(failure) => failure.into_response(),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    user: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: Option<String>,
}

/// "Use verification code": the box and Verify, then the verdict.
async fn demo_code(State(state): State<AppState>, Extension(Client(client)): Extension<Client>, Form(form): Form<CodeForm>) -> Response {
    if !token_ok(&state, &form.csrf) {
        return expired_form("/demo");
    }
    let user = escape(form.user.trim());
    let token = token_field(&state);
    let form_html = format!(
        r#"<form method="post" action="/demo/code" class="box">{token}<input type="hidden" name="user" value="{user}">
<p>Enter the code displayed in your Countersign app.</p><p><input name="code" id="code" inputmode="numeric" autocomplete="one-time-code" required>
<button id="verify" type="submit">Verify</button></p></form>"#
    );
    let Some(code) = form.code else { return page("Enter code", &form_html).into_response() };
    match api::check_totp(&state, &form.user, &code, client).await {
        Ok(verdict) if verdict.valid => page("Enter code", r#"<p class="ok" id="result">Verified. You are signed in.</p>"#).into_response(),
        Ok(TotpVerdict { retry_after: Some(seconds), .. }) => page(
            "Enter code",
            &format!(r#"<p class="error" id="result">Too many wrong codes from here. Wait {seconds} s, then try again.</p>{form_html}"#),
        )
        .into_response(),
        Ok(_) => page(
            "Enter code",
            &format!(r#"<p class="error" id="result">That code is not right, or was already used. Try the next one.</p>{form_html}"#),
        )
        .into_response(),
        Err(failure) => failure.into_response(),
    }
}

/// How long a right code lets this browser see and revoke app passwords.
const GRANT_SECONDS: i64 = 600;

/// A grant for `user` until `until`: the time and an HMAC of both under a
/// key that never leaves the server.
fn grant(state: &AppState, user: &str, until: i64) -> String {
    let tag = ring::hmac::sign(&state.page_key, grant_text(user, until).as_bytes());
    format!("{until}.{}", data_encoding::HEXLOWER.encode(tag.as_ref()))
}

/// What a grant's HMAC covers: the user and the time it ends.
fn grant_text(user: &str, until: i64) -> String {
    format!("app-passwords\0{user}\0{until}")
}

fn granted(state: &AppState, user: &str, grant: &str) -> bool {
    let Some((until, tag)) = grant.split_once('.') else { return false };
    let (Ok(until), Ok(tag)) = (until.parse::<i64>(), data_encoding::HEXLOWER.decode(tag.as_bytes())) else { return false };
    until > now() && ring::hmac::verify(&state.page_key, grant_text(user, until).as_bytes(), &tag).is_ok()
}

/// Said where the pages may not make app passwords (the default).
const MADE_BY_THE_ADMIN: &str = r#"<p id="by-admin">On this server your administrator makes app passwords (<code>countersign-server app-password create</code>). Here you can see yours and revoke them.</p>"#;

/// The link back to the form under a list.
fn again(state: &AppState) -> &'static str {
    if state.config.app_passwords_on_pages { "Create another" } else { "Back" }
}

fn app_passwords_box(state: &AppState, user: &str, message: &str) -> String {
    let (app, button) = if state.config.app_passwords_on_pages {
        (
            format!(
                r#"<p><label>App <input name="name" id="name" placeholder="Outlook 2010" maxlength="{}"></label> (leave empty to see your app passwords)</p>"#,
                super::app_passwords::NAME_LIMIT
            ),
            "Create app password",
        )
    } else {
        (MADE_BY_THE_ADMIN.to_owned(), "Show my app passwords")
    };
    format!(
        r#"{message}<form method="post" action="/app-passwords" class="box">{token}
<p><label>User name <input name="user" id="user" autocomplete="username" value="{user}" required></label></p>
{app}
<p><label>Code from your Countersign app <input name="code" id="code" inputmode="numeric" autocomplete="one-time-code" required></label></p>
<button id="create" type="submit">{button}</button></form>"#,
        token = token_field(state),
        user = escape(user),
    )
}

async fn app_passwords_form(State(state): State<AppState>) -> Html<String> {
    page(
        "App passwords",
        &app_passwords_box(
            &state,
            "",
            "<p>Apps that cannot ask for a second step, like older mail clients, sign in with an app password in place of your password: one for each app. Enter a code from your Countersign app to see and revoke yours.</p>",
        ),
    )
}

#[derive(Deserialize)]
struct AppPasswordForm {
    user: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

/// The user's app passwords, each with Revoke (the grant goes with it).
async fn app_passwords_list(state: &AppState, user: &str, grant: &str) -> Result<String, Failure> {
    let listed = state.store.app_passwords(user).await?;
    if listed.is_empty() {
        return Ok(r#"<p id="none">You have no app passwords.</p>"#.into());
    }
    let date = |at: i64| jiff::Timestamp::from_second(at).map_or_else(|_| at.to_string(), |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string());
    let rows: String = listed
        .iter()
        .map(|p| {
            let used = match (p.last_used_at, &p.last_used_from) {
                (Some(at), Some(from)) => format!("{} from {}", date(at), escape(from)),
                (Some(at), None) => date(at),
                _ => "never".into(),
            };
            format!(
                r#"<tr><td class="app">{name}</td><td>{created}</td><td>{used}</td><td><form method="post" action="/app-passwords/revoke">{token}<input type="hidden" name="user" value="{user}"><input type="hidden" name="grant" value="{grant}"><input type="hidden" name="id" value="{id}"><button class="secondary revoke" type="submit">Revoke</button></form></td></tr>"#,
                name = escape(&p.name),
                created = date(p.created_at),
                token = token_field(state),
                user = escape(user),
                grant = escape(grant),
                id = escape(&p.id),
            )
        })
        .collect();
    Ok(format!(r#"<table id="list"><tr><th>App</th><th>Created</th><th>Last used</th><th></th></tr>{rows}</table>"#))
}

/// A right code: makes the app password asked for (shown once, with Copy)
/// and lists them all.
async fn app_passwords(
    State(state): State<AppState>,
    Extension(Client(client)): Extension<Client>,
    Form(form): Form<AppPasswordForm>,
) -> Response {
    if !token_ok(&state, &form.csrf) {
        return expired_form("/app-passwords");
    }
    let user = form.user.trim();
    let refused = |message: &str| {
        page("App passwords", &app_passwords_box(&state, user, &format!(r#"<p class="error" id="result">{message}</p>"#))).into_response()
    };
    match api::check_totp(&state, user, &form.code, client).await {
        Ok(verdict) if verdict.valid => {}
        Ok(TotpVerdict { retry_after: Some(seconds), .. }) => {
            return refused(&format!("Too many wrong codes from here. Wait {seconds} s, then try again."));
        }
        Ok(_) => return refused("That code is not right, or was already used. Try the next one."),
        Err(failure) => return failure.into_response(),
    }
    let mut shown = String::new();
    if !form.name.trim().is_empty() && !state.config.app_passwords_on_pages {
        shown = MADE_BY_THE_ADMIN.to_owned();
    } else if !form.name.trim().is_empty() {
        match api::new_app_password(&state, user, &form.name).await {
            Ok(created) => {
                shown = format!(
                    r#"<div class="box"><p>Your app password for <b>{name}</b>. Enter it in the app in place of your password. It is shown only now.</p>
<p><code class="secret" id="password">{password}</code> <button id="copy" type="button" onclick="navigator.clipboard.writeText(document.getElementById('password').textContent.replaceAll(' ', '')).then(() => {{ this.textContent = 'Copied'; }})">Copy</button></p></div>"#,
                    name = escape(&created.name),
                    password = escape(&created.password)
                );
            }
            Err(Failure::BadRequest(message) | Failure::Conflict(message)) => {
                shown = format!(r#"<p class="error" id="result">{}</p>"#, escape(&message));
            }
            Err(failure) => return failure.into_response(),
        }
    }
    let grant = grant(&state, user, now() + GRANT_SECONDS);
    let again = again(&state);
    match app_passwords_list(&state, user, &grant).await {
        Ok(list) => {
            page("App passwords", &format!(r#"{shown}<h2>Your app passwords</h2>{list}<p><a href="/app-passwords">{again}</a></p>"#))
                .into_response()
        }
        Err(failure) => failure.into_response(),
    }
}

#[derive(Deserialize)]
struct RevokeForm {
    user: String,
    id: String,
    #[serde(default)]
    grant: String,
    #[serde(default)]
    csrf: String,
}

/// Revoke, with a grant from a right code in the last 10 minutes.
async fn app_password_revoke(State(state): State<AppState>, Form(form): Form<RevokeForm>) -> Response {
    if !token_ok(&state, &form.csrf) || !granted(&state, &form.user, &form.grant) {
        return expired_form("/app-passwords");
    }
    let message = match state.store.revoke_app_password(&form.id, Some(&form.user)).await {
        Ok(true) => r#"<p class="ok" id="result">Revoked. The app it was for can no longer sign in with it.</p>"#,
        Ok(false) => r#"<p class="error" id="result">That app password was already revoked.</p>"#,
        Err(error) => return Failure::from(error).into_response(),
    };
    let again = again(&state);
    match app_passwords_list(&state, &form.user, &form.grant).await {
        Ok(list) => {
            page("App passwords", &format!(r#"{message}<h2>Your app passwords</h2>{list}<p><a href="/app-passwords">{again}</a></p>"#))
                .into_response()
        }
        Err(failure) => failure.into_response(),
    }
}
