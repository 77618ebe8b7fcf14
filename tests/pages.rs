//! The server's web pages in a real browser: headless Chromium through
//! chromedriver (Debian's `chromium` and `chromium-driver`, installed by
//! tests/run), against the real server binary, with the real client code
//! playing the app.

#![cfg(all(feature = "server", feature = "client", feature = "cli"))]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::server::Server;
use countersign::push::client::{self, Event, Session};
use countersign::push::{Decision, Link};
use fantoccini::{Client, ClientBuilder, Locator};

/// chromedriver on a free loopback port; killed on drop.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether chromedriver is on PATH. Without it the test is skipped with a
/// message, unless COUNTERSIGN_REQUIRE_CHROMEDRIVER=1 makes that a failure
/// (tests/run sets it, so the full suite never skips the browser silently).
fn chromedriver_found() -> bool {
    let found = std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("chromedriver").is_file()));
    if !found {
        let required = std::env::var_os("COUNTERSIGN_REQUIRE_CHROMEDRIVER").is_some_and(|value| value == "1");
        assert!(
            !required,
            "chromedriver is not on PATH and COUNTERSIGN_REQUIRE_CHROMEDRIVER=1: tests/run installs Debian's chromium and chromium-driver"
        );
        eprintln!(
            "skipping: chromedriver not found on PATH; install chromium-driver (COUNTERSIGN_REQUIRE_CHROMEDRIVER=1 makes this a failure)"
        );
    }
    found
}

fn driver() -> Driver {
    use std::io::BufRead;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is missing: tests/run installs Debian's chromium and chromium-driver");
    // chromedriver says so once it listens; the rest of what it says is read
    // and dropped so that it never blocks on a full pipe.
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines.by_ref().map_while(Result::ok).any(|line| line.contains("started successfully"));
    if !started {
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromedriver did not start");
    }
    std::thread::spawn(move || lines.for_each(drop));
    Driver(child, port)
}

