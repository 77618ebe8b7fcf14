//! The tray icon: a StatusNotifierItem (through ksni, on the session bus)
//! with Open, Lock, Quit, the number of requests waiting, and the clock
//! warning. Without a tray host (a desktop with no tray, a bare session)
//! the app keeps running in the background and relies on notifications; a
//! host that appears later (a desktop still starting at login) gets the
//! icon then.

use iced::futures::SinkExt;
use iced::{Subscription, Task};

use super::APP_ID;

/// What the tray reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// The icon is registered; updates go through this handle.
    Ready(Handle),
    /// No icon: why (logged once).
    Unavailable(String),
    Open,
    Lock,
    Quit,
}

/// What the icon shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    /// Sign-in requests waiting for an answer.
    pub waiting: usize,
    /// The vault is locked (no Lock item then).
    pub locked: bool,
    /// The clock warning, when there is one.
    pub warning: Option<String>,
}

/// The running icon's handle.
#[derive(Clone)]
pub struct Handle(ksni::Handle<Item>);

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tray::Handle")
    }
}

/// The icon's state as the app last sent it.
#[derive(Default)]
pub struct Tray {
    handle: Option<Handle>,
    shown: Shown,
}

impl Tray {
    /// Registers the icon and reports its menu's clicks, for as long as the app runs.
    pub fn subscription() -> Subscription<Event> {
        Subscription::run(service)
    }

    /// The icon is up: it gets what it should show.
    pub fn ready(&mut self, handle: Handle) -> Task<Event> {
        self.handle = Some(handle);
        let shown = self.shown.clone();
        self.send(shown)
    }

    /// Shows `shown`, if it differs from what the icon shows.
    pub fn show(&mut self, shown: Shown) -> Task<Event> {
        if shown == self.shown {
            return Task::none();
        }
        self.shown = shown.clone();
        self.send(shown)
    }

    fn send(&self, shown: Shown) -> Task<Event> {
        let Some(Handle(handle)) = self.handle.clone() else { return Task::none() };
        Task::future(async move {
            handle.update(move |item| item.shown = shown).await;
        })
        .discard()
    }
}

fn service() -> impl iced::futures::Stream<Item = Event> {
    iced::stream::channel(16, async |mut output: iced::futures::channel::mpsc::Sender<Event>| {
        let (clicks, mut clicked) = tokio::sync::mpsc::unbounded_channel();
        let item = Item { shown: Shown::default(), clicks, icon: icon() };
        // A tray host that starts after us (login) still gets the icon.
        let spawned = ksni::TrayMethods::assume_sni_available(item, true).spawn().await;
        match spawned {
            Ok(handle) => {
                let _ = output.send(Event::Ready(Handle(handle))).await;
            }
            Err(error) => {
                let _ = output.send(Event::Unavailable(error.to_string())).await;
                return;
            }
        }
        while let Some(event) = clicked.recv().await {
            if output.send(event).await.is_err() {
                return;
            }
        }
    })
}

/// The StatusNotifierItem.
pub struct Item {
    shown: Shown,
    clicks: tokio::sync::mpsc::UnboundedSender<Event>,
    icon: Vec<ksni::Icon>,
}

impl Item {
    fn status_line(&self) -> String {
        match self.shown.waiting {
            0 => "No sign-in requests waiting".into(),
            1 => "1 sign-in request waiting".into(),
            n => format!("{n} sign-in requests waiting"),
        }
    }
}

impl ksni::Tray for Item {
    fn id(&self) -> String {
        APP_ID.into()
    }

    fn title(&self) -> String {
        "Countersign".into()
    }

    fn icon_name(&self) -> String {
        APP_ID.into()
    }

