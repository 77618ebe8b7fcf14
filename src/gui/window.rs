//! The one window: its settings (size, icon, app id), opening it, bringing
//! it forward, and the requests later starts send through the instance
//! socket (`crate::instance`).

use std::sync::Arc;

use iced::window::{self, Id};
use iced::{Size, Task};

use super::{APP_ID, Message, style};
use crate::settings::Settings;

/// This process's claim to be the one process on its vault (see
/// `crate::instance`); not built on other platforms yet.
#[cfg(unix)]
pub type Instance = crate::instance::Listener;
#[cfg(not(unix))]
pub type Instance = std::convert::Infallible;

/// Where later starts on the same vault ask this process for something.
#[derive(Clone)]
pub struct RaiseOn(#[cfg(unix)] Arc<crate::instance::Waiter>);

/// One waiter per app: the subscription never restarts.
impl std::hash::Hash for RaiseOn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "raise".hash(state);
    }
}

/// The waiter of the socket this process holds, if it holds one.
pub fn raise_on(instance: Option<&Instance>) -> Option<RaiseOn> {
    #[cfg(unix)]
    return instance.and_then(|listener| listener.waiter().ok()).map(|waiter| RaiseOn(Arc::new(waiter)));
    #[cfg(not(unix))]
    {
        let _ = (instance, Arc::<()>::new);
        None
    }
}

/// `Message::Raise` or `Message::Quit` for each later start that asks. The
/// socket is blocking, so a thread waits on it.
pub fn requests(raise: &RaiseOn) -> impl iced::futures::Stream<Item = Message> + use<> {
    let (sender, receiver) = iced::futures::channel::mpsc::unbounded();
    #[cfg(unix)]
    {
        let waiter = raise.0.clone();
        std::thread::spawn(move || {
            while let Ok(request) = waiter.wait() {
                let message = match request {
                    crate::instance::Request::Quit => Message::Quit,
                    crate::instance::Request::Raise | crate::instance::Request::Ping => Message::Raise,
                };
                if sender.unbounded_send(message).is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (raise, sender);
    receiver
}

/// Opens the window at the size it last had.
pub fn open(settings: &Settings) -> (Id, Task<Id>) {
    let size = settings.window_size.map(|(w, h)| Size::new(w, h)).unwrap_or(Size::new(600.0, 720.0));
    window::open(window::Settings {
        size,
        min_size: Some(Size::new(440.0, 480.0)),
        icon: style::window_icon(),
        #[cfg(target_os = "linux")]
        platform_specific: window::settings::PlatformSpecific { application_id: APP_ID.into(), ..Default::default() },
        ..window::Settings::default()
    })
}

/// Restores the window (X11 does not focus an iconic one), focuses it and,
/// where the desktop refuses the focus (Wayland without an activation
/// token), flags it for attention.
pub fn bring_forward<T: Send + 'static>(id: Id) -> Task<T> {
    window::minimize(id, false)
        .chain(window::gain_focus(id))
        .chain(window::request_user_attention(id, Some(window::UserAttention::Informational)))
}