async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,900"] }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a headless Chromium session")
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Saves what the browser shows when COUNTERSIGN_PAGE_SHOTS names a folder
/// (for people to look at; the test asserts on the page's content).
async fn shot(browser: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("COUNTERSIGN_PAGE_SHOTS") {
        let png = browser.screenshot().await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

/// Fills the user name and presses the button `button` (a CSS selector).
async fn submit_user(browser: &Client, page: &str, user: &str, button: &str) {
    browser.goto(page).await.unwrap();
    browser.find(Locator::Css("#user")).await.unwrap().send_keys(user).await.unwrap();
    browser.find(Locator::Css(button)).await.unwrap().click().await.unwrap();
}

/// The page's status once the sign-in is decided: the browser waits for the
/// attribute to appear (bounded).
async fn outcome(browser: &Client) -> String {
    let status = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#status[data-status]"))
        .await
        .expect("the page never showed an outcome");
    status.attr("data-status").await.unwrap().expect("the attribute it was found by")
}

#[tokio::test]
async fn enroll_on_the_page_then_contact_me_approve_deny_report_and_verify_a_code() {
    if !chromedriver_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let driver = driver();
    let browser = browser(&driver).await;

    // "Configure mobile app": the QR code with the Code and URL under it.
    submit_user(&browser, &format!("{}/enroll", server.base), "alice", "#setup").await;
    let code = text_of(&browser, "#code").await;
    assert_eq!(browser.title().await.unwrap(), "Configure mobile app — Countersign");
    shot(&browser, "page-configure-mobile-app").await;
    let url = text_of(&browser, "#url").await;
    assert!(code.len() >= 9 && code.chars().all(|c| c.is_ascii_digit()), "{code}");
    let qr = browser.find(Locator::Css("#qr")).await.unwrap();
    let loaded = browser
        .execute("return arguments[0].complete && arguments[0].naturalWidth > 0", vec![serde_json::to_value(&qr).unwrap()])
        .await
        .unwrap();
    assert_eq!(loaded, serde_json::Value::Bool(true), "the QR image is drawn");
    // The app, with the Code and URL read off the page.
    let client::Activated { account, link, .. } = client::activate(&url, &code, "browser test").await.unwrap();
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    // Once alice has a device, the open page will not enroll another for her.
    submit_user(&browser, &format!("{}/enroll", server.base), "alice", "#setup").await;
    assert!(text_of(&browser, "#enrolled").await.starts_with("alice already has a device."));

    for (decision, expected) in [(Decision::Approve, "approved"), (Decision::Deny, "denied"), (Decision::Report, "reported")] {
        submit_user(&browser, &format!("{}/demo", server.base), "alice", "#contact").await;
        let shown: u32 = text_of(&browser, "#number").await.trim().parse().unwrap();
        shot(&browser, &format!("page-contact-me-{expected}-waiting")).await;
        let challenge = loop {
            match tokio::time::timeout(Duration::from_secs(5), session.next()).await.unwrap().unwrap() {
                Event::Challenge(challenge) => break challenge,
                _ => continue,
            }
        };
        assert_eq!(challenge.app, "Countersign demo sign-in");
        session.respond(&challenge.id, decision, Some(shown), false, countersign::server::now()).await.unwrap();
        assert_eq!(outcome(&browser).await, expected, "{decision:?}");
        shot(&browser, &format!("page-contact-me-{expected}")).await;
    }
    // After "It wasn't me", the page says pushes are blocked.
    submit_user(&browser, &format!("{}/demo", server.base), "alice", "#contact").await;
    assert!(text_of(&browser, "#blocked").await.contains("blocked"));

    // "Use verification code": the code from the app's account, once.
    let totp = countersign::otp::code(&account, countersign::server::now() as u64).value;
    submit_user(&browser, &format!("{}/demo", server.base), "alice", "#use-code").await;
    browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("#code")).await.unwrap().send_keys(&totp).await.unwrap();
    browser.find(Locator::Css("#verify")).await.unwrap().click().await.unwrap();
    assert_eq!(text_of(&browser, "#result").await, "Verified. You are signed in.");
    shot(&browser, "page-verification-code").await;
    submit_user(&browser, &format!("{}/demo", server.base), "alice", "#use-code").await;
    browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("#code")).await.unwrap().send_keys(&totp).await.unwrap();
    browser.find(Locator::Css("#verify")).await.unwrap().click().await.unwrap();
    assert!(text_of(&browser, "#result").await.starts_with("That code is not right, or was already used."));

    browser.close().await.unwrap();
}

