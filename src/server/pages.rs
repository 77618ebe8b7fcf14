//! The demo web pages, modelled on Azure MFA's "Additional security
//! verification": the enrollment wizard (Step 1: the mobile app, an
//! authentication phone by text or call, or an office phone; Step 2:
//! *Contact me* checks it; Step 3: an app password for older apps, then
//! *Done*), and a sign-in page whose *Contact me* uses the user's default
//! method (a push with the number to type, a text's code to type, a call to
//! answer with #, or the app's code) and offers the others under "Sign in
//! another way", besides "Use verification code". Plain server-rendered
//! HTML; scripts only poll a sign-in's status and name the countries.
//! Served on loopback by default, or with `demo_pages = true`.
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
//! and anyone may enroll a device for a user who has none. For the same
//! reason they text and call only virtual phones or the log, never
//! through a real gateway.

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
        .route("/enroll/contact", post(enroll_contact))
        .route("/enroll/verify", post(enroll_verify))
        .route("/enroll/done/{id}", get(enroll_done))
        .route("/demo", get(demo_form))
        .route("/demo/push", post(demo_push))
        .route("/demo/status/{id}", get(demo_status))
        .route("/demo/code", post(demo_code))
        .route("/demo/signin-code", post(demo_signin_code))
        .route("/app-passwords", get(app_passwords_form).post(app_passwords))
        .route("/app-passwords/revoke", post(app_password_revoke))
        .route("/app-passwords/method", post(app_password_method))
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
#other-ways form {{ margin: .5rem 0; }} .box h2 {{ margin-top: 0; }}
#step1:has(#contact-app:checked) #phone-options, #step1:not(:has(#contact-app:checked)) #app-options {{ display: none; }}
#step1:has(#contact-office:checked) .authentication-only, #step1:has(#contact-authentication:checked) .office-only {{ display: none; }}
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

