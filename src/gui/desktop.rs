//! What the desktop offers over D-Bus: notifications for sign-in requests
//! (shown, clicked, taken away; the Desktop Notifications Specification over
//! one zbus connection) and whether the system clock is synchronised
//! (systemd-timedated). No service (a bare session, CI) is not an error: the
//! request is in the window and the tray either way.

use iced::Task;

use crate::push::Challenge;

/// The app id, for the notification's icon and desktop entry.
use super::APP_ID;

/// What a notification reports.
#[derive(Debug, Clone)]
pub enum Notice {
    /// The notification for this request is on screen with this id.
    Shown(String, u32),
    /// The user clicked the notification with this id.
    Clicked(u32),
}

/// Text from a relying party, made safe for a notification (or a tray
/// tooltip): nothing deceptive (`crate::push::printable`: no forged lines,
/// no reordering), no markup (servers may render `<b>`), and at most `max`
/// characters.
pub fn plain(text: &str, max: usize) -> String {
    let flat: String = crate::push::printable(text).chars().take(max).collect();
    flat.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The session bus, connected once: every notification, its click and its
/// closing go through this one connection (no thread per notification).
#[cfg(all(unix, not(target_os = "macos")))]
async fn bus() -> Option<zbus::Connection> {
    static BUS: tokio::sync::OnceCell<Option<zbus::Connection>> = tokio::sync::OnceCell::const_new();
    BUS.get_or_init(|| async { zbus::Connection::session().await.ok() }).await.clone()
}

const NOTIFICATIONS: &str = "org.freedesktop.Notifications";
const NOTIFICATIONS_PATH: &str = "/org/freedesktop/Notifications";

/// A request's notification: app, user, place, and what answering needs.
/// It stays until the request is answered or expires (`seconds`).
pub fn notify(challenge: &Challenge, seconds: u32, locked: bool) -> Task<Notice> {
    let summary = format!("Sign-in request: {}", plain(&challenge.app, 120));
    let mut parts = vec![plain(&challenge.user, 120)];
    if !challenge.location.is_empty() {
        parts.push(plain(&challenge.location, 120));
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
    notify_about(challenge.id.clone(), summary, body, seconds)
}

/// A notification about request `id` (a sign-in request, a text, a call)
/// that stays for `seconds` and brings it forward when clicked.
pub fn notify_about(id: String, summary: String, body: String, seconds: u32) -> Task<Notice> {
    Task::perform(show(summary, body, seconds), move |shown| shown.map(|notification| Notice::Shown(id.clone(), notification))).then(
        |shown| match shown {
            Some(notice) => Task::done(notice),
            None => Task::none(),
        },
    )
}

/// Notify (the Desktop Notifications Specification): its id, or `None`
/// when no notification service answers.
#[cfg(all(unix, not(target_os = "macos")))]
async fn show(summary: String, body: String, seconds: u32) -> Option<u32> {
    use std::collections::HashMap;
    let bus = bus().await?;
    let hints: HashMap<&str, zbus::Variant<'_>> =
        HashMap::from([("desktop-entry", zbus::Variant::from(APP_ID)), ("category", zbus::Variant::from("x-countersign.signin"))]);
    // "default" is the click on the notification itself.
    let actions = ["default", "Show"];
    let timeout = i32::try_from(seconds.saturating_mul(1000)).unwrap_or(i32::MAX);
    let reply = bus
        .call_method(
            Some(NOTIFICATIONS),
            NOTIFICATIONS_PATH,
            Some(NOTIFICATIONS),
            "Notify",
            &("Countersign", 0u32, APP_ID, summary.as_str(), body.as_str(), &actions[..], hints, timeout),
        )
        .await
        .ok()?;
    reply.body().deserialize::<u32>().ok()
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
async fn show(_summary: String, _body: String, _seconds: u32) -> Option<u32> {
    None
}

/// The clicks on Countersign's notifications, for as long as the app runs.
pub fn clicks() -> impl iced::futures::Stream<Item = Notice> {
    iced::stream::channel(16, async |mut output: iced::futures::channel::mpsc::Sender<Notice>| {
        #[cfg(all(unix, not(target_os = "macos")))]
        {
            use iced::futures::{SinkExt, StreamExt};
            let Some(bus) = bus().await else { return };
            let Ok(rule) = zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .interface(NOTIFICATIONS)
                .member("ActionInvoked")
                .path(NOTIFICATIONS_PATH)
                .build()
            else {
                return;
            };
            let Ok(mut signals) = zbus::MessageStream::for_match_rule(rule, &bus, None).await else { return };
            while let Some(Ok(message)) = signals.next().await {
                if let Ok((notification, action)) = message.body().deserialize::<(u32, String)>()
                    && action == "default"
                    && output.send(Notice::Clicked(notification)).await.is_err()
                {
                    return;
                }
            }
        }
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        let _ = &mut output;
    })
}

/// Takes a request's notification off the screen.
#[cfg(all(unix, not(target_os = "macos")))]
pub async fn close(id: u32) {
    let Some(bus) = bus().await else { return };
    let _ = bus.call_method(Some(NOTIFICATIONS), NOTIFICATIONS_PATH, Some(NOTIFICATIONS), "CloseNotification", &(id,)).await;
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
pub async fn close(_id: u32) {}

/// Whether systemd-timedated says the clock is synchronised with a time
/// server; `None` when nobody answers within 2 s (no system bus, no systemd).
#[cfg(all(unix, not(target_os = "macos")))]
pub async fn clock_synchronized() -> Option<bool> {
    let ask = async {
        let connection = zbus::Connection::system().await.ok()?;
        let proxy = zbus::Proxy::new(&connection, "org.freedesktop.timedate1", "/org/freedesktop/timedate1", "org.freedesktop.timedate1")
            .await
            .ok()?;
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
        assert_eq!(plain("VPN\r\nApproved: yes", 120), "VPN  Approved: yes");
        assert_eq!(plain("\u{1b}]0;PWNED\u{7}<b>x</b> & y", 120), " ]0;PWNED &lt;b&gt;x&lt;/b&gt; &amp; y");
        assert_eq!(plain("Contoso\u{2028}Approved \u{202E}moc.elgoog", 120), "Contoso Approved  moc.elgoog");
        assert_eq!(plain(&"a".repeat(500), 120).len(), 120);
    }
}