    /// The pixels too, for hosts that cannot find the themed icon (the app
    /// run from its build folder).
    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        self.icon.clone()
    }

    fn status(&self) -> ksni::Status {
        if self.shown.waiting > 0 || self.shown.warning.is_some() { ksni::Status::NeedsAttention } else { ksni::Status::Active }
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        let mut description = self.status_line();
        if self.shown.locked {
            description.push_str(" · locked");
        }
        if let Some(warning) = &self.shown.warning {
            // The warning names a server by its organisation's own words.
            description.push_str(&format!("\n{}", super::desktop::plain(warning, 400)));
        }
        ksni::ToolTip { title: "Countersign".into(), description, icon_name: APP_ID.into(), icon_pixmap: Vec::new() }
    }

    /// A click on the icon opens the window.
    fn activate(&mut self, _x: i32, _y: i32) {
        let _ = self.clicks.send(Event::Open);
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        use ksni::menu::StandardItem;
        let item = |label: String, event: Option<Event>| -> ksni::MenuItem<Self> {
            StandardItem {
                label,
                enabled: event.is_some(),
                activate: Box::new(move |item: &mut Item| {
                    if let Some(event) = event.clone() {
                        let _ = item.clicks.send(event);
                    }
                }),
                ..Default::default()
            }
            .into()
        };
        let mut menu = vec![item(self.status_line(), None)];
        if let Some(warning) = &self.shown.warning {
            menu.push(item(crate::push::printable(warning).chars().take(80).collect(), None));
        }
        menu.push(ksni::MenuItem::Separator);
        menu.push(item("Open Countersign".into(), Some(Event::Open)));
        if !self.shown.locked {
            menu.push(item("Lock".into(), Some(Event::Lock)));
        }
        menu.push(ksni::MenuItem::Separator);
        menu.push(item("Quit".into(), Some(Event::Quit)));
        menu
    }
}

/// The app icon as the ARGB32 (network byte order) pixels a tray draws.
fn icon() -> Vec<ksni::Icon> {
    let Ok(decoded) = image::load_from_memory_with_format(super::style::ICON_PNG, image::ImageFormat::Png) else { return Vec::new() };
    let rgba = decoded.to_rgba8();
    let (width, height) = rgba.dimensions();
    let data = rgba.pixels().flat_map(|p| [p[3], p[0], p[1], p[2]]).collect();
    vec![ksni::Icon { width: width as i32, height: height as i32, data }]
}

#[cfg(test)]
mod tests {
    use ksni::Tray as _;

    use super::*;

    fn item(shown: Shown) -> (Item, tokio::sync::mpsc::UnboundedReceiver<Event>) {
        let (clicks, clicked) = tokio::sync::mpsc::unbounded_channel();
        (Item { shown, clicks, icon: icon() }, clicked)
    }

    fn labels(item: &Item) -> Vec<String> {
        item.menu()
            .into_iter()
            .filter_map(|entry| match entry {
                ksni::MenuItem::Standard(standard) => Some(standard.label),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_menu_counts_requests_and_offers_lock_only_when_unlocked() {
        let (locked, _) = item(Shown { waiting: 2, locked: true, warning: None });
        assert_eq!(labels(&locked), ["2 sign-in requests waiting", "Open Countersign", "Quit"]);
        assert_eq!(locked.status(), ksni::Status::NeedsAttention);
        let (unlocked, _) = item(Shown { waiting: 0, locked: false, warning: None });
        assert_eq!(labels(&unlocked), ["No sign-in requests waiting", "Open Countersign", "Lock", "Quit"]);
        assert_eq!(unlocked.status(), ksni::Status::Active);
        assert!(!locked.icon_pixmap().is_empty(), "the icon's pixels are there for hosts without the theme");
    }

    #[test]
    fn the_clock_warning_shows_without_markup_and_clicks_reach_the_app() {
        let warning = "This computer's clock is 42 s ahead of <b>Contoso</b>'s.".to_owned();
        let (mut item, mut clicked) = item(Shown { waiting: 1, locked: false, warning: Some(warning) });
        assert!(
            item.tool_tip().description.ends_with("This computer's clock is 42 s ahead of &lt;b&gt;Contoso&lt;/b&gt;'s."),
            "{}",
            item.tool_tip().description
        );
        assert!(labels(&item).iter().any(|label| label.starts_with("This computer's clock is 42 s")));
        item.activate(0, 0);
        assert!(matches!(clicked.try_recv(), Ok(Event::Open)));
        let quit = item.menu().into_iter().find_map(|entry| match entry {
            ksni::MenuItem::Standard(standard) if standard.label == "Quit" => Some(standard.activate),
            _ => None,
        });
        (quit.expect("a Quit item"))(&mut item);
        assert!(matches!(clicked.try_recv(), Ok(Event::Quit)));
    }
}