/// The country list: ISO codes and calling codes from libphonenumber; the
/// browser, when it can, shows each country's name (Intl.DisplayNames).
fn country_options() -> String {
    super::phones::countries()
        .into_iter()
        .map(|(id, code)| format!(r#"<option value="{id}" data-code="{code}">{id} (+{code})</option>"#))
        .collect()
}

/// Step 1: "How should we contact you?" The mobile app, an authentication
/// phone (a text or a call) or an office phone (a call). The options of
/// the choice not taken are hidden by CSS alone.
async fn enroll_form(State(state): State<AppState>) -> Html<String> {
    page(
        "Additional security verification",
        &format!(
            r#"<p>Secure your account by adding phone verification to your password.</p>
<form method="post" action="/enroll" class="box" id="step1">{token}
<h2>Step 1: How should we contact you?</h2>
<p><label>User name <input name="user" id="user" autocomplete="username" required></label></p>
<p><label><input type="radio" name="contact" value="app" id="contact-app" checked> Mobile app</label>
<label><input type="radio" name="contact" value="authentication" id="contact-authentication"> Authentication phone</label>
<label><input type="radio" name="contact" value="office" id="contact-office"> Office phone</label></p>
<div id="app-options"><p>How do you want to use the mobile app?</p>
<p><label><input type="radio" name="mode" value="notifications" checked> Receive notifications for verification</label><br>
<label><input type="radio" name="mode" value="code"> Use verification code</label></p></div>
<div id="phone-options">
<p><label>Country or region <select name="country" id="country"><option value="">(the number starts with +)</option>{countries}</select></label></p>
<p><label>Phone number <input name="number" id="number" autocomplete="tel" inputmode="tel"></label>
<label class="office-only">Extension <input name="extension" id="extension" inputmode="numeric" size="6"></label></p>
<p class="authentication-only">Method <label><input type="radio" name="phone_method" value="sms" id="method-sms" checked> Send me a code by text message</label>
<label><input type="radio" name="phone_method" value="voice" id="method-voice"> Call me</label></p></div>
<button id="setup" type="submit">Next</button></form>
<script>
// Country names where the browser knows them; the codes otherwise.
try {{
  const names = new Intl.DisplayNames(["en"], {{ type: "region" }});
  const select = document.getElementById("country");
  const options = [...select.options].slice(1);
  for (const option of options) {{ option.textContent = names.of(option.value) + " (+" + option.dataset.code + ")"; }}
  options.sort((a, b) => a.textContent.localeCompare(b.textContent)).forEach((option) => select.appendChild(option));
}} catch (e) {{}}
</script>"#,
            token = token_field(&state),
            countries = country_options(),
        ),
    )
}

#[derive(Deserialize)]
struct EnrollForm {
    user: String,
    #[serde(default)]
    csrf: String,
    /// `app` (also when absent), `authentication` or `office`.
    #[serde(default)]
    contact: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    extension: String,
    /// For an authentication phone: `sms` or `voice`.
    #[serde(default)]
    phone_method: String,
}

/// The app every enrollment check's sign-in names: only those are
/// verified by the enrollment pages.
const ENROLL_APP: &str = "Countersign enrollment";

fn enroll_error(message: &str) -> Response {
    page(
        "Additional security verification",
        &format!(r#"<p class="error" id="error">{}</p><p><a href="/enroll">Back</a></p>"#, escape(message)),
    )
    .into_response()
}

/// A "Contact me" button that checks the method just set up (Step 2),
/// with the ticket Step 1 gave.
fn contact_me(state: &AppState, user: &str, method: Method) -> String {
    format!(
        r#"<form method="post" action="/enroll/contact">{token}<input type="hidden" name="user" value="{user}"><input type="hidden" name="method" value="{method}"><input type="hidden" name="ticket" value="{ticket}"><button id="contact" type="submit">Contact me</button></form>"#,
        token = token_field(state),
        user = escape(user),
        method = method.as_str(),
        ticket = ticket(state, user),
    )
}

/// Step 1's answer: creates the user if needed (a demo convenience), then
/// a fresh activation for the app, or the phone; Step 2 follows.
async fn enroll(State(state): State<AppState>, Form(form): Form<EnrollForm>) -> Response {
    if !token_ok(&state, &form.csrf) {
        return expired_form("/enroll");
    }
    let user = form.user.trim().to_owned();
    if user.is_empty() || user.len() > 128 {
        return enroll_error("Enter a user name.");
    }
    // Anyone reaching the page could otherwise add a device or a phone for
    // an existing user and receive their requests: only users with neither
    // yet are enrolled here; others need an administrator.
    let (devices, phones) = match (state.store.devices_of(&user).await, state.store.phones(&user).await) {
        (Ok(devices), Ok(phones)) => (devices, phones),
        (Err(error), _) | (_, Err(error)) => return Failure::from(error).into_response(),
    };
    if !devices.is_empty() {
        return page("Additional security verification", &format!(r#"<p class="error" id="enrolled">{} already has a device. To add another, ask an administrator (<code>countersign-server activate NAME</code>).</p>"#, escape(&user))).into_response();
    }
    if !phones.is_empty() {
        return page("Additional security verification", &format!(r#"<p class="error" id="enrolled">{} already has a phone. To change it, ask an administrator (<code>countersign-server phone set</code>).</p>"#, escape(&user))).into_response();
    }
    let kind = match form.contact.trim() {
        "" | "app" => None,
        "authentication" => Some(super::phones::Kind::Authentication),
        "office" => Some(super::phones::Kind::Office),
        _ => return enroll_error("Choose how we should contact you."),
    };
    if kind.is_some() && !phones_on_pages(&state) {
        return enroll_error(NO_PHONES_HERE);
    }
    // The phone is read before anything is stored: a wrong one changes nothing.
    let phone = match kind {
        None => None,
        Some(kind) => {
            let extension = Some(form.extension.as_str()).filter(|_| kind == super::phones::Kind::Office);
            match super::phones::parse(kind, &form.number, Some(form.country.as_str()), extension) {
                Ok(phone) => Some(phone),
                Err(why) => return enroll_error(&format!("That phone number did not work: {why}.")),
            }
        }
    };
    if let Err(error) = async {
        if !state.store.user_exists(&user).await? {
            state.store.add_user(&user, &state.config.organization, now()).await?;
        }
        Ok::<(), super::store::Error>(())
    }
    .await
    {
        return Failure::from(error).into_response();
    }
    if let Some(phone) = phone {
        return enroll_phone(&state, &user, &phone, form.phone_method.trim() == "voice").await;
    }
    match api::new_activation(&state, &user).await {
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
<p>The code is valid for 10 minutes and can be used once.</p>
<h2>Step 2: Let's make sure that we can reach you on your Mobile App device</h2>
<div class="box"><p>When the app shows the account, we'll send a notification to it.</p>{contact}</div>
<p>Some apps, like older mail clients, cannot ask for a second step: each needs an app password. <a id="app-passwords" href="/app-passwords">See your app passwords</a> with a code from the app.</p>"#,
                png = activation.qr_png_base64,
                code = escape(&activation.code),
                url = escape(&activation.url),
                contact = contact_me(&state, &user, Method::Push),
            ),
        )
        .into_response(),
        Err(failure) => failure.into_response(),
    }
}

/// The phone of Step 1 is kept, as the user's preferred method; Step 2
/// texts or calls it.
async fn enroll_phone(state: &AppState, user: &str, phone: &super::phones::Phone, call: bool) -> Response {
    let method = if call || phone.kind == super::phones::Kind::Office { Method::Voice } else { Method::Sms };
    let stored = async {
        state.store.set_phone(user, phone, now()).await?;
        state.store.set_preferred_method(user, Some(method)).await
    };
    if let Err(error) = stored.await {
        return Failure::from(error).into_response();
    }
    let (how, what) =
        if method == Method::Sms { ("text", "a verification code") } else { ("call", "a call to answer with the pound key (#)") };
    let extension = phone.extension.as_deref().map(|e| format!(" ext. {}", escape(e))).unwrap_or_default();
    page(
        "Additional security verification",
        &format!(
            r#"<h2>Step 2: Let's make sure that we can reach you on your phone</h2>
<div class="box"><p>We'll {how} <b id="phone">{number}{extension}</b>: {what}.</p>{contact}</div>"#,
            number = escape(&phone.number),
            contact = contact_me(state, user, method),
        ),
    )
    .into_response()
}

/// Step 2's "Contact me": a push, a text or a call that checks the method
/// just set up. A text asks for its code; a push or a call waits, then
/// moves on to Step 3.
async fn enroll_contact(
    State(state): State<AppState>,
    Extension(Client(client)): Extension<Client>,
    Form(form): Form<ContactForm>,
) -> Response {
    if !token_ok(&state, &form.csrf) {
        return expired_form("/enroll");
    }
    if !state.allow_demo_push(form.user.trim(), client).await {
        state.audit.refused(Refusal::RateLimited, client, "enrollment checks");
        let mut response = enroll_error("Too many requests were sent. Wait a minute, then try again.");
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return response;
    }
    let user = form.user.trim();
    if !holds(&state, "enroll", user, &form.ticket) {
        return enroll_error("This check belongs to an enrollment that is over: start again at Step 1.");
    }
    let asked = if form.method.trim().is_empty() { "default" } else { form.method.trim() };
    if would_phone(&state, user, asked).await {
        return enroll_error(NO_PHONES_HERE);
    }
    let request = SigninRequest {
        user: user.into(),
        app: ENROLL_APP.into(),
        ip: "127.0.0.1".into(),
        location: "This computer".into(),
        method: Some(asked.into()),
        ..SigninRequest::default()
    };
    match api::create_signin(&state, request).await {
        Ok(created) if created.method == Method::Sms => page(
            "Additional security verification",
            &format!(
                "<h2>Step 2: Let's make sure that we can reach you on your phone</h2>{}",
                signin_code_form(
                    &state,
                    "/enroll/verify",
                    &created.id,
                    &form.ticket,
                    "We texted your phone. Enter the verification code from the text message."
                )
            ),
        )
        .into_response(),
        Ok(created) => {
            let (what, number) = match created.method {
                Method::Voice => ("We're calling your phone. Answer it and press the pound key (#).", String::new()),
                _ => (
                    "We've sent a notification to your Countersign app. Approve it.",
                    created
                        .number
                        .map(|n| format!(r#"<p>Enter the number shown.</p><p class="number" id="number">{n}</p>"#))
                        .unwrap_or_default(),
                ),
            };
            page(
                "Additional security verification",
                &format!(
                    r#"<h2>Step 2: Let's make sure that we can reach you</h2><div class="box">{number}<p id="status">{what} Waiting for your answer…</p></div>{script}
<script>new MutationObserver(() => {{ if (document.getElementById("status").dataset.status === "approved") location.href = "/enroll/done/{id}?ticket={ticket}"; }}).observe(document.getElementById("status"), {{ attributes: true }});</script>"#,
                    script = status_script(&created.id),
                    id = escape(&created.id),
                    ticket = escape(&form.ticket),
                ),
            )
            .into_response()
        }
        Err(Failure::NotFound(_)) => enroll_error("No such user: start at Step 1."),
        Err(Failure::Gateway(why) | Failure::Conflict(why)) => enroll_error(&format!("We could not contact you that way: {why}")),
        Err(Failure::Blocked(_)) => {
            enroll_error("Sign-in requests for this user are blocked for a while because one was reported as not theirs.")
        }
        Err(failure) => failure.into_response(),
    }
}

/// An enrollment check's sign-in `id`, if it is one and `ticket` is what
/// Step 1 gave for its user.
async fn enrollment_check(state: &AppState, id: &str, ticket: &str) -> Result<Option<super::store::Signin>, Failure> {
    Ok(state.store.signin(id).await?.filter(|signin| signin.app == ENROLL_APP && holds(state, "enroll", &signin.user, ticket)))
}

/// Step 2's Verify: the text's code.
async fn enroll_verify(
    State(state): State<AppState>,
    Extension(Client(client)): Extension<Client>,
    Form(form): Form<SigninCodeForm>,
) -> Response {
    if !token_ok(&state, &form.csrf) {
        return expired_form("/enroll");
    }
    let signin = match enrollment_check(&state, &form.id, &form.ticket).await {
        Ok(Some(signin)) => signin,
        Ok(None) => return enroll_error("No such check: start at Step 1."),
        Err(failure) => return failure.into_response(),
    };
    match api::check_code(&state, &form.id, &form.code, client).await {
        Ok(verdict) if verdict.valid => step3(&state, &signin),
        Ok(verdict) if verdict.status == Status::Pending => page(
            "Additional security verification",
            &format!(
                r#"<p class="error" id="result">That code is not right. {} more tries.</p>{}"#,
                verdict.attempts_left,
                signin_code_form(&state, "/enroll/verify", &form.id, &form.ticket, "Enter the code from the text message."),
            ),
        )
        .into_response(),
        Ok(_) => enroll_error("This check can no longer be verified (too many wrong codes, or it expired). Press Contact me again."),
        Err(failure) => failure.into_response(),
    }
}

#[derive(Deserialize)]
struct TicketQuery {
    #[serde(default)]
    ticket: String,
}

/// Where a push or a call approved in Step 2 leads: Step 3, while the
/// approval is fresh.
async fn enroll_done(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<TicketQuery>,
) -> Response {
    match enrollment_check(&state, &id, &query.ticket).await {
        Ok(Some(signin)) if signin.status_at(now()) == Status::Approved && signin.created_at + GRANT_SECONDS > now() => {
            step3(&state, &signin)
        }
        Ok(_) => enroll_error("This check was not approved, or is too old: press Contact me again."),
        Err(failure) => failure.into_response(),
    }
}

/// Step 3: app passwords for older apps; the check just passed (`check`)
/// grants them for a while from when it was made, as a code from the app
/// does on the app-password page (opening Step 3 again does not extend it).
fn step3(state: &AppState, check: &super::store::Signin) -> Response {
    let user = check.user.as_str();
    let grant = grant(state, user, check.created_at + GRANT_SECONDS);
    let create = if state.config.app_passwords_on_pages {
        format!(
            r#"<form method="post" action="/app-passwords" class="box">{token}<input type="hidden" name="user" value="{user}"><input type="hidden" name="grant" value="{grant}">
<p><label>App <input name="name" id="name" placeholder="Outlook 2010" maxlength="{limit}" required></label></p><button id="create" type="submit">Create app password</button></form>"#,
            token = token_field(state),
            user = escape(user),
            grant = escape(&grant),
            limit = super::app_passwords::NAME_LIMIT,
        )
    } else {
        MADE_BY_THE_ADMIN.to_owned()
    };
    page(
        "Additional security verification",
        &format!(
            r#"<p class="ok" id="verified">Verified. We can reach you this way.</p>
<h2>Step 3: Keep using your existing applications</h2>
<p>In some apps, like Outlook 2010 and older phones' mail, you can't use phone verification codes. To use these apps, you need a new "app password" to use in place of your work or school account password.</p>
{create}<form method="get" action="/demo"><button id="done" type="submit">Done</button></form>"#
        ),
    )
    .into_response()
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

/// Whether the pages may have texts sent and calls made. They have no
/// first factor: with a real gateway anyone could have any number texted
/// or called (and run up its bill), so only virtual phones and the log.
fn phones_on_pages(state: &AppState) -> bool {
    matches!(state.phone, super::gateway::Provider::Virtual | super::gateway::Provider::Log)
}

/// Whether a sign-in by `asked` (a method, or `default`) for `user` would
/// text or call where the pages may not.
async fn would_phone(state: &AppState, user: &str, asked: &str) -> bool {
    !phones_on_pages(state) && matches!(api::choose_method(state, user, Some(asked)).await, Ok((method, _)) if method.is_phone())
}

/// Said where the pages would text or call a real phone.
const NO_PHONES_HERE: &str = "This server's pages send texts and make calls only to virtual phones (they ask for no password): use the Countersign app, or ask your administrator.";

/// The app the demo page's sign-ins name: its Verify checks only those,
/// never a relying party's.
const DEMO_APP: &str = "Countersign demo sign-in";

/// Contact me, on the demo page and in Step 2.
#[derive(Deserialize)]
struct ContactForm {
    user: String,
    #[serde(default)]
    csrf: String,
    /// Empty: the user's default method.
    #[serde(default)]
    method: String,
    /// Step 2 only: the ticket Step 1 gave.
    #[serde(default)]
    ticket: String,
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
        .filter(|method| **method != used && (phones_on_pages(state) || !method.is_phone()))
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

/// The box where a code for sign-in `id` is typed (a text's, or the app's)
/// and posted to `action`, with Step 1's `ticket` in the enrollment.
fn signin_code_form(state: &AppState, action: &str, id: &str, ticket: &str, prompt: &str) -> String {
    format!(
        r#"<form method="post" action="{action}" class="box">{token}<input type="hidden" name="id" value="{id}"><input type="hidden" name="ticket" value="{ticket}">
<p>{prompt}</p><p><input name="code" id="code" inputmode="numeric" autocomplete="one-time-code" required>
<button id="verify" type="submit">Verify</button></p></form>"#,
        token = token_field(state),
        id = escape(id),
        ticket = escape(ticket),
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
    let asked = if form.method.trim().is_empty() { "default" } else { form.method.trim() };
    if would_phone(&state, &user, asked).await {
        return page("Sign in", &format!(r#"<p class="error" id="unreached">{NO_PHONES_HERE}</p>"#)).into_response();
    }
    let request = SigninRequest {
        user: user.clone(),
        app: DEMO_APP.into(),
        ip: "127.0.0.1".into(),
        location: "This computer".into(),
        method: Some(asked.into()),
        ..SigninRequest::default()
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
                    &format!("{}{others}", signin_code_form(&state, "/demo/signin-code", &created.id, "", "We've sent a text message with a verification code to your phone. Enter it below.")),
                )
                .into_response(),
                Method::Code => page(
                    "Enter code",
                    &format!("{}{others}", signin_code_form(&state, "/demo/signin-code", &created.id, "", "Enter the code displayed in your Countersign app.")),
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

/// Verify, on the demo page and in Step 2.
#[derive(Deserialize)]
struct SigninCodeForm {
    id: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    /// Step 2 only: the ticket Step 1 gave.
    #[serde(default)]
    ticket: String,
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
            &format!(
                r#"<p class="error" id="result">{message}</p>{}"#,
                signin_code_form(&state, "/demo/signin-code", &form.id, "", "Enter the code again.")
            ),
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
    signed(state, "app-passwords", user, until)
}

/// What `/enroll` gives whoever passed Step 1 for `user`: Step 2's check
/// leads to Step 3's grant only with it (not a relying party's sign-in,
/// nor a check started for a user enrolled elsewhere).
pub(super) fn ticket(state: &AppState, user: &str) -> String {
    signed(state, "enroll", user, now() + GRANT_SECONDS)
}

fn signed(state: &AppState, purpose: &str, user: &str, until: i64) -> String {
    let tag = ring::hmac::sign(&state.page_key, grant_text(purpose, user, until).as_bytes());
    format!("{until}.{}", data_encoding::HEXLOWER.encode(tag.as_ref()))
}

/// What a grant's HMAC covers: the user and the time it ends.
fn grant_text(purpose: &str, user: &str, until: i64) -> String {
    format!("{purpose}\0{user}\0{until}")
}

fn granted(state: &AppState, user: &str, grant: &str) -> bool {
    holds(state, "app-passwords", user, grant)
}

/// Whether `token` is [`signed`] for `purpose` and `user`, and not over.
fn holds(state: &AppState, purpose: &str, user: &str, token: &str) -> bool {
    let Some((until, tag)) = token.split_once('.') else { return false };
    let (Ok(until), Ok(tag)) = (until.parse::<i64>(), data_encoding::HEXLOWER.decode(tag.as_bytes())) else { return false };
    until > now() && ring::hmac::verify(&state.page_key, grant_text(purpose, user, until).as_bytes(), &tag).is_ok()
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
    /// From Step 3 of the enrollment: in place of a code.
    #[serde(default)]
    grant: String,
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
    // A right code from the app, or a grant from a check just passed (Step 3).
    let by_grant = !form.grant.is_empty();
    if by_grant && !granted(&state, user, &form.grant) {
        return expired_form("/app-passwords");
    }
    if !by_grant {
        match api::check_totp(&state, user, &form.code, client).await {
            Ok(verdict) if verdict.valid => {}
            Ok(TotpVerdict { retry_after: Some(seconds), .. }) => {
                return refused(&format!("Too many wrong codes from here. Wait {seconds} s, then try again."));
            }
            Ok(_) => return refused("That code is not right, or was already used. Try the next one."),
            Err(failure) => return failure.into_response(),
        }
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
    // A grant is not made longer by using it.
    let grant = if by_grant { form.grant.clone() } else { grant(&state, user, now() + GRANT_SECONDS) };
    signed_in(&state, user, &grant, &shown).await
}

/// What a grant shows: `message`, the user's app passwords with Revoke,
/// and how they are contacted first.
async fn signed_in(state: &AppState, user: &str, grant: &str, message: &str) -> Response {
    let shown = async {
        let list = app_passwords_list(state, user, grant).await?;
        let methods = api::user_methods(state, user).await?;
        Ok::<_, Failure>((list, methods))
    };
    let (list, methods) = match shown.await {
        Ok(shown) => shown,
        Err(failure) => return failure.into_response(),
    };
    let options: String = methods
        .methods
        .iter()
        .map(|method| {
            let selected = if *method == methods.default { " selected" } else { "" };
            format!(r#"<option value="{name}"{selected}>{label}</option>"#, name = method.as_str(), label = method_label(*method))
        })
        .collect();
    let choose = if methods.methods.len() > 1 {
        format!(
            r#"<h2>How should we contact you first?</h2><form method="post" action="/app-passwords/method" class="box">{token}<input type="hidden" name="user" value="{user}"><input type="hidden" name="grant" value="{grant}">
<p><select name="method" id="method">{options}</select> <button id="save-method" type="submit">Save</button></p><p>Sign-in pages offer your other ways under "Sign in another way".</p></form>"#,
            token = token_field(state),
            user = escape(user),
            grant = escape(grant),
        )
    } else {
        String::new()
    };
    let again = again(state);
    page("App passwords", &format!(r#"{message}<h2>Your app passwords</h2>{list}{choose}<p><a href="/app-passwords">{again}</a></p>"#))
        .into_response()
}

#[derive(Deserialize)]
struct MethodForm {
    user: String,
    grant: String,
    method: String,
    #[serde(default)]
    csrf: String,
}

/// Save: the method sign-ins use first (`default`), among the user's.
async fn app_password_method(State(state): State<AppState>, Form(form): Form<MethodForm>) -> Response {
    if !token_ok(&state, &form.csrf) || !granted(&state, &form.user, &form.grant) {
        return expired_form("/app-passwords");
    }
    let message = match api::set_preferred_method(&state, &form.user, Some(&form.method)).await {
        Ok(methods) => {
            format!(r#"<p class="ok" id="result">Saved. Sign-ins contact you first this way: {}.</p>"#, method_label(methods.default))
        }
        Err(Failure::BadRequest(why) | Failure::Conflict(why)) => format!(r#"<p class="error" id="result">{}</p>"#, escape(&why)),
        Err(failure) => return failure.into_response(),
    };
    signed_in(&state, &form.user, &form.grant, &message).await
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
    signed_in(&state, &form.user, &form.grant, message).await
}
