//! What the desktop offers over D-Bus: notifications for sign-in requests
//! (shown, clicked, taken away) and whether the system clock is
//! synchronised (systemd-timedated). No service (a bare session, CI) is not
//! an error: the request is in the window and the tray either way.

use iced::Task;

use crate::push::Challenge;

/// The app id, for the notification's icon and desktop entry.
use super::APP_ID;

/// What a notification reports.
#[derive(Debug, Clone)]
pub enum Notice {
    /// The notification for this request is on screen with this id.
    Shown(String, u32),
    /// The user clicked it.
    Clicked(String),
}

/// Text from a relying party, made safe for a notification: no control
/// characters (they could forge lines), no markup (servers may render
/// `<b>`), and not longer than a notification shows.
pub fn plain(text: &str) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(120).collect();
    flat.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A request's notification: app, user, place, and what answering needs.
/// It stays until the request is answered or expires (`seconds`).
pub fn notify(challenge: &Challenge, seconds: u32, locked: bool) -> Task<Notice> {
    let summary = format!("Sign-in request: {}", plain(&challenge.app));
    let mut parts = vec![plain(&challenge.user)];
    if !challenge.location.is_empty() {
        parts.push(plain(&challenge.location));
    }
    if challenge.number_matching {
        parts.push("a number is needed".into());
    }
    if !challenge.presence_options.is_empty() {
        parts.push("pick the option the sign-in page shows".into());
    }
    let mut body = parts.join(" · ");
    if locked {
        body.push_str("\nUnlock Countersign to answer.");
    }
    let id = challenge.id.clone();
    // The waiting thread reports the notification's id, then the click. It
    // is detached, not a runtime's blocking task: a notification still on
    // screen must not keep the process alive after Quit.
    let (sender, receiver) = iced::futures::channel::mpsc::unbounded();
    let spawned = std::thread::Builder::new().name("notification".into()).spawn(move || {
        // notify-rust unwraps D-Bus errors while waiting: a broken session
        // bus must not take the app down with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| show(&summary, &body, seconds, &id, &sender)));
    });
    match spawned {
        Ok(_) => Task::run(receiver, |notice| notice),
        Err(_) => Task::none(),
    }
}

/// Shows one request's notification, reports its id, and waits for a click.
#[cfg(all(unix, not(target_os = "macos")))]
fn show(summary: &str, body: &str, seconds: u32, id: &str, sender: &iced::futures::channel::mpsc::UnboundedSender<Notice>) {
    let shown = notify_rust::Notification::new()
        .appname("Countersign")
        .summary(summary)
        .body(body)
        .icon(APP_ID)
        .hint(notify_rust::Hint::DesktopEntry(APP_ID.into()))
        .hint(notify_rust::Hint::Category("x-countersign.signin".into()))
        // "default" is the click on the notification itself.
        .action("default", "Show")
        .timeout(notify_rust::Timeout::Milliseconds(seconds.saturating_mul(1000)))
        .show();
    let Ok(handle) = shown else { return };
    let _ = sender.unbounded_send(Notice::Shown(id.to_owned(), handle.id()));
    // Waits until it is clicked or closed: it expires with the request, and
    // is closed when the request leaves the queue.
    handle.wait_for_action(|action| {
        if action == "default" {
            let _ = sender.unbounded_send(Notice::Clicked(id.to_owned()));
        }
    });
}

/// Elsewhere notify-rust can only show it: no id, no click.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn show(summary: &str, body: &str, _seconds: u32, _id: &str, _sender: &iced::futures::channel::mpsc::UnboundedSender<Notice>) {
    let _ = notify_rust::Notification::new().appname("Countersign").summary(summary).body(body).show();
}

/// Takes a request's notification off the screen (its waiting thread then ends).
#[cfg(all(unix, not(target_os = "macos")))]
pub async fn close(id: u32) {
    let Ok(connection) = zbus::Connection::session().await else { return };
    let _ = connection
        .call_method(Some("org.freedesktop.Notifications"), "/org/freedesktop/Notifications", Some("org.freedesktop.Notifications"), "CloseNotification", &(id,))
        .await;
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
pub async fn close(_id: u32) {}

/// Whether systemd-timedated says the clock is synchronised with a time
/// server; `None` when nobody answers within 2 s (no system bus, no systemd).
#[cfg(all(unix, not(target_os = "macos")))]
pub async fn clock_synchronized() -> Option<bool> {
    let ask = async {
        let connection = zbus::Connection::system().await.ok()?;
        let proxy = zbus::Proxy::new(&connection, "org.freedesktop.timedate1", "/org/freedesktop/timedate1", "org.freedesktop.timedate1").await.ok()?;
        proxy.get_property::<bool>("NTPSynchronized").await.ok()
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), ask).await.ok().flatten()
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
pub async fn clock_synchronized() -> Option<bool> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relying_party_text_cannot_forge_lines_or_markup() {
        assert_eq!(plain("VPN\r\nApproved: yes"), "VPN  Approved: yes");
        assert_eq!(plain("\u{1b}]0;PWNED\u{7}<b>x</b> & y"), " ]0;PWNED &lt;b&gt;x&lt;/b&gt; &amp; y");
        assert_eq!(plain(&"a".repeat(500)).len(), 120);
    }
}