/// Fills the app-password form (the page is open) and presses Create.
async fn create_app_password(browser: &Client, user: &str, app: &str, code: &str) {
    for (field, value) in [("#user", user), ("#name", app), ("#code", code)] {
        let input = browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(field)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    browser.find(Locator::Css("#create")).await.unwrap().click().await.unwrap();
}

/// Step 3 where the pages may make app passwords: from the enrollment page
/// to an app password, which needs a code from the app, is shown once with
/// Copy, works through the relying-party API, and is revoked from the list;
/// a forged grant revokes nothing.
#[tokio::test]
async fn app_passwords_on_the_page_need_a_code_are_shown_once_and_revoked_from_the_list() {
    if !chromedriver_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--app-passwords-on-pages", "true"]);
    let driver = driver();
    let browser = browser(&driver).await;
    submit_user(&browser, &format!("{}/enroll", server.base), "carol", "#setup").await;
    let (code, url) = (text_of(&browser, "#code").await, text_of(&browser, "#url").await);
    let client::Activated { account, .. } = client::activate(&url, &code, "browser test").await.unwrap();
    let totp = |offset: i64| countersign::otp::code(&account, (countersign::server::now() + offset) as u64).value;
    let verify = |password: String| {
        server.post("/api/app-passwords/verify", common::server::RP, serde_json::json!({ "user": "carol", "password": password }))
    };

    // Step 3's link, then a wrong code: nothing is made or listed.
    browser.find(Locator::Css("#app-passwords")).await.unwrap().click().await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "App passwords — Countersign");
    shot(&browser, "page-app-passwords").await;
    create_app_password(&browser, "carol", "Outlook 2010", "000000").await;
    assert!(text_of(&browser, "#result").await.starts_with("That code is not right"));
    assert!(browser.find(Locator::Css("#password")).await.is_err());

    // A right code: the password, once, and the list.
    create_app_password(&browser, "carol", "Outlook 2010", &totp(0)).await;
    let password = text_of(&browser, "#password").await;
    assert_eq!(password.len(), 24, "{password}");
    assert_eq!(text_of(&browser, "#list .app").await, "Outlook 2010");
    assert_eq!(text_of(&browser, "#copy").await, "Copy");
    shot(&browser, "page-app-password-created").await;
    assert_eq!(verify(password.clone()).await.1["valid"], true);

    // A second one (the next code). A revoke with a forged grant, sent as
    // the page would (its form token, same origin), is refused.
    browser.goto(&format!("{}/app-passwords", server.base)).await.unwrap();
    create_app_password(&browser, "carol", "Thunderbird", &totp(30)).await;
    let second = text_of(&browser, "#password").await;
    assert_eq!(browser.find_all(Locator::Css("#list .revoke")).await.unwrap().len(), 2);
    // Thunderbird's row (rows made in the same second come in any order).
    let field = |name: &'static str| {
        let browser = browser.clone();
        async move {
            let script = format!(
                "return [...document.querySelectorAll('#list tr')].find(r => r.textContent.includes('Thunderbird')).querySelector('input[name={name}]').value"
            );
            let value = browser.execute(&script, vec![]).await.unwrap();
            value.as_str().unwrap().to_owned()
        }
    };
    let (csrf, id, real) = (field("csrf").await, field("id").await, field("grant").await);
    let until: i64 = real.split('.').next().unwrap().parse().unwrap();
    let revoke =
        |id: String, grant: String| {
            let request = reqwest::Client::new()
                .post(format!("{}/app-passwords/revoke", server.base))
                .header("origin", &server.base)
                .form(&[("csrf", csrf.clone()), ("user", "carol".into()), ("id", id), ("grant", grant)]);
            async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            }
        };
    // The same request with the real grant reaches the store (no such id).
    let (status, body) = revoke("nosuchid".into(), real.clone()).await;
    assert!(status == 200 && body.contains("already revoked"), "{status} {body}");
    for forged in [format!("{}.{}", until + 3600, real.split('.').nth(1).unwrap()), "9999999999.00".into(), String::new()] {
        let (status, body) = revoke(id.clone(), forged.clone()).await;
        assert!(status == 403 && body.contains(r#"id="expired""#), "forged grant {forged:?}: {status} {body}");
    }
    assert_eq!(verify(second.clone()).await.1["valid"], true, "a forged grant revoked nothing");

    // With the real grant: Thunderbird's Revoke takes it off the list.
    browser.find(Locator::XPath("//tr[td[@class='app' and text()='Thunderbird']]//button")).await.unwrap().click().await.unwrap();
    assert!(text_of(&browser, "#result").await.starts_with("Revoked."));
    assert!(browser.find(Locator::Css("#password")).await.is_err(), "the password is shown only once");
    shot(&browser, "page-app-password-revoked").await;
    let left = text_of(&browser, "#list").await;
    assert!(left.contains("Outlook 2010") && !left.contains("Thunderbird"), "{left}");
    assert_eq!(verify(second).await.1["valid"], false);
    assert_eq!(verify(password).await.1["valid"], true);

    browser.close().await.unwrap();
}

/// By default the pages make no app passwords (they have no first factor):
/// the page says the administrator makes them, lists the one the admin
/// made after a right code, and refuses a crafted request to make one.
#[tokio::test]
async fn by_default_the_page_lists_and_revokes_but_makes_no_app_password() {
    if !chromedriver_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (code, url) = server.activation("dan").await;
    let client::Activated { account, .. } = client::activate(&url, &code, "browser test").await.unwrap();
    let (status, made) =
        server.post("/api/admin/users/dan/app-passwords", common::server::ADMIN, serde_json::json!({ "name": "Mail" })).await;
    assert_eq!(status, 201);
    let driver = driver();
    let browser = browser(&driver).await;
    browser.goto(&format!("{}/app-passwords", server.base)).await.unwrap();
    assert!(text_of(&browser, "#by-admin").await.contains("your administrator makes app passwords"));
    assert!(browser.find(Locator::Css("#name")).await.is_err(), "no field to name a new one");
    assert_eq!(text_of(&browser, "#create").await, "Show my app passwords");
    shot(&browser, "page-app-passwords-by-admin").await;
    // A request naming an app anyway (as a crafted form would) makes none.
    browser
        .execute("const f = document.querySelector('form'); const i = document.createElement('input'); i.name = 'name'; i.value = 'Sneaky'; f.appendChild(i);", vec![])
        .await
        .unwrap();
    let totp = countersign::otp::code(&account, countersign::server::now() as u64).value;
    browser.find(Locator::Css("#user")).await.unwrap().send_keys("dan").await.unwrap();
    browser.find(Locator::Css("#code")).await.unwrap().send_keys(&totp).await.unwrap();
    browser.find(Locator::Css("#create")).await.unwrap().click().await.unwrap();
    let list = text_of(&browser, "#list").await;
    assert!(list.contains("Mail") && !list.contains("Sneaky"), "{list}");
    assert!(browser.find(Locator::Css("#password")).await.is_err());
    let listed = server.get_with("/api/admin/users/dan/app-passwords", common::server::ADMIN).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // Revoke works without the setting.
    browser.find(Locator::Css("#list .revoke")).await.unwrap().click().await.unwrap();
    assert!(text_of(&browser, "#result").await.starts_with("Revoked."));
    assert_eq!(text_of(&browser, "a[href='/app-passwords']").await, "Back", "no offer to make one");
    let verify = server
        .post("/api/app-passwords/verify", common::server::RP, serde_json::json!({ "user": "dan", "password": made["password"] }))
        .await;
    assert_eq!(verify.1["valid"], false);
    browser.close().await.unwrap();
}

/// A PUT to the admin API with a JSON body; its status.
async fn admin_put(server: &Server, path: &str, body: serde_json::Value) -> u16 {
    let response =
        reqwest::Client::new().put(format!("{}{path}", server.base)).bearer_auth(common::server::ADMIN).json(&body).send().await.unwrap();
    response.status().as_u16()
}

/// The demo sign-in by the user's default method (a text here, its code
/// typed on the page), and "Sign in another way": a call answered with #,
/// a push, each played by the app's virtual phone against the real server.
#[tokio::test]
async fn the_demo_page_signs_in_by_the_default_method_and_offers_the_others() {
    if !chromedriver_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_virtual_phones(dir.path(), &[]);
    let link = server.device("tara").await;
    assert_eq!(
        admin_put(&server, "/api/admin/users/tara/phones/authentication", serde_json::json!({ "number": "+41 44 668 18 00" })).await,
        200
    );
    assert_eq!(admin_put(&server, "/api/admin/users/tara/methods", serde_json::json!({ "method": "sms" })).await, 200);
    let mut phone = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    phone.phone("+41446681800", true).await.unwrap();
    let driver = driver();
    let browser = browser(&driver).await;

    // Contact me: a text, by tara's choice; a wrong code first.
    submit_user(&browser, &format!("{}/demo", server.base), "tara", "#contact").await;
    let Event::Text(text) = common::server::next_text_or_call(&mut phone).await else { panic!("expected a text") };
    let text = text.open(&link.device_key).unwrap();
    assert_eq!(browser.title().await.unwrap(), "Enter code — Countersign");
    let offered = text_of(&browser, "#other-ways").await;
    assert!(offered.contains("Call my phone") && offered.contains("Approve a request on my Countersign app"), "{offered}");
    assert!(!offered.contains("Text my authentication phone"), "the method in use is not offered again: {offered}");
    shot(&browser, "page-text-enter-code").await;
    let wrong = if text.code == "000000" { "111111" } else { "000000" };
    browser.find(Locator::Css("#code")).await.unwrap().send_keys(wrong).await.unwrap();
    browser.find(Locator::Css("#verify")).await.unwrap().click().await.unwrap();
    assert_eq!(text_of(&browser, "#result").await, "That code is not right. 4 more tries.");
    browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("#code")).await.unwrap().send_keys(&text.code).await.unwrap();
    browser.find(Locator::Css("#verify")).await.unwrap().click().await.unwrap();
    // The next page's #result, not the one still shown while it loads.
    let verified = Locator::XPath("//p[@id='result' and text()='Verified. You are signed in.']");
    browser.wait().at_most(Duration::from_secs(10)).for_element(verified).await.expect("the right code signs in");

    // Sign in another way: a call, answered with #.
    submit_user(&browser, &format!("{}/demo", server.base), "tara", "#contact").await;
    let Event::Text(_) = common::server::next_text_or_call(&mut phone).await else { panic!("expected a text") };
    browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("#other-voice")).await.unwrap().click().await.unwrap();
    let Event::Call(call) = common::server::next_text_or_call(&mut phone).await else { panic!("expected a call") };
    assert!(text_of(&browser, "#status").await.contains("We're calling your phone"));
    shot(&browser, "page-call-waiting").await;
    assert!(phone.keys(&call.id, "#", false).await.unwrap().0);
    assert_eq!(outcome(&browser).await, "approved");

    // A push when tara picks it (texts and calls: 3 a minute per user).
    assert_eq!(admin_put(&server, "/api/admin/users/tara/methods", serde_json::json!({ "method": "push" })).await, 200);
    submit_user(&browser, &format!("{}/demo", server.base), "tara", "#contact").await;
    let shown: u32 = text_of(&browser, "#number").await.trim().parse().unwrap();
    assert!(text_of(&browser, "#other-ways").await.contains("Text my authentication phone"));
    let challenge = common::server::next_challenge(&mut phone).await;
    phone.respond(&challenge.id, Decision::Approve, Some(shown), false, countersign::server::now()).await.unwrap();
    assert_eq!(outcome(&browser).await, "approved");

    browser.close().await.unwrap();
}

/// Step 1 of the enrollment wizard: the user, how to contact them, and
/// for a phone its country, number, extension and method; then Next.
async fn step1(browser: &Client, base: &str, user: &str, contact: &str, phone: Option<(&str, &str, &str)>, call: bool) {
    browser.goto(&format!("{base}/enroll")).await.unwrap();
    browser.find(Locator::Css("#user")).await.unwrap().send_keys(user).await.unwrap();
    browser.find(Locator::Css(&format!("#contact-{contact}"))).await.unwrap().click().await.unwrap();
    if let Some((country, number, extension)) = phone {
        browser.find(Locator::Css("#country")).await.unwrap().select_by_value(country).await.unwrap();
        browser.find(Locator::Css("#number")).await.unwrap().send_keys(number).await.unwrap();
        if !extension.is_empty() {
            browser.find(Locator::Css("#extension")).await.unwrap().send_keys(extension).await.unwrap();
        }
    }
    if call {
        browser.find(Locator::Css("#method-voice")).await.unwrap().click().await.unwrap();
    }
    shot(browser, &format!("page-enroll-step1-{contact}")).await;
    browser.find(Locator::Css("#setup")).await.unwrap().click().await.unwrap();
}

/// The virtual phone of `user`'s new device, answering for `number`.
async fn virtual_phone(server: &Server, user: &str, number: &str) -> (Session, Link) {
    // The page made the user, in the server's organisation.
    let (code, url) = server.activation(user).await;
    let client::Activated { link, .. } = client::activate(&url, &code, "virtual phone").await.unwrap();
    let mut phone = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    assert_eq!(phone.phone(number, true).await.unwrap(), [number]);
    (phone, link)
}

/// The wizard for every method: Step 1 (method and number), Step 2
/// (Contact me: a text's code typed, a call answered with #, a push
/// approved), Step 3 (an app password, made with the check just passed).
#[tokio::test]
async fn the_enrollment_wizard_sets_up_and_checks_each_method_then_makes_an_app_password() {
    if !chromedriver_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_virtual_phones(dir.path(), &["--app-passwords-on-pages", "true"]);
    let driver = driver();
    let browser = browser(&driver).await;

    // An authentication phone, by text, typed as a Swiss national number.
    step1(&browser, &server.base, "uma", "authentication", Some(("CH", "044 668 18 00", "")), false).await;
    assert_eq!(text_of(&browser, "#phone").await, "+41446681800");
    shot(&browser, "page-enroll-step2-phone").await;
    // uma's virtual phone: a device of hers answering for the number.
    let (mut phone, link) = virtual_phone(&server, "uma", "+41446681800").await;
    browser.find(Locator::Css("#contact")).await.unwrap().click().await.unwrap();
    let Event::Text(text) = common::server::next_text_or_call(&mut phone).await else { panic!("expected a text") };
    let text = text.open(&link.device_key).unwrap();
    browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("#code")).await.unwrap().send_keys(&text.code).await.unwrap();
    browser.find(Locator::Css("#verify")).await.unwrap().click().await.unwrap();
    assert_eq!(text_of(&browser, "#verified").await, "Verified. We can reach you this way.");
    shot(&browser, "page-enroll-step3").await;
    // Step 3: an app password, with no code from an app (uma has none).
    browser.find(Locator::Css("#name")).await.unwrap().send_keys("Outlook 2010").await.unwrap();
    browser.find(Locator::Css("#create")).await.unwrap().click().await.unwrap();
    let password = text_of(&browser, "#password").await.replace(' ', "");
    let (_, checked) =
        server.post("/api/app-passwords/verify", common::server::RP, serde_json::json!({ "user": "uma", "password": password })).await;
    assert_eq!(checked["valid"], true, "{checked}");
    // Under the list, uma picks how sign-ins contact her first.
    browser.find(Locator::Css("#method")).await.unwrap().select_by_value("voice").await.unwrap();
    shot(&browser, "page-app-passwords-method").await;
    browser.find(Locator::Css("#save-method")).await.unwrap().click().await.unwrap();
    assert_eq!(text_of(&browser, "#result").await, "Saved. Sign-ins contact you first this way: Call my phone.");
    let methods = server.get_with("/api/admin/users/uma/methods", common::server::ADMIN).await;
    assert_eq!((methods["preferred"].as_str(), methods["default"].as_str()), (Some("voice"), Some("voice")), "{methods}");
    // The page enrolls users with no device and no phone only.
    step1(&browser, &server.base, "uma", "app", None, false).await;
    assert!(text_of(&browser, "#enrolled").await.starts_with("uma already has a device."));

    // An office phone with an extension, by call.
    step1(&browser, &server.base, "ubo", "office", Some(("", "+1 201 555 0123", "4711")), false).await;
    assert_eq!(text_of(&browser, "#phone").await, "+12015550123 ext. 4711");
    let (mut phone, _) = virtual_phone(&server, "ubo", "+12015550123").await;
    browser.find(Locator::Css("#contact")).await.unwrap().click().await.unwrap();
    let Event::Call(call) = common::server::next_text_or_call(&mut phone).await else { panic!("expected a call") };
    assert_eq!(call.extension, "4711");
    assert!(text_of(&browser, "#status").await.contains("We're calling your phone"));
    assert!(phone.keys(&call.id, "#", false).await.unwrap().0);
    assert_eq!(text_of(&browser, "#verified").await, "Verified. We can reach you this way.");

    // A wrong number never gets past Step 1, and stores nothing.
    step1(&browser, &server.base, "uwe", "authentication", Some(("CH", "12", "")), false).await;
    assert!(text_of(&browser, "#error").await.starts_with("That phone number did not work"));
    assert_eq!(server.get_with("/api/admin/users/uwe/phones", common::server::ADMIN).await["error"], "not_found", "no user uwe");

    // The mobile app: the QR code, then Contact me sends a push.
    step1(&browser, &server.base, "uli", "app", None, false).await;
    let (code, url) = (text_of(&browser, "#code").await, text_of(&browser, "#url").await);
    let client::Activated { link, .. } = client::activate(&url, &code, "browser test").await.unwrap();
    let mut app = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    browser.find(Locator::Css("#contact")).await.unwrap().click().await.unwrap();
    let shown: u32 = text_of(&browser, "#number").await.trim().parse().unwrap();
    let challenge = common::server::next_challenge(&mut app).await;
    assert_eq!(challenge.app, "Countersign enrollment");
    app.respond(&challenge.id, Decision::Approve, Some(shown), false, countersign::server::now()).await.unwrap();
    assert_eq!(text_of(&browser, "#verified").await, "Verified. We can reach you this way.");
    browser.close().await.unwrap();
}
